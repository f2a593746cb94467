import DistilFormats
import Foundation

/// One tensor's entry in a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public var name: String
    /// As written: "BF16", "F16", "F32", or anything else (kept so dl-check can name it).
    public var dtype: String
    public var shape: [Int]
    /// Byte range within the data region (after the header).
    public var begin: Int
    public var end: Int

    public var elementCount: Int { shape.reduce(1, *) }

    /// The dtype, when it is one safetensors defines (nil: unknown).
    public var type: DType? { DType(rawValue: dtype) }

    /// Bytes per element of the dtypes this project knows (nil: unknown).
    public static func elementSize(_ dtype: String) -> Int? { DType(rawValue: dtype)?.size }
}

/// A parsed safetensors header: 8-byte little-endian length N, then N bytes of JSON mapping tensor
/// names to {dtype, shape, data_offsets} (and an optional "__metadata__" of strings).
public struct SafetensorsHeader: Sendable {
    public var tensors: [TensorInfo]
    public var metadata: [String: String]
    /// 8 + N: where the data region starts in the file.
    public var dataStart: Int

    public static let maxHeaderBytes = 100 << 20

    /// Parses and validates a header from its bytes (the first 8 + N bytes of the file, or more).
    /// `fileSize`, when known, bounds the data offsets. Every figure is checked with overflow-safe
    /// arithmetic: offsets inside the data region, byte length = elements x dtype size, no overlaps.
    public static func parse(_ bytes: [UInt8], name: String, fileSize: Int64?) throws -> SafetensorsHeader {
        let n = try announcedLength(bytes, name: name, fileSize: fileSize)
        guard bytes.count >= 8 + Int(n) else { throw DistilError.input(name, "truncated safetensors header") }
        let json = Data(bytes[8..<(8 + Int(n))])
        guard let obj = try? JSONSerialization.jsonObject(with: json), let dict = obj as? [String: Any] else {
            throw DistilError.input(name, "safetensors header is not a JSON object")
        }
        // JSONSerialization keeps one of two equal keys silently: a header naming a tensor twice
        // would describe the file in two ways.
        if let dup = JSONKeys.firstDuplicateTopLevelKey(bytes[8..<(8 + Int(n))]) {
            throw DistilError.input(name, "safetensors header names '\(dup)' twice")
        }
        var tensors: [TensorInfo] = []
        var metadata: [String: String] = [:]
        for (key, value) in dict {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else { throw DistilError.input(name, "__metadata__ is not an object") }
                for (k, v) in m { metadata[k] = (v as? String) ?? "\(v)" }
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                  let shapeAny = e["shape"] as? [Any], let offs = e["data_offsets"] as? [Any], offs.count == 2 else {
                throw DistilError.input(name, "tensor '\(key)': entry needs dtype, shape and two data_offsets")
            }
            var shape: [Int] = []
            for d in shapeAny {
                guard let i = intValue(d), i >= 0, i <= Int(Int32.max) else {
                    throw DistilError.input(name, "tensor '\(key)': bad dimension \(d)")
                }
                shape.append(i)
            }
            guard let b = intValue(offs[0]), let en = intValue(offs[1]), b >= 0, en >= b else {
                throw DistilError.input(name, "tensor '\(key)': bad data_offsets \(offs)")
            }
            var count = 1
            for d in shape {
                let (r, o) = count.multipliedReportingOverflow(by: d)
                guard !o, r <= Int(Int64.max / 8) else { throw DistilError.input(name, "tensor '\(key)': shape \(shape) overflows") }
                count = r
            }
            if let size = TensorInfo.elementSize(dtype) {
                guard count * size == en - b else {
                    throw DistilError.input(name, "tensor '\(key)': \(en - b) bytes for \(count) \(dtype) elements (expected \(count * size))")
                }
            }
            tensors.append(TensorInfo(name: key, dtype: dtype, shape: shape, begin: b, end: en))
        }
        tensors.sort { $0.begin != $1.begin ? $0.begin < $1.begin : $0.name < $1.name }
        var last = 0
        for t in tensors where t.end > t.begin {
            guard t.begin >= last else { throw DistilError.input(name, "tensor '\(t.name)' overlaps the previous tensor's bytes") }
            last = t.end
        }
        if let fileSize {
            let dataSize = fileSize - 8 - Int64(n)
            if let t = tensors.first(where: { Int64($0.end) > dataSize }) {
                throw DistilError.input(name, "tensor '\(t.name)' ends at byte \(t.end) of a \(dataSize)-byte data region")
            }
        }
        return SafetensorsHeader(tensors: tensors, metadata: metadata, dataStart: 8 + Int(n))
    }

