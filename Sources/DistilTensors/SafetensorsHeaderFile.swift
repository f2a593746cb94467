import DistilFormats
import Foundation

extension SafetensorsHeader {
    /// The header of a safetensors file, read with plain reads (nothing is mapped): the 8-byte
    /// length, bounded by `maxHeaderBytes` before anything is allocated, then the JSON.
    public static func read(path: String) throws -> (header: SafetensorsHeader, fileSize: Int64) {
        guard let h = FileHandle(forReadingAtPath: path) else { throw DistilError.input(path, "cannot open") }
        defer { try? h.close() }
        let size = Int64((try? h.seekToEnd()) ?? 0)
        try h.seek(toOffset: 0)
        let len = [UInt8]((try h.read(upToCount: 8)) ?? Data())
        guard len.count == 8 else { throw DistilError.input(path, "not a safetensors file (\(size) bytes)") }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(len[i]) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderBytes), Int64(n) + 8 <= size else {
            throw DistilError.input(path, "safetensors header length \(n) is out of bounds (at most \(maxHeaderBytes) and within the file's \(size) bytes)")
        }
        let json = [UInt8]((try h.read(upToCount: Int(n))) ?? Data())
        return (try parse(len + json, name: path, fileSize: size), size)
    }
}
