import Crypto
import Foundation

/// SHA-256 helpers (swift-crypto) and the CRC-32 used by the teacher stream's records.
public enum Hashing {
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func sha256(_ bytes: some DataProtocol) -> [UInt8] { Array(SHA256.hash(data: bytes)) }
    public static func sha256Hex(_ bytes: some DataProtocol) -> String { hex(SHA256.hash(data: bytes)) }
    public static func sha256Hex(_ s: String) -> String { sha256Hex(Array(s.utf8)) }

    /// SHA-256 of a file's content, streamed in 4 MiB reads.
    public static func sha256Hex(file path: String, progress: ProgressReporter? = nil) throws -> String {
        let r = try FileReader(path: path)
        var h = SHA256()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64)
        defer { buf.deallocate() }
        while true {
            let n = try r.read(into: buf)
            if n == 0 { break }
            h.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buf[0..<n]))
            progress?.advance(n)
        }
        return hex(h.finalize())
    }

    /// An incremental SHA-256.
    public struct Hasher {
        var h = SHA256()
        public init() {}
        public mutating func update(_ buf: UnsafeRawBufferPointer) { h.update(bufferPointer: buf) }
        public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { h.update(bufferPointer: $0) } }
        public mutating func update(_ s: String) { update(Array(s.utf8)) }
        public mutating func update<T: FixedWidthInteger>(le v: T) { withUnsafeBytes(of: v.littleEndian) { h.update(bufferPointer: $0) } }
        public func finalizeHex() -> String { Hashing.hex(h.finalize()) }
        public func finalize() -> [UInt8] { Array(h.finalize()) }
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320: zlib's), slicing-by-8.
public enum CRC32 {
    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] }
        }
        return t
    }()
    static let flat: [UInt32] = tables.flatMap { $0 }

    /// Continues a CRC: pass the previous value (0 to start).
    public static func update(_ crc: UInt32, _ buf: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        let n = buf.count
        guard n > 0 else { return crc }
        let p = buf.baseAddress!.assumingMemoryBound(to: UInt8.self)
        return flat.withUnsafeBufferPointer { tp in
            let t = tp.baseAddress!
            var i = 0
            while i + 8 <= n {
                let lo = (UInt32(p[i]) | UInt32(p[i + 1]) << 8 | UInt32(p[i + 2]) << 16 | UInt32(p[i + 3]) << 24) ^ c
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(p[i + 4])] ^ t[2 * 256 + Int(p[i + 5])]
                    ^ t[1 * 256 + Int(p[i + 6])] ^ t[0 * 256 + Int(p[i + 7])]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(p[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
            return ~c
        }
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { update(0, $0) } }
}

/// The weight files of a model and their combined identity.
public enum WeightFiles {
    /// File names that hold weights (safetensors, and the formats dl-check rejects).
    public static func isWeightFile(_ name: String) -> Bool {
        let lower = name.lowercased()
        return [".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx", ".npz"].contains { lower.hasSuffix($0) }
    }

    /// SHA-256 over the lines "NAME\tSHA256\n" of the weight files, in bytewise name order.
    public static func identity(_ files: [(name: String, sha256: String)]) -> String {
        var h = Hashing.Hasher()
        for f in files.filter({ isWeightFile($0.name) }).sorted(by: { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }) {
            h.update("\(f.name)\t\(f.sha256)\n")
        }
        return h.finalizeHex()
    }

    /// The identity of the weight files directly in `directory` (hashing each file).
    public static func identity(directory: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter(isWeightFile)
        return identity(try names.map { ($0, try Hashing.sha256Hex(file: "\(directory)/\($0)")) })
    }
}
