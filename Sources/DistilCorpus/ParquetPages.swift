import CZstd
import DistilFormats
import Foundation

/// The decoded values of one column in one row group.
///
/// Byte-array values are not copied out of the decompressed pages: `storage` holds every page
/// of the chunk decompressed back to back, and value i is `storage[starts[i] ..< starts[i] + lengths[i]]`
/// (a dictionary-encoded value points into the dictionary page). Numbers are widened to
/// Int64 (INT32, INT64) or Double (FLOAT, DOUBLE). `valid[i]` is false for a null.
public final class ParquetColumnData {
    /// The column's name and physical type.
    public let column: String
    public let type: ParquetPhysicalType
    /// Values (= rows of the row group; nulls included).
    public let count: Int
    let storage: [UInt8]
    let starts: [Int]
    let lengths: [Int32]
    let integers: [Int64]
    let doubles: [Double]
    let valid: [Bool]

    init(column: String, type: ParquetPhysicalType, count: Int, storage: [UInt8], starts: [Int], lengths: [Int32],
         integers: [Int64], doubles: [Double], valid: [Bool]) {
        self.column = column; self.type = type; self.count = count; self.storage = storage
        self.starts = starts; self.lengths = lengths; self.integers = integers; self.doubles = doubles; self.valid = valid
    }

    /// True when value `i` is null.
    public func isNull(_ i: Int) -> Bool { !valid[i] }

    /// Value `i` of a BYTE_ARRAY column as text (nil for null). Bytes that are not UTF-8 are
    /// replaced by U+FFFD (deterministically), so a damaged document never stops a run.
    public func string(_ i: Int) -> String? {
        guard valid[i], type == .byteArray else { return nil }
        let start = starts[i], n = Int(lengths[i])
        return storage.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[start..<(start + n)]), as: UTF8.self) }
    }

    /// Calls `body` with the raw bytes of value `i` of a BYTE_ARRAY column (nil for null).
    public func withBytes<R>(_ i: Int, _ body: (UnsafeBufferPointer<UInt8>?) throws -> R) rethrows -> R {
        guard valid[i], type == .byteArray else { return try body(nil) }
        let start = starts[i], n = Int(lengths[i])
        return try storage.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[start..<(start + n)])) }
    }

    /// Value `i` of any supported column.
    public func value(_ i: Int) -> ParquetValue {
        guard valid[i] else { return .null }
        switch type {
        case .byteArray: return .string(string(i) ?? "")
        case .int32, .int64: return .int(integers[i])
        case .float, .double: return .double(doubles[i])
        default: return .null
        }
    }
}

/// One value of a column, for display (`dl-prompts cat --column`).
public enum ParquetValue: Equatable, Sendable, Encodable {
    case null
    case string(String)
    case int(Int64)
    case double(Double)

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .string(let s): try c.encode(s)
        case .int(let v): try c.encode(v)
        // JSON has no NaN or infinity: those print as null.
        case .double(let v): if v.isFinite { try c.encode(v) } else { try c.encodeNil() }
        }
    }
}

/// Where a problem is: every error names the file, row group, column and (when known) page.
struct ChunkPlace {
    let file: String
    let rowGroup: Int
    let column: String
    func error(_ what: String, page: Int? = nil) -> DistilError {
        DistilError.input(file, "row group \(rowGroup), column '\(column)'\(page.map { ", page \($0)" } ?? ""): \(what)")
    }
}

/// A reusable zstd decompression context.
final class ZstdContext {
    let dctx: OpaquePointer?
    init() { dctx = ZSTD_createDCtx() }
    deinit { if let dctx { ZSTD_freeDCtx(dctx) } }
}

/// Decodes the pages of one flat column chunk (dictionary page, data pages v1/v2) into values.
struct ColumnChunkDecoder {
    let place: ChunkPlace
    let type: ParquetPhysicalType
    /// 0 for a REQUIRED column, 1 for an OPTIONAL one.
    let maxDef: Int
    let codec: Int32
    let rows: Int
    let maxChunkBytes: Int
    let zstd: ZstdContext
    /// Threads that decompress the pages of one chunk (1 = sequential).
    let threads: Int
    let parallelMinBytes: Int

