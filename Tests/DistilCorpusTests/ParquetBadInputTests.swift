@testable import DistilCorpus
import DistilFormats
import Foundation
import XCTest

/// Damaged, lying and unsupported files: a clear DistilError naming the file and the problem,
/// never a crash or a hang.
final class ParquetBadInputTests: XCTestCase {
    /// Opens `bytes` as a parquet file named `name` and reads every flat column of every row group.
    @discardableResult
    func readEverything(_ bytes: [UInt8], name: String) throws -> Int {
        let file = try ParquetFile(source: MemorySource(bytes, name: name))
        var values = 0
        for c in file.columns where !c.isGroup && c.repetition != "REPEATED" {
            guard let info = try? file.column(named: c.name) else { continue }
            for g in 0..<file.rowGroupCount { values += try file.read(column: info, rowGroup: g).count }
        }
        return values
    }

    /// Asserts that reading fails with a DistilError naming the file and containing `what`.
    func assertFails(_ bytes: [UInt8], name: String = "damaged.parquet", _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try readEverything(bytes, name: name)
            XCTFail("\(name): no error, expected '\(what)'", file: file, line: line)
        } catch let e as DistilError {
            XCTAssertTrue(e.message.hasPrefix(name + ": "), "error does not name the file: \(e.message)", file: file, line: line)
            XCTAssertTrue(e.message.contains(what), "expected '\(what)' in: \(e.message)", file: file, line: line)
        } catch {
            XCTFail("not a DistilError: \(error)", file: file, line: line)
        }
    }

    func assertFixtureFails(_ fixture: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        assertFails(try ParquetFixtures.bytes(fixture), name: fixture + ".parquet", what, file: file, line: line)
    }

    func testTruncatedFiles() throws {
        let good = try ParquetFixtures.bytes("snappy_v1_fineweb")
        XCTAssertGreaterThan(try readEverything(good, name: "good"), 0)
        var cuts = Array(stride(from: 0, to: good.count, by: 257))
        cuts += (1...40).map { good.count - $0 }
        for n in cuts {
            do {
                try readEverything(Array(good[0..<n]), name: "cut.parquet")
                XCTFail("truncated to \(n) of \(good.count) bytes but read without error")
            } catch let e as DistilError {
                XCTAssertTrue(e.message.hasPrefix("cut.parquet: "), e.message)
            }
        }
        assertFails(Array(good[0..<7]), "too short")
        assertFails(Array(good[0..<(good.count - 1)]), "no PAR1 magic at the end")
    }

    func testCorruptFooter() throws {
        let good = try ParquetFixtures.bytes("snappy_v1_fineweb")
        let n = good.count
        var b = good; b[n - 1] = UInt8(ascii: "2")
        assertFails(b, "no PAR1 magic at the end")
        b = good; b.replaceSubrange((n - 4)..<n, with: Array("PARE".utf8))
        assertFails(b, "encrypted parquet footer (PARE) is not supported")
        b = good; b[1] = 0
        assertFails(b, "no PAR1 magic at the start")
        // Footer length: larger than the file, zero, and pointing into the middle of the data.
        b = good; b.replaceSubrange((n - 8)..<(n - 4), with: [0xFF, 0xFF, 0xFF, 0x7F])
        assertFails(b, "footer length 2147483647 does not fit in the file")
        b = good; b.replaceSubrange((n - 8)..<(n - 4), with: [0, 0, 0, 0])
        assertFails(b, "footer length 0 does not fit")
        b = good; b.replaceSubrange((n - 8)..<(n - 4), with: [0x00, 0x01, 0, 0])
        assertFails(b, "corrupt parquet footer (FileMetaData)")
        // Footer bytes zeroed: an empty struct, so the required fields are missing.
        let len = Int(good[n - 8]) | Int(good[n - 7]) << 8 | Int(good[n - 6]) << 16
        b = good; for i in (n - 8 - len)..<(n - 8) { b[i] = 0 }
        assertFails(b, "FileMetaData has no schema")
        // Bounded: a footer larger than the limit is refused before it is read.
        var limits = ParquetLimits()
        limits.maxFooterBytes = 100
        XCTAssertThrowsError(try ParquetFile(source: MemorySource(good, name: "x"), limits: limits)) { e in
            XCTAssertTrue("\(e)".contains("exceeds the limit of 100 bytes"), "\(e)")
        }
    }

    func testLyingLengthsAndOffsets() throws {
        try assertFixtureFails("bad_offset_past_end", "row group 1, column 'text': data page offset")
        try assertFixtureFails("bad_offset_past_end", "lies outside its column chunk")
        try assertFixtureFails("bad_chunk_length", "lies outside the data")
        try assertFixtureFails("bad_offset_negative", "lies outside the data")
        try assertFixtureFails("bad_offset_into_footer", "lies outside its column chunk")
        try assertFixtureFails("bad_total_rows", "footer says 45 rows but its row groups hold 40")
        try assertFixtureFails("bad_rowgroup_rows", "footer says 40 rows but its row groups hold 41")
        try assertFixtureFails("bad_rows_both", "row group 0, column 'text': column chunk holds 10 values, the row group has 11 rows")
        try assertFixtureFails("bad_schema_children", "schema root declares 50 children")
        try assertFixtureFails("bad_codec_gzip", "row group 0, column 'text': compression codec GZIP is not supported")
    }

    func testPageThatDecompressesToTheWrongSize() throws {
        try assertFixtureFails("bad_page_size_zstd", "row group 0, column 'text', page 0: page decompresses to more than the declared")
        try assertFixtureFails("bad_page_size_zstd_larger", "row group 0, column 'text', page 0: page decompresses to")
        try assertFixtureFails("bad_page_size_zstd_larger", "bytes, its header declares")
        try assertFixtureFails("bad_page_size_snappy", "row group 0, column 'text', page 0: snappy block declares")
        try assertFixtureFails("bad_page_size_none", "row group 0, column 'text', page 0: uncompressed page declares")
    }

    /// One stored byte changed inside a page whose header carries a CRC (uncompressed, so only the
    /// checksum can tell; scripts/dev/make_parquet_fixtures.py asserts pyarrow refuses both with
    /// page_checksum_verification). The intact shards with checksums read like pyarrow
    /// (testEveryFixtureMatchesPyarrow covers none_v1_crc, snappy_v2_crc, none_v1_dict_crc).
    func testPageChecksumMismatch() throws {
        try assertFixtureFails("bad_page_crc_data", "row group 0, column 'text', page 0: page checksum mismatch")
        try assertFixtureFails("bad_page_crc_dict", "row group 0, column 'text', page 0: page checksum mismatch")
    }

    func testUnsupportedFeaturesAreNamed() throws {
        try assertFixtureFails("refuse_gzip", "compression codec GZIP is not supported")
        try assertFixtureFails("refuse_brotli", "compression codec BROTLI is not supported")
        try assertFixtureFails("refuse_lz4", "compression codec LZ4")
        try assertFixtureFails("refuse_delta", "encoding DELTA_BYTE_ARRAY is not supported")
        let nested = try ParquetFile(path: ParquetFixtures.path("snappy_v1_nested"))
        XCTAssertThrowsError(try nested.column(named: "tags")) { e in XCTAssertTrue("\(e)".contains("column 'tags' is nested"), "\(e)") }
        XCTAssertThrowsError(try nested.column(named: "meta")) { e in XCTAssertTrue("\(e)".contains("column 'meta' is nested"), "\(e)") }
        XCTAssertThrowsError(try nested.column(named: "nope")) { e in XCTAssertTrue("\(e)".contains("no column 'nope' (columns: text, tags, meta)"), "\(e)") }
        // The flat column beside nested ones still reads (its leaf index skips the nested leaves).
        XCTAssertEqual(try ParquetShard(path: ParquetFixtures.path("snappy_v1_nested")).text(row: 1), "b")
        let fw = try ParquetShard(path: ParquetFixtures.path("snappy_v1_fineweb"), column: "token_count")
        XCTAssertThrowsError(try fw.text(row: 0)) { e in XCTAssertTrue("\(e)".contains("column 'token_count' is INT64, not text"), "\(e)") }
        XCTAssertThrowsError(try fw.text(row: 100)) { e in XCTAssertTrue("\(e)".contains("not text"), "\(e)") }
        XCTAssertThrowsError(try ParquetShard(path: ParquetFixtures.path("snappy_v1_fineweb")).text(row: 100)) { e in
            XCTAssertTrue("\(e)".contains("row 100 out of range (100 rows)"), "\(e)")
        }
    }

    func testSnappyDecoder() throws {
        func decode(_ src: [UInt8], _ n: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            try src.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try Snappy.decompress(s, into: $0) } }
            return out
        }
        // Literal "hello"; literal "ab" + overlapping copy (offset 2, length 8); a 2-byte-offset copy.
        XCTAssertEqual(try decode([5, 0x10] + Array("hello".utf8), 5), Array("hello".utf8))
        XCTAssertEqual(try decode([10, 0x04, 0x61, 0x62, 0x11, 0x02], 10), Array("ababababab".utf8))
        XCTAssertEqual(try decode([8, 0x0C, 0x61, 0x62, 0x63, 0x64, 0x0E, 0x04, 0x00], 8), Array("abcdabcd".utf8))
        let bad: [([UInt8], Int, String)] = [
            ([5, 0x10] + Array("hello".utf8), 6, "declares 5 bytes, the page header says 6"),
            ([5, 0x10] + Array("hel".utf8), 5, "runs past the input"),
            ([10, 0x04, 0x61, 0x62, 0x11, 0x00], 10, "copy offset 0"),
            ([10, 0x04, 0x61, 0x62, 0x11, 0x07], 10, "copy offset 7 at output 2 points outside"),
            ([6, 0x04, 0x61, 0x62, 0x11, 0x02], 6, "exceeds the declared 6 bytes"),
            ([8, 0x04, 0x61, 0x62], 8, "decompresses to 2 bytes, declared 8"),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], 1, "longer than 5 bytes"),
            ([0x80], 1, "ends inside its length"),
            ([4, 0xF4, 0x10], 4, "literal length runs past"),
            ([4, 0xF0, 0x10], 4, "literal of 17 bytes runs past"),
        ]
        for (src, n, what) in bad {
            XCTAssertThrowsError(try decode(src, n), what) { e in
                XCTAssertTrue((e as? Snappy.Failure)?.what.contains(what) == true, "expected '\(what)', got \(e)")
            }
        }
        // Random garbage never traps and never writes past the buffer.
        var rng = DistilRNG(domain: "test", seed: "snappy-garbage")
        var failures = 0
        for _ in 0..<3000 {
            let len = rng.nextInt(below: 64)
            let src = (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.nextUInt64()) }
            do { _ = try decode(src, rng.nextInt(below: 200)) } catch is Snappy.Failure { failures += 1 }
        }
        XCTAssertGreaterThan(failures, 2900)
    }

    /// Mutations of a real snappy page (written by pyarrow) exercise the decoder's fast loop:
    /// every result is a clean failure or exactly the declared number of bytes.
    func testSnappyMutationsOfARealPage() throws {
        let file = try ParquetFile(path: ParquetFixtures.path("snappy_v1_damagebase"))
        let r = try file.chunkRange(column: try file.column(named: "text"), rowGroup: 0)
        let raw = try file.source.read(offset: r.offset, count: r.count)
        let (h, body) = try PageHeader.decode(raw, at: 0, end: raw.count)
        let block = Array(raw[body..<(body + Int(h.compressedSize))])
        XCTAssertGreaterThan(block.count, 500)
        func decode(_ src: [UInt8], _ n: Int) throws -> [UInt8] {
            var out = [UInt8](repeating: 0, count: n)
            try src.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try Snappy.decompress(s, into: $0) } }
            return out
        }
        let good = try decode(block, Int(h.uncompressedSize))
        var rng = DistilRNG(domain: "test", seed: "snappy-mutations")
        var outcomes = [0, 0]
        for _ in 0..<3000 {
            var b = block
            for _ in 0...rng.nextInt(below: 3) { b[1 + rng.nextInt(below: b.count - 1)] = UInt8(truncatingIfNeeded: rng.nextUInt64()) }
            if rng.nextInt(below: 10) == 0 { b.removeLast(rng.nextInt(below: 20)) }
            do {
                let out = try decode(b, good.count)
                XCTAssertEqual(out.count, good.count)
                outcomes[0] += 1
            } catch is Snappy.Failure { outcomes[1] += 1 }
        }
        XCTAssertGreaterThan(outcomes[0], 100, "\(outcomes)")
        XCTAssertGreaterThan(outcomes[1], 1000, "\(outcomes)")
    }

    func testThriftBounds() throws {
        // A list claiming 2^31 elements in a few bytes, and deep nesting, fail without allocating or recursing away.
        var r = ThriftReader([0x19, 0xFC, 0xFF, 0xFF, 0xFF, 0x07, 0x00])
        XCTAssertThrowsError(try r.readStruct { r, _, t in try r.skip(t) })
        var deep = [UInt8](repeating: 0x1C, count: 10_000)   // field 1: struct, nested 10,000 times
        deep += [UInt8](repeating: 0, count: 10_001)
        r = ThriftReader(deep)
        XCTAssertThrowsError(try r.readStruct { r, _, t in try r.skip(t) }) { e in
            XCTAssertTrue((e as? ThriftReader.Malformed)?.what.contains("nested deeper") == true, "\(e)")
        }
    }

    /// Seeded mutations of valid files (byte flips, overwritten lengths, truncations, mostly aimed
    /// at the footer and page headers): each read either returns values or throws a DistilError.
    func testFuzzedFilesNeverTrap() throws {
        var rng = DistilRNG(domain: "test", seed: "parquet-fuzz-v1")
        var outcomes = [0, 0]
        for fixture in ["snappy_v1_damagebase", "zstd_v2_fallback", "none_v2_plain", "snappy_v2_dict", "zstd_v1_allnull"] {
            let good = try ParquetFixtures.bytes(fixture)
            let n = good.count
            let footerLen = Int(good[n - 8]) | Int(good[n - 7]) << 8 | Int(good[n - 6]) << 16
            for _ in 0..<2000 {
                var b = good
                for _ in 0...rng.nextInt(below: 3) {
                    // Half of the mutations land in the footer, the rest anywhere.
                    let at = rng.nextInt(below: 2) == 0 ? n - 8 - footerLen + rng.nextInt(below: footerLen + 8) : rng.nextInt(below: n)
                    switch rng.nextInt(below: 5) {
                    case 0: b[at] ^= UInt8(1 << rng.nextInt(below: 8))
                    case 1: b[at] = UInt8(truncatingIfNeeded: rng.nextUInt64())
                    case 2: b[at] = [0x00, 0xFF, 0x7F, 0x80][rng.nextInt(below: 4)]
                    case 3:
                        let v = UInt32(truncatingIfNeeded: rng.nextUInt64() >> UInt64(rng.nextInt(below: 32)))
                        for k in 0..<4 where at + k < n { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
                    default: b.removeSubrange(at..<min(n, at + 1 + rng.nextInt(below: 16)))
                    }
                    if b.count != n { break }
                }
                if rng.nextInt(below: 20) == 0 { b = Array(b.prefix(rng.nextInt(below: b.count + 1))) }
                do {
                    try readEverything(b, name: "fuzz.parquet")
                    outcomes[0] += 1
                } catch let e as DistilError {
                    XCTAssertTrue(e.message.hasPrefix("fuzz.parquet: "), e.message)
                    outcomes[1] += 1
                } catch {
                    XCTFail("\(fixture): not a DistilError: \(error)")
                }
            }
        }
        // Both outcomes happen (a mutation of text bytes still reads; most others are caught).
        XCTAssertGreaterThan(outcomes[0], 100, "\(outcomes)")
        XCTAssertGreaterThan(outcomes[1], 5000, "\(outcomes)")
    }
}
