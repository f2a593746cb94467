import DistilFormats

// The parts of parquet's Thrift metadata (parquet-format, parquet.thrift) this reader uses.
// Field ids are those of parquet.thrift; unknown fields are skipped, so files from newer
// writers still read.

/// Physical types (parquet.thrift `Type`).
public enum ParquetPhysicalType: Int32, Sendable, CustomStringConvertible {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLenByteArray = 7
    public var description: String {
        switch self {
        case .boolean: return "BOOLEAN"
        case .int32: return "INT32"
        case .int64: return "INT64"
        case .int96: return "INT96"
        case .float: return "FLOAT"
        case .double: return "DOUBLE"
        case .byteArray: return "BYTE_ARRAY"
        case .fixedLenByteArray: return "FIXED_LEN_BYTE_ARRAY"
        }
    }
}

/// Compression codecs (parquet.thrift `CompressionCodec`). Only uncompressed, SNAPPY and ZSTD are read.
enum ParquetCodec: Int32 {
    case uncompressed = 0, snappy = 1, gzip = 2, lzo = 3, brotli = 4, lz4 = 5, zstd = 6, lz4Raw = 7
    static func name(_ raw: Int32) -> String {
        switch ParquetCodec(rawValue: raw) {
        case .uncompressed: return "UNCOMPRESSED"
        case .snappy: return "SNAPPY"
        case .gzip: return "GZIP"
        case .lzo: return "LZO"
        case .brotli: return "BROTLI"
        case .lz4: return "LZ4"
        case .zstd: return "ZSTD"
        case .lz4Raw: return "LZ4_RAW"
        case nil: return "codec \(raw)"
        }
    }
}

/// Value encodings (parquet.thrift `Encoding`).
enum ParquetEncoding {
    static let plain: Int32 = 0
    static let plainDictionary: Int32 = 2
    static let rle: Int32 = 3
    static let bitPacked: Int32 = 4
    static let rleDictionary: Int32 = 8
    static func name(_ raw: Int32) -> String {
        switch raw {
        case 0: return "PLAIN"
        case 2: return "PLAIN_DICTIONARY"
        case 3: return "RLE"
        case 4: return "BIT_PACKED"
        case 5: return "DELTA_BINARY_PACKED"
        case 6: return "DELTA_LENGTH_BYTE_ARRAY"
        case 7: return "DELTA_BYTE_ARRAY"
        case 8: return "RLE_DICTIONARY"
        case 9: return "BYTE_STREAM_SPLIT"
        default: return "encoding \(raw)"
        }
    }
}

/// Page types (parquet.thrift `PageType`).
enum ParquetPageType: Int32 {
    case dataPage = 0, indexPage = 1, dictionaryPage = 2, dataPageV2 = 3
}

/// One node of the schema tree (parquet.thrift `SchemaElement`), flattened depth-first.
struct SchemaElement {
    var type: Int32?
    /// 0 REQUIRED, 1 OPTIONAL, 2 REPEATED.
    var repetition: Int32?
    var name = ""
    var numChildren: Int32 = 0
    var convertedType: Int32?
    var hasLogicalType = false
}

/// parquet.thrift `ColumnMetaData`.
struct ColumnMetaData {
    var type: Int32 = -1
    var encodings: [Int32] = []
    var path: [String] = []
    var codec: Int32 = 0
    var numValues: Int64 = 0
    var totalUncompressedSize: Int64 = 0
    var totalCompressedSize: Int64 = 0
    var dataPageOffset: Int64 = -1
    var dictionaryPageOffset: Int64?
}

/// parquet.thrift `ColumnChunk`.
struct ColumnChunkMeta {
    var filePath: String?
    var meta: ColumnMetaData?
    var offsetIndexOffset: Int64?
    var offsetIndexLength: Int32?
    var encrypted = false
}

/// parquet.thrift `RowGroup`.
struct RowGroupMeta {
    var columns: [ColumnChunkMeta] = []
    var numRows: Int64 = 0
}

/// parquet.thrift `FileMetaData`.
struct FileMetaData {
    var version: Int32 = 0
    var schema: [SchemaElement] = []
    var numRows: Int64 = 0
    var rowGroups: [RowGroupMeta] = []
    var createdBy: String?
    var encrypted = false
}

/// parquet.thrift `PageHeader` with its data/dictionary sub-headers, plus where it ends.
struct PageHeader {
    var type: Int32 = -1
    var uncompressedSize: Int32 = -1
    var compressedSize: Int32 = -1
    // DataPageHeader (v1) / DataPageHeaderV2 / DictionaryPageHeader
    var numValues: Int32 = -1
    var encoding: Int32 = -1
    var definitionLevelEncoding: Int32 = -1
    var repetitionLevelEncoding: Int32 = -1
    var numNulls: Int32 = 0
    var numRows: Int32 = -1
    var definitionLevelsByteLength: Int32 = 0
    var repetitionLevelsByteLength: Int32 = 0
    var isCompressed = true
    /// CRC-32 of the page as stored (after the header; v2 levels included), when the writer set it.
    var crc: UInt32?
    /// Which sub-header was present: 5 DataPageHeader, 7 DictionaryPageHeader, 8 DataPageHeaderV2 (0 none).
    var subHeader: Int16 = 0
}

