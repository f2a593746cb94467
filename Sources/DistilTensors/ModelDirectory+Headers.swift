import DistilFormats
import Foundation

extension ModelDirectory {
    /// The header of weight shard `name`. A metadata-only fetch keeps headers in a folder of their
    /// own (`headersDir`) with the real file's size listed (`listedSize`) to bound the offsets.
    public func header(_ name: String, headersDir: String? = nil, listedSize: Int64? = nil) throws -> SafetensorsHeader {
        try SafetensorsHeader.read(path: (headersDir ?? path) + "/" + name, fileSize: listedSize)
    }

    /// Checks only the header length weight shard `name` (of `size` bytes) announces, as dl-fetch
    /// does before it downloads one (docs/FORMATS.md, outcome `error`). A file too short to hold
    /// the length passes: that is dl-check's FORMAT refusal, as for a downloaded one.
    public func checkHeaderLength(_ name: String, size: Int64) throws {
        let file = path + "/" + name
        let r = try FileReader(path: file, regularOnly: true)
        var first = [UInt8](repeating: 0, count: 8)
        guard size >= 8, try first.withUnsafeMutableBytes({ try r.readExactly(into: $0, what: "the header length") }) else { return }
        _ = try SafetensorsHeader.announcedLength(first, name: file, fileSize: size)
    }
}