    /// One page found by the first pass: its header and where its body starts in the chunk.
    struct PageRef {
        var header: PageHeader
        var body: Int
        var out: Int     // offset of its decompressed bytes in the storage
    }

    func decode(_ raw: [UInt8]) throws -> ParquetColumnData {
        let pages = try scan(raw)
        let total = pages.last.map { $0.out + Int($0.header.uncompressedSize) } ?? 0
        // Pass 2: decompress every page into one buffer (values then point into it).
        let storage = try [UInt8](unsafeUninitializedCapacity: max(total, 1)) { buf, initialized in
            initialized = total
            let dst = UnsafeMutableRawBufferPointer(buf)
            try raw.withUnsafeBytes { src in
                let workers = min(threads, pages.count)
                if workers <= 1 || total < parallelMinBytes {
                    for (k, p) in pages.enumerated() { try decompress(p, page: k, src, dst, zstd) }
                    return
                }
                // Pages are independent: decompress them on `workers` threads, each into its own
                // region (the result does not depend on the thread count). The error reported is
                // that of the first failing page, as in a sequential run.
                let errors = UnsafeMutableBufferPointer<Error?>.allocate(capacity: pages.count)
                errors.initialize(repeating: nil)
                defer { errors.deinitialize(); errors.deallocate() }
                // Largest pages first, each to the least-loaded worker.
                var load = [Int](repeating: 0, count: workers)
                var share = [[Int]](repeating: [], count: workers)
                for k in pages.indices.sorted(by: { pages[$0].header.uncompressedSize > pages[$1].header.uncompressedSize }) {
                    let w = load.indices.min(by: { load[$0] < load[$1] })!
                    share[w].append(k)
                    load[w] += Int(pages[k].header.uncompressedSize) + 1
                }
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let ctx = w == 0 ? zstd : ZstdContext()
                    for k in share[w] {
                        do { try decompress(pages[k], page: k, src, dst, ctx) } catch { errors[k] = error }
                    }
                }
                if let e = errors.first(where: { $0 != nil }) { throw e! }
            }
        }
        return try decodeValues(pages, storage)
    }

    /// Pass 1: walks the page headers, checking every size against the chunk before anything is allocated.
    func scan(_ raw: [UInt8]) throws -> [PageRef] {
        var pages: [PageRef] = []
        var pos = 0, out = 0, values = 0, index = 0
        while pos < raw.count {
            let h: PageHeader, body: Int
            do { (h, body) = try PageHeader.decode(raw, at: pos, end: raw.count) } catch let m as ThriftReader.Malformed {
                throw place.error("page header at chunk offset \(pos) is malformed: \(m.what)", page: index)
            }
            guard h.compressedSize >= 0, h.uncompressedSize >= 0 else {
                throw place.error("page header has negative sizes (compressed \(h.compressedSize), uncompressed \(h.uncompressedSize))", page: index)
            }
            guard Int(h.compressedSize) <= raw.count - body else {
                throw place.error("page of \(h.compressedSize) bytes runs past the end of the column chunk (\(raw.count - body) bytes left)", page: index)
            }
            let kind = ParquetPageType(rawValue: h.type)
            switch kind {
            case .dictionaryPage:
                guard pages.isEmpty else { throw place.error("a dictionary page after data pages", page: index) }
                guard h.subHeader == 7 else { throw place.error("dictionary page without a dictionary page header", page: index) }
                guard h.numValues >= 0 else { throw place.error("dictionary page with \(h.numValues) values", page: index) }
            case .dataPage, .dataPageV2:
                guard h.subHeader == (kind == .dataPage ? 5 : 8) else { throw place.error("data page without its data page header", page: index) }
                guard h.numValues >= 0 && Int(h.numValues) <= rows - values else {
                    throw place.error("data page with \(h.numValues) values where \(rows - values) of the row group's \(rows) rows remain", page: index)
                }
                values += Int(h.numValues)
            case .indexPage:
                pos = body + Int(h.compressedSize)
                index += 1
                continue
            case nil:
                throw place.error("unknown page type \(h.type)", page: index)
            }
            if codec == ParquetCodec.uncompressed.rawValue || (kind == .dataPageV2 && !h.isCompressed) {
                guard h.compressedSize == h.uncompressedSize else {
                    throw place.error("uncompressed page declares \(h.compressedSize) stored and \(h.uncompressedSize) decoded bytes", page: index)
                }
            }
            guard Int(h.uncompressedSize) <= maxChunkBytes - out else {
                throw place.error("decompressed column chunk exceeds the limit of \(maxChunkBytes) bytes", page: index)
            }
            pages.append(PageRef(header: h, body: body, out: out))
            out += Int(h.uncompressedSize)
            pos = body + Int(h.compressedSize)
            index += 1
        }
        guard values == rows else {
            throw place.error("column chunk holds \(values) values, the row group has \(rows) rows")
        }
        return pages
    }

    /// Decompresses page `p` into its place in `dst`, failing unless it yields exactly the declared size.
    func decompress(_ p: PageRef, page: Int, _ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer,
                    _ zstd: ZstdContext) throws {
        let h = p.header
        // The page checksum, when the writer set one (pyarrow's write_page_checksum): a page that
        // fails it is refused, as pyarrow's reader refuses it with page_checksum_verification.
        if let crc = h.crc {
            let got = CRC32.update(0, UnsafeRawBufferPointer(rebasing: src[p.body..<(p.body + Int(h.compressedSize))]))
            guard got == crc else {
                throw place.error("page checksum mismatch (CRC-32 \(String(got, radix: 16)), the header says \(String(crc, radix: 16)))", page: page)
            }
        }
        var inStart = p.body, inCount = Int(h.compressedSize)
        var outStart = p.out, outCount = Int(h.uncompressedSize)
        if h.type == ParquetPageType.dataPageV2.rawValue {
            // v2: repetition and definition levels are stored uncompressed before the values.
            let levels = Int(h.repetitionLevelsByteLength) + Int(h.definitionLevelsByteLength)
            guard h.repetitionLevelsByteLength >= 0, h.definitionLevelsByteLength >= 0,
                  levels <= inCount, levels <= outCount else {
                throw place.error("level lengths (\(h.repetitionLevelsByteLength) + \(h.definitionLevelsByteLength)) exceed the page (\(inCount) stored, \(outCount) decoded bytes)", page: page)
            }
            if levels > 0 { (dst.baseAddress! + outStart).copyMemory(from: src.baseAddress! + inStart, byteCount: levels) }
            inStart += levels; inCount -= levels; outStart += levels; outCount -= levels
            if !h.isCompressed {
                guard inCount == outCount else { throw place.error("uncompressed v2 page sizes disagree", page: page) }
                if outCount > 0 { (dst.baseAddress! + outStart).copyMemory(from: src.baseAddress! + inStart, byteCount: outCount) }
                return
            }
        }
        let input = UnsafeRawBufferPointer(rebasing: src[inStart..<(inStart + inCount)])
        let output = UnsafeMutableRawBufferPointer(rebasing: dst[outStart..<(outStart + outCount)])
        switch ParquetCodec(rawValue: codec) {
        case .uncompressed:
            if outCount > 0 { output.baseAddress!.copyMemory(from: input.baseAddress!, byteCount: outCount) }
        case .snappy:
            do { try Snappy.decompress(input, into: output) } catch let f as Snappy.Failure {
                throw place.error(f.what, page: page)
            }
        case .zstd:
            guard let dctx = zstd.dctx else { throw DistilError("zstd: cannot create a decompression context", kind: .runtime) }
            if inCount == 0 {
                if outCount == 0 { return }
                throw place.error("empty zstd page declares \(outCount) bytes", page: page)
            }
            let n = ZSTD_decompressDCtx(dctx, output.baseAddress, outCount, input.baseAddress, inCount)
            if ZSTD_isError(n) != 0 {
                let name = String(cString: ZSTD_getErrorName(n))
                if name.contains("Destination buffer is too small") {
                    throw place.error("page decompresses to more than the declared \(outCount) bytes", page: page)
                }
                throw place.error("corrupt zstd data: \(name)", page: page)
            }
            guard n == outCount else {
                throw place.error("page decompresses to \(n) bytes, its header declares \(outCount)", page: page)
            }
        default:
            throw place.error("compression codec \(ParquetCodec.name(codec)) is not supported (only UNCOMPRESSED, SNAPPY, ZSTD)")
        }
    }

    /// Output arrays being filled, one entry per row.
    struct Output {
        var starts: [Int] = []
        var lengths: [Int32] = []
        var integers: [Int64] = []
        var doubles: [Double] = []
        var valid: [Bool] = []
    }

    /// The dictionary: entries decoded from the dictionary page (same shape as the output).
    struct Dictionary {
        var count = 0
        var starts: [Int] = []
        var lengths: [Int32] = []
        var integers: [Int64] = []
        var doubles: [Double] = []
    }

    func decodeValues(_ pages: [PageRef], _ storage: [UInt8]) throws -> ParquetColumnData {
        var o = Output()
        o.valid.reserveCapacity(rows)
        switch type {
        case .byteArray: o.starts.reserveCapacity(rows); o.lengths.reserveCapacity(rows)
        case .int32, .int64: o.integers.reserveCapacity(rows)
        default: o.doubles.reserveCapacity(rows)
        }
        var dict: Dictionary?
        var levels: [UInt32] = []
        var indices: [UInt32] = []
        try storage.withUnsafeBytes { all in
            for (k, p) in pages.enumerated() {
                let h = p.header
                let page = UnsafeRawBufferPointer(rebasing: all[p.out..<(p.out + Int(h.uncompressedSize))])
                if h.type == ParquetPageType.dictionaryPage.rawValue {
                    guard h.encoding == ParquetEncoding.plain || h.encoding == ParquetEncoding.plainDictionary else {
                        throw place.error("dictionary page encoding \(ParquetEncoding.name(h.encoding)) is not supported", page: k)
                    }
                    dict = try decodeDictionary(page, base: p.out, count: Int(h.numValues), page: k)
                    continue
                }
                try decodeDataPage(h, page, base: p.out, index: k, dict: dict, levels: &levels, indices: &indices, into: &o)
            }
        }
        guard o.valid.count == rows else { throw place.error("decoded \(o.valid.count) values, expected \(rows)") }
        return ParquetColumnData(column: place.column, type: type, count: rows, storage: storage, starts: o.starts,
                                 lengths: o.lengths, integers: o.integers, doubles: o.doubles, valid: o.valid)
    }

    func decodeDictionary(_ page: UnsafeRawBufferPointer, base: Int, count: Int, page k: Int) throws -> Dictionary {
        var d = Dictionary()
        let width = type == .byteArray ? 4 : (type == .int32 || type == .float ? 4 : 8)
        guard count <= page.count / width else {
            throw place.error("dictionary of \(count) values cannot fit in \(page.count) bytes", page: k)
        }
        var o = Output()
        var pos = 0
        try decodePlain(page, base: base, n: count, pos: &pos, into: &o, page: k)
        d.count = count
        d.starts = o.starts; d.lengths = o.lengths; d.integers = o.integers; d.doubles = o.doubles
        return d
    }

    func decodeDataPage(_ h: PageHeader, _ page: UnsafeRawBufferPointer, base: Int, index k: Int, dict: Dictionary?,
                        levels: inout [UInt32], indices: inout [UInt32], into o: inout Output) throws {
        let n = Int(h.numValues)
        var pos = 0
        // Definition levels (a flat column has no repetition levels).
        var nonNull = n
        if h.type == ParquetPageType.dataPageV2.rawValue {
            pos = Int(h.repetitionLevelsByteLength)
            let defLen = Int(h.definitionLevelsByteLength)
            if maxDef > 0 {
                nonNull = try decodeLevels(UnsafeRawBufferPointer(rebasing: page[pos..<(pos + defLen)]), n, &levels, page: k)
                guard h.numNulls == n - nonNull else {
                    throw place.error("page header says \(h.numNulls) nulls, its definition levels hold \(n - nonNull)", page: k)
                }
            } else if defLen != 0 {
                throw place.error("definition levels on a required column", page: k)
            }
            pos += defLen
        } else if maxDef > 0 {
            guard h.definitionLevelEncoding == ParquetEncoding.rle else {
                throw place.error("definition level encoding \(ParquetEncoding.name(h.definitionLevelEncoding)) is not supported (only RLE)", page: k)
            }
            guard page.count >= 4 else { throw place.error("page ends inside the definition levels' length", page: k) }
            let len = Int(page.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
            guard len <= page.count - 4 else {
                throw place.error("definition levels of \(len) bytes run past the page (\(page.count - 4) bytes)", page: k)
            }
            nonNull = try decodeLevels(UnsafeRawBufferPointer(rebasing: page[4..<(4 + len)]), n, &levels, page: k)
            pos = 4 + len
        }
        let values = UnsafeRawBufferPointer(rebasing: page[pos...])
        let firstOut = o.valid.count
        switch h.encoding {
        case ParquetEncoding.plain:
            var p = 0
            try decodePlain(values, base: base + pos, n: nonNull, pos: &p, into: &o, page: k)
        case ParquetEncoding.plainDictionary, ParquetEncoding.rleDictionary:
            guard let dict else { throw place.error("dictionary-encoded page without a dictionary page", page: k) }
            try decodeIndices(values, nonNull, dict, &indices, into: &o, page: k)
        default:
            throw place.error("encoding \(ParquetEncoding.name(h.encoding)) is not supported (only PLAIN and dictionary)", page: k)
        }
        if nonNull < n { spreadNulls(levels, n: n, nonNull: nonNull, from: firstOut, &o) }
    }

    /// Decodes `n` definition levels; returns how many are non-null (level == maxDef).
    func decodeLevels(_ bytes: UnsafeRawBufferPointer, _ n: Int, _ levels: inout [UInt32], page k: Int) throws -> Int {
        if levels.count < n { levels = [UInt32](repeating: 0, count: n) }
        do {
            var d = try RLEHybridDecoder(bytes, bitWidth: levelBitWidth(maxDef))
            try levels.withUnsafeMutableBufferPointer { try d.decode(into: $0.baseAddress!, n) }
        } catch let f as RLEHybridDecoder.Failure {
            throw place.error("definition levels: \(f.what)", page: k)
        }
        var nonNull = 0
        for i in 0..<n {
            let l = levels[i]
            guard l <= UInt32(maxDef) else { throw place.error("definition level \(l) above the maximum \(maxDef)", page: k) }
            if l == UInt32(maxDef) { nonNull += 1 }
        }
        return nonNull
    }

    /// Reads `n` PLAIN values starting at `pos` (advances it). `base` is the offset of `bytes` in the storage.
    func decodePlain(_ bytes: UnsafeRawBufferPointer, base: Int, n: Int, pos: inout Int, into o: inout Output, page k: Int) throws {
        let count = bytes.count
        switch type {
        case .byteArray:
            var p = pos
            for i in 0..<n {
                guard count - p >= 4 else { throw place.error("value \(i) of \(n): page ends inside its length", page: k) }
                let len = Int(bytes.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian)
                guard len <= count - p - 4 else {
                    throw place.error("value \(i) of \(n): length \(len) runs past the page (\(count - p - 4) bytes left)", page: k)
                }
                o.starts.append(base + p + 4)
                o.lengths.append(Int32(len))
                p += 4 + len
            }
            pos = p
        case .int32, .int64, .float, .double:
            let width = (type == .int32 || type == .float) ? 4 : 8
            guard n <= (count - pos) / width else {
                throw place.error("\(n) \(type) values need \(n * width) bytes, the page has \(count - pos)", page: k)
            }
            for i in 0..<n {
                let at = pos + i * width
                switch type {
                case .int32: o.integers.append(Int64(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Int32.self))))
                case .int64: o.integers.append(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Int64.self)))
                case .float: o.doubles.append(Double(Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))))
                default: o.doubles.append(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))))
                }
            }
            pos += n * width
        default:
            throw place.error("physical type \(type) is not supported")
        }
        o.valid.append(contentsOf: repeatElement(true, count: n))
    }

    /// Reads `n` dictionary indices (a bit-width byte, then RLE/bit-packed hybrid) and looks them up.
    func decodeIndices(_ bytes: UnsafeRawBufferPointer, _ n: Int, _ dict: Dictionary, _ indices: inout [UInt32],
                       into o: inout Output, page k: Int) throws {
        if n == 0 { return }
        guard bytes.count >= 1 else { throw place.error("dictionary-encoded page has no index bit width", page: k) }
        let width = Int(bytes[0])
        if indices.count < n { indices = [UInt32](repeating: 0, count: n) }
        do {
            var d = try RLEHybridDecoder(UnsafeRawBufferPointer(rebasing: bytes[1...]), bitWidth: width)
            try indices.withUnsafeMutableBufferPointer { try d.decode(into: $0.baseAddress!, n) }
        } catch let f as RLEHybridDecoder.Failure {
            throw place.error("dictionary indices: \(f.what)", page: k)
        }
        let limit = UInt32(truncatingIfNeeded: dict.count)
        for i in 0..<n {
            let ix = indices[i]
            guard ix < limit else { throw place.error("dictionary index \(ix) out of range (dictionary has \(dict.count) values)", page: k) }
            switch type {
            case .byteArray: o.starts.append(dict.starts[Int(ix)]); o.lengths.append(dict.lengths[Int(ix)])
            case .int32, .int64: o.integers.append(dict.integers[Int(ix)])
            default: o.doubles.append(dict.doubles[Int(ix)])
            }
        }
        o.valid.append(contentsOf: repeatElement(true, count: n))
    }

    /// The page's `nonNull` values were appended densely at `from`; spread them to their rows
    /// (levels[i] == maxDef) and mark the rest null, working backwards in place.
    func spreadNulls(_ levels: [UInt32], n: Int, nonNull: Int, from: Int, _ o: inout Output) {
        let extra = n - nonNull
        o.valid.append(contentsOf: repeatElement(false, count: extra))
        switch type {
        case .byteArray:
            o.starts.append(contentsOf: repeatElement(0, count: extra))
            o.lengths.append(contentsOf: repeatElement(0, count: extra))
        case .int32, .int64: o.integers.append(contentsOf: repeatElement(0, count: extra))
        default: o.doubles.append(contentsOf: repeatElement(0, count: extra))
        }
        var src = from + nonNull - 1
        var i = n - 1
        while i >= 0 {
            let dst = from + i
            if levels[i] == UInt32(maxDef) {
                o.valid[dst] = true
                switch type {
                case .byteArray: o.starts[dst] = o.starts[src]; o.lengths[dst] = o.lengths[src]
                case .int32, .int64: o.integers[dst] = o.integers[src]
                default: o.doubles[dst] = o.doubles[src]
                }
                src -= 1
            } else {
                o.valid[dst] = false
                switch type {
                case .byteArray: o.starts[dst] = 0; o.lengths[dst] = 0
                case .int32, .int64: o.integers[dst] = 0
                default: o.doubles[dst] = 0
                }
            }
            i -= 1
        }
    }
}