extension FileMetaData {
    /// Decodes a FileMetaData struct from the footer bytes.
    static func decode(_ bytes: [UInt8]) throws -> FileMetaData {
        var r = ThriftReader(bytes)
        var m = FileMetaData()
        var sawSchema = false, sawRows = false, sawGroups = false
        try r.readStruct { r, id, t in
            switch id {
            case 1: m.version = try r.i32(t)
            case 2:
                guard t == .list else { throw ThriftReader.Malformed(what: "schema is not a list") }
                m.schema = try r.readList(.structure) { try SchemaElement.decode(&$0) }
                sawSchema = true
            case 3: m.numRows = try r.i64(t); sawRows = true
            case 4:
                guard t == .list else { throw ThriftReader.Malformed(what: "row_groups is not a list") }
                m.rowGroups = try r.readList(.structure) { try RowGroupMeta.decode(&$0) }
                sawGroups = true
            case 6: m.createdBy = try r.string(t)
            case 8: m.encrypted = true; try r.skip(t)
            default: try r.skip(t)
            }
        }
        guard sawSchema else { throw ThriftReader.Malformed(what: "FileMetaData has no schema") }
        guard sawRows else { throw ThriftReader.Malformed(what: "FileMetaData has no num_rows") }
        guard sawGroups else { throw ThriftReader.Malformed(what: "FileMetaData has no row_groups") }
        return m
    }
}

extension SchemaElement {
    static func decode(_ r: inout ThriftReader) throws -> SchemaElement {
        var e = SchemaElement()
        try r.readStruct { r, id, t in
            switch id {
            case 1: e.type = try r.i32(t)
            case 3: e.repetition = try r.i32(t)
            case 4: e.name = try r.string(t)
            case 5: e.numChildren = try r.i32(t)
            case 6: e.convertedType = try r.i32(t)
            case 10: e.hasLogicalType = true; try r.skip(t)
            default: try r.skip(t)
            }
        }
        return e
    }
}

extension RowGroupMeta {
    static func decode(_ r: inout ThriftReader) throws -> RowGroupMeta {
        var g = RowGroupMeta()
        var sawRows = false
        try r.readStruct { r, id, t in
            switch id {
            case 1:
                guard t == .list else { throw ThriftReader.Malformed(what: "row group columns is not a list") }
                g.columns = try r.readList(.structure) { try ColumnChunkMeta.decode(&$0) }
            case 3: g.numRows = try r.i64(t); sawRows = true
            default: try r.skip(t)
            }
        }
        guard sawRows else { throw ThriftReader.Malformed(what: "row group without num_rows") }
        return g
    }
}

extension ColumnChunkMeta {
    static func decode(_ r: inout ThriftReader) throws -> ColumnChunkMeta {
        var c = ColumnChunkMeta()
        try r.readStruct { r, id, t in
            switch id {
            case 1: c.filePath = try r.string(t)
            case 3: try r.expectStruct(t); c.meta = try ColumnMetaData.decode(&r)
            case 4: c.offsetIndexOffset = try r.i64(t)
            case 5: c.offsetIndexLength = try r.i32(t)
            case 8, 9: c.encrypted = true; try r.skip(t)
            default: try r.skip(t)
            }
        }
        return c
    }
}

extension ColumnMetaData {
    static func decode(_ r: inout ThriftReader) throws -> ColumnMetaData {
        var m = ColumnMetaData()
        try r.readStruct { r, id, t in
            switch id {
            case 1: m.type = try r.i32(t)
            case 2:
                guard t == .list else { throw ThriftReader.Malformed(what: "encodings is not a list") }
                m.encodings = try r.readList(.i32) { try $0.zigzag32() }
            case 3:
                guard t == .list else { throw ThriftReader.Malformed(what: "path_in_schema is not a list") }
                m.path = try r.readList(.binary) { String(decoding: try $0.binary(), as: UTF8.self) }
            case 4: m.codec = try r.i32(t)
            case 5: m.numValues = try r.i64(t)
            case 6: m.totalUncompressedSize = try r.i64(t)
            case 7: m.totalCompressedSize = try r.i64(t)
            case 9: m.dataPageOffset = try r.i64(t)
            case 11: m.dictionaryPageOffset = try r.i64(t)
            default: try r.skip(t)
            }
        }
        return m
    }
}

extension PageHeader {
    /// Decodes a page header that starts at `start` in `bytes` (reading at most up to `end`);
    /// returns the header and the offset just past it.
    static func decode(_ bytes: [UInt8], at start: Int, end: Int) throws -> (PageHeader, Int) {
        var r = ThriftReader(bytes, from: start, to: end)
        var h = PageHeader()
        try r.readStruct { r, id, t in
            switch id {
            case 1: h.type = try r.i32(t)
            case 2: h.uncompressedSize = try r.i32(t)
            case 3: h.compressedSize = try r.i32(t)
            case 4: h.crc = UInt32(bitPattern: try r.i32(t))
            case 5, 7, 8:
                // 5 DataPageHeader, 7 DictionaryPageHeader, 8 DataPageHeaderV2: their common fields
                // (num_values = 1, encoding = 2 or 4) are decoded by field id per kind.
                try r.expectStruct(t)
                let kind = id
                h.subHeader = kind
                try r.readStruct { r, fid, ft in
                    switch (kind, fid) {
                    case (_, 1): h.numValues = try r.i32(ft)
                    case (5, 2), (7, 2), (8, 4): h.encoding = try r.i32(ft)
                    case (5, 3): h.definitionLevelEncoding = try r.i32(ft)
                    case (5, 4): h.repetitionLevelEncoding = try r.i32(ft)
                    case (8, 2): h.numNulls = try r.i32(ft)
                    case (8, 3): h.numRows = try r.i32(ft)
                    case (8, 5): h.definitionLevelsByteLength = try r.i32(ft)
                    case (8, 6): h.repetitionLevelsByteLength = try r.i32(ft)
                    case (8, 7): h.isCompressed = try r.bool(ft)
                    default: try r.skip(ft)
                    }
                }
            default: try r.skip(t)
            }
        }
        return (h, r.pos)
    }
}
