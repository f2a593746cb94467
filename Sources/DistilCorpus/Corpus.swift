import DistilFormats
import Foundation

/// One shard of a corpus: a JSON-lines file (plain or zstd) whose records have a "text" field.
public protocol CorpusShard {
    /// The name recorded in prompt provenance (the file name).
    var name: String { get }
    /// Number of rows (records).
    func rowCount() throws -> Int
    /// The text of one row (nil when the row has no text).
    func text(row: Int) throws -> String?
    /// Every row's text in order.
    func forEachText(_ body: (Int, String?) throws -> Void) throws
}

/// A JSONL / JSONL.zst shard, read once and held in memory (corpora of this kind are small;
/// FineWeb's parquet shards are read by row group instead).
public final class JSONLShard: CorpusShard {
    public let path: String
    public var name: String { (path as NSString).lastPathComponent }
    struct Row: Decodable { var text: String? }
    lazy var rows: Result<[String?], Error> = Result { try JSONLReader<Row>(path: path).readAll().map(\.text) }

    public init(path: String) { self.path = path }

    public func rowCount() throws -> Int { try rows.get().count }
    public func text(row: Int) throws -> String? {
        let r = try rows.get()
        guard row >= 0 && row < r.count else { throw DistilError.input(path, "row \(row) out of range") }
        return r[row]
    }
    public func forEachText(_ body: (Int, String?) throws -> Void) throws {
        for (i, t) in try rows.get().enumerated() { try body(i, t) }
    }
}

public enum Corpus {
    /// The shards of the given paths: a directory contributes its *.jsonl, *.jsonl.zst (and
    /// *.parquet when supported) files sorted bytewise by name; files are taken as given.
    public static func shards(_ paths: [String]) throws -> [CorpusShard] {
        var out: [CorpusShard] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                throw DistilError.input(p, "no such file or directory")
            }
            if isDir.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: p)
                    .filter { isShardName($0) }
                    .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                guard !names.isEmpty else { throw DistilError.input(p, "directory holds no .jsonl or .jsonl.zst shards") }
                out += try names.map { try shard("\(p)/\($0)") }
            } else {
                out.append(try shard(p))
            }
        }
        return out
    }

    static func isShardName(_ n: String) -> Bool { n.hasSuffix(".jsonl") || n.hasSuffix(".jsonl.zst") || n.hasSuffix(".parquet") }

    static func shard(_ path: String) throws -> CorpusShard {
        if path.hasSuffix(".parquet") {
            throw DistilError.input(path, "parquet shards are not supported yet by this build; convert to JSONL")
        }
        return JSONLShard(path: path)
    }
}