    /// The header length N a file's first 8 bytes announce (little-endian), checked against
    /// safetensors' bound and the file's size before anything of that size is allocated or fetched.
    /// The one place that bound is applied: local files, cached headers and ranged Hub reads.
    public static func announcedLength(_ prefix: [UInt8], name: String, fileSize: Int64?) throws -> Int {
        guard prefix.count >= 8 else { throw DistilError.input(name, "not a safetensors file (shorter than 8 bytes)") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(prefix[i]) << (8 * UInt64(i)) }
        guard n >= 2, n <= UInt64(maxHeaderBytes) else {
            throw DistilError.input(name, "safetensors header length \(n) is out of bounds (2...\(maxHeaderBytes))")
        }
        if let fileSize, n > UInt64(max(0, fileSize - 8)) {
            throw DistilError.input(name, "safetensors header length \(n) is out of bounds: it exceeds the file (\(fileSize) bytes)")
        }
        return Int(n)
    }

    /// The first 8 + N bytes of a safetensors file (its length prefix and JSON header), read through
    /// `read(offset, count)` (exactly `count` bytes, or it throws): first `firstRead` bytes (at least
    /// 8; a remote reader asks for more so a small header takes one request), then the rest of the
    /// header once its announced length N is bounded (`announcedLength`). The one path by which a
    /// local file, a mapped file and a ranged Hub read come to their header's bytes.
    public static func headerBytes(name: String, fileSize: Int64?, firstRead: Int = 8,
                                   read: (_ offset: Int, _ count: Int) throws -> [UInt8]) throws -> [UInt8] {
        let first = try read(0, max(8, firstRead))
        let need = 8 + (try announcedLength(first, name: name, fileSize: fileSize))
        if need <= first.count { return Array(first.prefix(need)) }
        return first + (try read(first.count, need - first.count))
    }

    /// Reads only a local file's header (the 8-byte length, then the JSON), bounded before
    /// allocating; `fileSize` (default: the file's own) bounds the data offsets. A metadata-only
    /// fetch keeps headers apart from the weights: then pass the listed size of the real file.
    public static func read(path: String, fileSize: Int64? = nil) throws -> SafetensorsHeader {
        let name = (path as NSString).lastPathComponent
        let r = try FileReader(path: path)
        let size = fileSize ?? DistilFormats.fileSize(path)
        let bytes = try headerBytes(name: name, fileSize: size) { offset, count in
            var buf = [UInt8](repeating: 0, count: count)
            guard try buf.withUnsafeMutableBytes({ try r.readExactly(into: $0, what: offset == 0 ? "the header length" : "the header") }) else {
                throw DistilError.input(name, offset == 0 ? "empty file" : "truncated header")
            }
            return buf
        }
        return try parse(bytes, name: name, fileSize: size)
    }

    static func intValue(_ v: Any) -> Int? {
        // JSON true/false arrive as a boolean NSNumber, which `as? Int` would accept.
        if String(describing: type(of: v)).contains("Bool") { return nil }
        if let i = v as? Int { return i }
        if let n = v as? NSNumber {
            let d = n.doubleValue
            if d == d.rounded(), abs(d) < 9.0e15 { return Int(d) }
        }
        return nil
    }
}

/// A memory-mapped safetensors file.
public final class SafetensorsFile {
    public let path: String
    public let header: SafetensorsHeader
    let base: UnsafeMutableRawPointer
    let size: Int

    public init(path: String) throws {
        self.path = path
        // O_NONBLOCK: a FIFO in place of a weights file would block open() for ever.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw DistilError.input(path, "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DistilError.input(path, "cannot stat") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw DistilError.input(path, "is not a regular file") }
        size = Int(st.st_size)
        guard size >= 8 else { throw DistilError.input(path, "not a safetensors file (\(size) bytes)") }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw DistilError.input(path, "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = p
        let mapped = size
        do {
            // The announced length is bounded by the file's size before a byte past 8 is copied.
            let bytes = try SafetensorsHeader.headerBytes(name: path, fileSize: Int64(size)) { offset, count in
                guard offset + count <= mapped else { throw DistilError.input(path, "truncated safetensors header") }
                return [UInt8](UnsafeRawBufferPointer(start: p + offset, count: count))
            }
            header = try SafetensorsHeader.parse(bytes, name: path, fileSize: Int64(size))
        } catch {
            munmap(p, size)
            throw error
        }
    }

    deinit { munmap(base, size) }

    /// Raw bytes of a tensor (valid while the file lives).
    public func data(_ t: TensorInfo) -> UnsafeRawPointer { UnsafeRawPointer(base + header.dataStart + t.begin) }
}

/// The weights of a model directory: model.safetensors, or the shards model.safetensors.index.json names.
public final class WeightStore {
    public let directory: String
    public private(set) var files: [SafetensorsFile] = []
    var index: [String: (Int, TensorInfo)] = [:]

