import DistilFormats
import Foundation

/// Bounds applied to a parquet file before anything is allocated from its numbers.
public struct ParquetLimits: Sendable {
    /// Largest footer (Thrift FileMetaData) accepted.
    public var maxFooterBytes = 64 << 20
    /// Largest column chunk, stored or decompressed.
    public var maxChunkBytes = 1 << 30
    /// Most rows in one row group.
    public var maxRowsPerRowGroup = 1 << 24
    /// Bytes read from the end of the file in the first request; the footer usually fits, so
    /// opening a remote file costs one request (two when the footer is larger).
    public var footerProbeBytes = 64 << 10
    /// Threads that decompress the pages of one column chunk (pages are independent; the
    /// values read do not depend on this).
    public var threads = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4)
    /// Chunks that decompress to fewer bytes than this are decoded on one thread.
    public var parallelMinBytes = 1 << 20
    public init() {}
}

/// A top-level column of a parquet file's schema.
public struct ParquetColumnInfo: Sendable, Equatable {
    public let name: String
    /// Index of the column's (first) leaf among all leaves: its column chunk in each row group.
    public let leaf: Int
    /// The physical type (nil for a group).
    public let type: ParquetPhysicalType?
    let rawType: Int32?
    /// "REQUIRED", "OPTIONAL", "REPEATED".
    public let repetition: String
    /// A group (struct, list, map) rather than a single value.
    public let isGroup: Bool
}

/// A parquet file read through a `RandomAccessSource`: the footer on open, then only the
/// byte ranges of the column chunks asked for. Works the same on a local file and on a
/// remote one read with HTTP Range requests.
///
/// Accepted: "PAR1" at both ends; flat columns of BYTE_ARRAY, INT32, INT64, FLOAT, DOUBLE;
/// data pages v1 and v2; PLAIN, PLAIN_DICTIONARY and RLE_DICTIONARY values (a chunk may fall
/// back from dictionary to PLAIN); RLE definition levels; codecs UNCOMPRESSED, SNAPPY, ZSTD.
/// Everything else is refused with an error that names it (docs/parts/parquet-formats.md).
public final class ParquetFile {
    public let source: RandomAccessSource
    public let limits: ParquetLimits
    public var name: String { source.name }
    let meta: FileMetaData
    /// The top-level columns in schema order.
    public let columns: [ParquetColumnInfo]
    /// Rows in each row group, and the first row of each (cumulative).
    public let rowGroupRows: [Int]
    public let rowGroupStarts: [Int]
    /// Total rows.
    public let rowCount: Int
    /// The writer ("parquet-cpp-arrow version 17.0.0"), when recorded.
    public var createdBy: String? { meta.createdBy }
    /// The byte offset where the footer starts (column chunks must end before it).
    let footerStart: Int64
    let zstd = ZstdContext()

    public static let magic: [UInt8] = Array("PAR1".utf8)

    public convenience init(path: String, limits: ParquetLimits = ParquetLimits()) throws {
        try self.init(source: try LocalFileSource(path: path), limits: limits)
    }

    /// Reads and checks the footer (one or two reads at the end of the file, plus the 4-byte
    /// leading magic when the first read does not cover it).
    public init(source: RandomAccessSource, limits: ParquetLimits = ParquetLimits()) throws {
        self.source = source
        self.limits = limits
        let name = source.name
        let size = source.size
        guard size >= 12 else { throw DistilError.input(name, "not a parquet file: \(size) bytes is too short (truncated?)") }
        let probe = Int(min(size, Int64(max(limits.footerProbeBytes, 8))))
        var tail = try source.read(offset: size - Int64(probe), count: probe)
        let endMagic = Array(tail[(probe - 4)...])
        if endMagic == Array("PARE".utf8) {
            throw DistilError.input(name, "encrypted parquet footer (PARE) is not supported")
        }
        guard endMagic == ParquetFile.magic else {
            throw DistilError.input(name, "not a parquet file: no PAR1 magic at the end (truncated or corrupt footer?)")
        }
        let len = Int64(tail[probe - 8]) | Int64(tail[probe - 7]) << 8 | Int64(tail[probe - 6]) << 16 | Int64(tail[probe - 5]) << 24
        guard len > 0, len <= size - 12 else {
            throw DistilError.input(name, "footer length \(len) does not fit in the file (\(size) bytes; truncated or corrupt footer?)")
        }
        guard len <= Int64(limits.maxFooterBytes) else {
            throw DistilError.input(name, "footer of \(len) bytes exceeds the limit of \(limits.maxFooterBytes) bytes")
        }
        footerStart = size - 8 - len
        let have = probe - 8
        if Int64(have) < len {
            let missing = try source.read(offset: footerStart, count: Int(len) - have)
            tail = missing + tail
        }
        let footerBytes = Array(tail[(tail.count - 8 - Int(len))..<(tail.count - 8)])
        // The leading magic: inside the probe for a small file, otherwise one 4-byte read.
        let head: [UInt8] = Int64(tail.count) == size ? Array(tail[0..<4]) : try source.read(offset: 0, count: 4)
        guard head == ParquetFile.magic else { throw DistilError.input(name, "not a parquet file: no PAR1 magic at the start") }

        let m: FileMetaData
        do { m = try FileMetaData.decode(footerBytes) } catch let e as ThriftReader.Malformed {
            throw DistilError.input(name, "corrupt parquet footer (FileMetaData): \(e.what)")
        }
        if m.encrypted { throw DistilError.input(name, "encrypted parquet (plaintext footer with encryption) is not supported") }
        meta = m
        let (cols, leaves) = try ParquetFile.topLevelColumns(m.schema, name: name)
        columns = cols

        var rows: [Int] = [], starts: [Int] = []
        var total = 0
        for (g, rg) in m.rowGroups.enumerated() {
            guard rg.numRows >= 0, rg.numRows <= Int64(limits.maxRowsPerRowGroup) else {
                throw DistilError.input(name, "row group \(g) declares \(rg.numRows) rows (limit \(limits.maxRowsPerRowGroup))")
            }
            guard rg.columns.count == leaves else {
                throw DistilError.input(name, "row group \(g) has \(rg.columns.count) column chunks, the schema has \(leaves) columns")
            }
            starts.append(total)
            rows.append(Int(rg.numRows))
            total += Int(rg.numRows)
        }
        guard Int64(total) == m.numRows else {
            throw DistilError.input(name, "footer says \(m.numRows) rows but its row groups hold \(total)")
        }
        rowGroupRows = rows
        rowGroupStarts = starts
        rowCount = total
    }

