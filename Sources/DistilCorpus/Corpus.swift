import DistilFormats
import DistilHub
import Foundation

/// One shard of a corpus: a JSON-lines file (plain or zstd) whose records have a "text" field,
/// or a parquet file with a "text" column.
public protocol CorpusShard {
    /// The name recorded in prompt provenance (the file name).
    var name: String { get }
    /// Number of rows (records).
    func rowCount() throws -> Int
    /// The text of one row (nil when the row has no text).
    func text(row: Int) throws -> String?
    /// Every row's text in order.
    func forEachText(_ body: (Int, String?) throws -> Void) throws
    /// The row group holding `row` (parquet), nil for formats without row groups.
    func rowGroup(ofRow row: Int) throws -> Int?
}

extension CorpusShard {
    public func rowGroup(ofRow row: Int) throws -> Int? { nil }
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
    /// The shards of the given paths: a directory contributes its *.jsonl, *.jsonl.zst and
    /// *.parquet files sorted bytewise by name; files are taken as given (a name ending in
    /// ".parquet" is read as parquet, anything else as JSONL).
    public static func shards(_ paths: [String]) throws -> [CorpusShard] {
        var out: [CorpusShard] = []
        for p in paths {
            if Corpus.isRemote(p) {
                // A shard on the Hub (or any server honouring Range): opened on first use, read by ranges.
                guard p.hasSuffix(".parquet") else { throw DistilError.input(p, "remote shards must be parquet files") }
                out.append(ParquetShard(name: p) { try RemoteFile(url: p) })
                continue
            }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                throw DistilError.input(p, "no such file or directory")
            }
            if isDir.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: p)
                    .filter { isShardName($0) }
                    .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
                guard !names.isEmpty else { throw DistilError.input(p, "directory holds no .jsonl, .jsonl.zst or .parquet shards") }
                out += try names.map { try shard("\(p)/\($0)") }
            } else {
                out.append(try shard(p))
            }
        }
        return out
    }

    static func isRemote(_ p: String) -> Bool { p.hasPrefix("https://") || p.hasPrefix("http://") }

    static func isShardName(_ n: String) -> Bool { n.hasSuffix(".jsonl") || n.hasSuffix(".jsonl.zst") || n.hasSuffix(".parquet") }

    static func shard(_ path: String) throws -> CorpusShard {
        if path.hasSuffix(".parquet") { return try ParquetShard(path: path) }
        return JSONLShard(path: path)
    }
}

/// A parquet shard (FineWeb's format) read by row group: the footer when first asked, then
/// only the chosen column's chunk of the row group holding a requested row. The most recently
/// decoded row group is kept, so neighbouring rows cost nothing; `forEachText` streams one row
/// group at a time (memory bounded by one decoded chunk).
public final class ParquetShard: CorpusShard {
    /// The name recorded in provenance: the file name (or the URL's last component for a remote source).
    public let name: String
    /// The column read as the text (default "text").
    public let column: String
    private let open: () throws -> ParquetFile
    private var opened: Result<ParquetFile, Error>?
    private var cached: (column: String, rowGroup: Int, data: ParquetColumnData)?

    /// A local file.
    public convenience init(path: String, column: String = "text", limits: ParquetLimits = ParquetLimits()) throws {
        let source = try LocalFileSource(path: path)
        self.init(source: source, name: (path as NSString).lastPathComponent, column: column, limits: limits)
    }

    /// Any random-access source (a local file, or a remote file read with HTTP Range requests).
    /// Nothing is read until the shard is first used.
    public init(source: RandomAccessSource, name: String, column: String = "text", limits: ParquetLimits = ParquetLimits()) {
        self.name = name
        self.column = column
        open = { try ParquetFile(source: source, limits: limits) }
    }

    /// A source made on first use (a remote file costs a request to open, and a sampler touches
    /// only the shards it draws).
    public init(name: String, column: String = "text", limits: ParquetLimits = ParquetLimits(),
                makeSource: @escaping () throws -> RandomAccessSource) {
        self.name = name
        self.column = column
        open = { try ParquetFile(source: try makeSource(), limits: limits) }
    }

    /// The parsed file (its footer is read on first use).
    public func file() throws -> ParquetFile {
        if opened == nil { opened = Result { try open() } }
        return try opened!.get()
    }

    public func rowCount() throws -> Int { try file().rowCount }

    public func rowGroup(ofRow row: Int) throws -> Int? { try file().locate(row: row).rowGroup }

    /// The decoded column `name` of row group `g` (cached: the most recent one is kept).
    public func columnData(_ name: String, rowGroup g: Int) throws -> ParquetColumnData {
        if let c = cached, c.column == name, c.rowGroup == g { return c.data }
        cached = nil   // release the previous chunk before reading the next
        let f = try file()
        let data = try f.read(column: try f.column(named: name), rowGroup: g)
        cached = (name, g, data)
        return data
    }

    public func text(row: Int) throws -> String? {
        let f = try file()
        let info = try f.column(named: column)
        guard info.type == .byteArray else { throw DistilError.input(f.name, "column '\(column)' is \(info.type.map { "\($0)" } ?? "a group"), not text") }
        let (g, i) = try f.locate(row: row)
        return try columnData(column, rowGroup: g).string(i)
    }

    public func forEachText(_ body: (Int, String?) throws -> Void) throws {
        let f = try file()
        let info = try f.column(named: column)
        guard info.type == .byteArray else { throw DistilError.input(f.name, "column '\(column)' is \(info.type.map { "\($0)" } ?? "a group"), not text") }
        try forEachValue(column: column) { row, data, i in try body(row, data.string(i)) }
    }

    /// Calls `body(row, chunk, indexInChunk)` for every row of `column`, one row group at a time.
    public func forEachValue(column: String, _ body: (Int, ParquetColumnData, Int) throws -> Void) throws {
        let f = try file()
        let info = try f.column(named: column)
        for g in 0..<f.rowGroupCount {
            let data: ParquetColumnData
            if let c = cached, c.column == column, c.rowGroup == g { data = c.data } else {
                cached = nil
                data = try f.read(column: info, rowGroup: g)
            }
            for i in 0..<data.count { try body(f.rowGroupStarts[g] + i, data, i) }
        }
    }
}