    public init(directory: String) throws {
        self.directory = directory
        let names = try ModelDirectory(directory).weightShards()
        for (i, n) in names.enumerated() {
            let f = try SafetensorsFile(path: directory + "/" + n)
            files.append(f)
            for t in f.header.tensors {
                if index[t.name] != nil { throw DistilError.input(directory, "tensor '\(t.name)' appears in two shards") }
                index[t.name] = (i, t)
            }
        }
    }

    /// The weight files of a model directory, by name (`ModelDirectory.weightShards`).
    public static func shardNames(directory: String) throws -> [String] {
        try ModelDirectory(directory).weightShards()
    }

    public var tensorNames: [String] { index.keys.sorted() }
    public func info(_ name: String) -> TensorInfo? { index[name]?.1 }

    /// Copies a tensor into f32 (BF16, F16 or F32 stored), checking its shape.
    public func float32(_ name: String, shape: [Int]) throws -> [Float] {
        guard let (fi, t) = index[name] else { throw DistilError.input(directory, "missing tensor '\(name)'") }
        guard t.shape == shape else {
            throw DistilError.input(directory, "tensor '\(name)' has shape \(t.shape), the config implies \(shape)")
        }
        var out = [Float](repeating: 0, count: t.elementCount)
        try out.withUnsafeMutableBufferPointer { try convert(t, files[fi].data(t), into: $0.baseAddress!, count: t.elementCount) }
        return out
    }

    public func has(_ name: String) -> Bool { index[name] != nil }

    func convert(_ t: TensorInfo, _ src: UnsafeRawPointer, into dst: UnsafeMutablePointer<Float>, count: Int) throws {
        switch t.dtype {
        case "F32":
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case "BF16":
            Matrix.bf16ToF32(src, dst, count)
        case "F16":
            Matrix.f16ToF32(src, dst, count)
        default:
            throw DistilError.input(directory, "tensor '\(t.name)' has dtype \(t.dtype); the engine reads BF16, F16 and F32")
        }
    }
}

extension WeightStore {
    /// A weight identity that survives re-sharding and renaming files: SHA-256 over, for every tensor
    /// in bytewise name order, "NAME\tDTYPE\tDIM,DIM,...\n" followed by the tensor's raw bytes.
    public func identity() -> String {
        var h = Hashing.Hasher()
        for name in tensorNames {
            let (fi, t) = index[name]!
            h.update("\(t.name)\t\(t.dtype)\t\(t.shape.map(String.init).joined(separator: ","))\n")
            h.update(UnsafeRawBufferPointer(start: files[fi].data(t), count: t.end - t.begin))
        }
        return h.finalizeHex()
    }
}

extension WeightStore {
    /// The first tensor (in name order) holding a NaN or an infinity, if any.
    public func firstNonFinite() -> String? {
        for name in tensorNames {
            let (fi, t) = index[name]!
            let p = files[fi].data(t)
            let n = t.elementCount
            switch t.dtype {
            case "BF16":
                for i in 0..<n where p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7F80 == 0x7F80 { return name }
            case "F16":
                for i in 0..<n where p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self) & 0x7C00 == 0x7C00 { return name }
            case "F32":
                for i in 0..<n where p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self) & 0x7F80_0000 == 0x7F80_0000 { return name }
            default: break
            }
        }
        return nil
    }
}

extension WeightStore {
    /// A small fingerprint per tensor for near-copy detection: the values at up to `samples`
    /// positions drawn by DistilRNG(domain "sketch", seed: the tensor's name), so two models with
    /// the same tensor names are sampled at the same positions. Non-float tensors are skipped.
    public func sketch(samples: Int = 256) throws -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        var one = [Float](repeating: 0, count: 1)
        for name in tensorNames {
            let (fi, t) = index[name]!
            guard ["BF16", "F16", "F32"].contains(t.dtype), t.elementCount > 0 else { continue }
            let n = t.elementCount
            var rng = DistilRNG(domain: "sketch", seed: name)
            let positions = n <= samples ? Array(0..<n) : (0..<samples).map { _ in rng.nextInt(below: n) }
            let size = TensorInfo.elementSize(t.dtype)!
            var values: [Float] = []
            values.reserveCapacity(positions.count)
            for p in positions {
                var single = t
                single.begin = t.begin + p * size
                single.end = single.begin + size
                single.shape = [1]
                try one.withUnsafeMutableBufferPointer { try convert(single, files[fi].data(single), into: $0.baseAddress!, count: 1) }
                values.append(one[0])
            }
            out[name] = values
        }
        return out
    }
}