    /// Number of row groups.
    public var rowGroupCount: Int { rowGroupRows.count }

    /// The row group holding `row` and the row's index inside it.
    public func locate(row: Int) throws -> (rowGroup: Int, index: Int) {
        guard row >= 0 && row < rowCount else { throw DistilError.input(name, "row \(row) out of range (\(rowCount) rows)") }
        // Binary search for the last start <= row (skipping empty groups).
        var lo = 0, hi = rowGroupStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if rowGroupStarts[mid] <= row { lo = mid } else { hi = mid - 1 }
        }
        return (lo, row - rowGroupStarts[lo])
    }

    /// The named column, checked readable: flat (not nested, not repeated) and of a supported type.
    public func column(named column: String) throws -> ParquetColumnInfo {
        guard let c = columns.first(where: { $0.name == column }) else {
            throw DistilError.input(name, "no column '\(column)' (columns: \(columns.map(\.name).joined(separator: ", ")))")
        }
        if c.isGroup { throw DistilError.input(name, "column '\(column)' is nested (a group, list or map); only flat columns are read") }
        if c.repetition == "REPEATED" { throw DistilError.input(name, "column '\(column)' is repeated; only flat columns are read") }
        guard let t = c.type else {
            throw DistilError.input(name, "column '\(column)' has unknown physical type \(c.rawType.map(String.init) ?? "none")")
        }
        switch t {
        case .byteArray, .int32, .int64, .float, .double: return c
        default: throw DistilError.input(name, "column '\(column)' has physical type \(t), which is not supported (BYTE_ARRAY, INT32, INT64, FLOAT, DOUBLE)")
        }
    }

    /// The byte range of a column chunk (dictionary page first when there is one), checked
    /// against the file: it must lie between the leading magic and the footer.
    public func chunkRange(column c: ParquetColumnInfo, rowGroup g: Int) throws -> (offset: Int64, count: Int) {
        let place = ChunkPlace(file: name, rowGroup: g, column: c.name)
        guard g >= 0 && g < meta.rowGroups.count else { throw DistilError.input(name, "row group \(g) out of range") }
        let chunk = meta.rowGroups[g].columns[c.leaf]
        if chunk.encrypted { throw place.error("encrypted column chunk is not supported") }
        if let p = chunk.filePath, !p.isEmpty { throw place.error("column chunk stored in another file ('\(p)') is not supported") }
        guard let m = chunk.meta else { throw place.error("column chunk has no metadata") }
        guard m.path == [c.name] else {
            throw place.error("column chunk is for '\(m.path.joined(separator: "."))', not '\(c.name)' (corrupt footer?)")
        }
        guard m.type == c.rawType else { throw place.error("column chunk type \(m.type) differs from the schema's") }
        var start = m.dataPageOffset
        if let d = m.dictionaryPageOffset, d > 0, d < start { start = d }
        let length = m.totalCompressedSize
        guard start >= 4, length > 0, start <= footerStart, length <= footerStart - start else {
            throw place.error("column chunk at offset \(start) with \(length) bytes lies outside the data (\(footerStart) bytes before the footer)")
        }
        guard m.dataPageOffset >= start, m.dataPageOffset - start < length else {
            throw place.error("data page offset \(m.dataPageOffset) lies outside its column chunk (\(start)..<\(start + length))")
        }
        guard length <= Int64(limits.maxChunkBytes) else {
            throw place.error("column chunk of \(length) bytes exceeds the limit of \(limits.maxChunkBytes) bytes")
        }
        return (start, Int(length))
    }

    /// Reads and decodes one column of one row group (one read of the chunk's byte range).
    public func read(column c: ParquetColumnInfo, rowGroup g: Int) throws -> ParquetColumnData {
        guard g >= 0 && g < rowGroupCount else { throw DistilError.input(name, "row group \(g) out of range (\(rowGroupCount) row groups)") }
        if rowGroupRows[g] == 0, let type = c.type {
            // An empty row group has nothing to read (writers may leave its chunk offsets at 0).
            return ParquetColumnData(column: c.name, type: type, count: 0, storage: [], starts: [], lengths: [],
                                     integers: [], doubles: [], valid: [])
        }
        let (offset, count) = try chunkRange(column: c, rowGroup: g)
        let chunk = meta.rowGroups[g].columns[c.leaf].meta!
        let raw = try source.read(offset: offset, count: count)
        return try decode(column: c, rowGroup: g, codec: chunk.codec, raw: raw)
    }

    /// Decodes a column chunk whose bytes were already read.
    func decode(column c: ParquetColumnInfo, rowGroup g: Int, codec: Int32, raw: [UInt8]) throws -> ParquetColumnData {
        let place = ChunkPlace(file: name, rowGroup: g, column: c.name)
        guard codec == ParquetCodec.uncompressed.rawValue || codec == ParquetCodec.snappy.rawValue || codec == ParquetCodec.zstd.rawValue else {
            throw place.error("compression codec \(ParquetCodec.name(codec)) is not supported (only UNCOMPRESSED, SNAPPY, ZSTD)")
        }
        guard let type = c.type else { throw place.error("column has no physical type") }
        let decoder = ColumnChunkDecoder(place: place, type: type, maxDef: c.repetition == "OPTIONAL" ? 1 : 0, codec: codec,
                                         rows: rowGroupRows[g], maxChunkBytes: limits.maxChunkBytes, zstd: zstd,
                                         threads: limits.threads, parallelMinBytes: limits.parallelMinBytes)
        return try decoder.decode(raw)
    }

    // MARK: schema

    /// The top-level columns, walking the depth-first schema list (bounded by its length).
    static func topLevelColumns(_ schema: [SchemaElement], name: String) throws -> (columns: [ParquetColumnInfo], leaves: Int) {
        guard let root = schema.first else { throw DistilError.input(name, "empty schema") }
        guard root.numChildren >= 0, Int(root.numChildren) < schema.count else {
            throw DistilError.input(name, "schema root declares \(root.numChildren) children, only \(schema.count - 1) elements follow")
        }
        var out: [ParquetColumnInfo] = []
        var i = 1, leaf = 0
        for _ in 0..<Int(root.numChildren) {
            guard i < schema.count else { throw DistilError.input(name, "schema ends inside the root's children") }
            let e = schema[i]
            let (next, leaves) = try subtree(schema, at: i, depth: 0, name: name)
            out.append(ParquetColumnInfo(name: e.name, leaf: leaf, type: e.numChildren > 0 ? nil : e.type.flatMap(ParquetPhysicalType.init(rawValue:)),
                                         rawType: e.type, repetition: repetitionName(e.repetition), isGroup: e.numChildren > 0))
            i = next
            leaf += leaves
        }
        guard i == schema.count else { throw DistilError.input(name, "schema has \(schema.count - i) elements outside the root") }
        return (out, leaf)
    }

    /// The element after the subtree at `i`, and the subtree's leaf count.
    static func subtree(_ schema: [SchemaElement], at i: Int, depth: Int, name: String) throws -> (next: Int, leaves: Int) {
        guard depth < 64 else { throw DistilError.input(name, "schema nested deeper than 64 levels") }
        let e = schema[i]
        guard e.numChildren >= 0, Int(e.numChildren) < schema.count - i else {
            throw DistilError.input(name, "schema element '\(e.name)' declares \(e.numChildren) children, only \(schema.count - i - 1) elements follow")
        }
        if e.numChildren == 0 { return (i + 1, 1) }
        var j = i + 1, leaves = 0
        for _ in 0..<Int(e.numChildren) {
            guard j < schema.count else { throw DistilError.input(name, "schema ends inside '\(e.name)'") }
            let (n, l) = try subtree(schema, at: j, depth: depth + 1, name: name)
            j = n
            leaves += l
        }
        return (j, leaves)
    }

    static func repetitionName(_ r: Int32?) -> String {
        switch r {
        case 1: return "OPTIONAL"
        case 2: return "REPEATED"
        default: return "REQUIRED"
        }
    }
}
