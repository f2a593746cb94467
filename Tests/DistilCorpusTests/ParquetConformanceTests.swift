import DistilCorpus
import DistilFormats
import Foundation
import XCTest

/// Every value of every pyarrow-written fixture equals what pyarrow read.
final class ParquetConformanceTests: XCTestCase {
    func testEveryFixtureMatchesPyarrow() throws {
        let names = try ParquetFixtures.readable()
        XCTAssertGreaterThanOrEqual(names.count, 20, "fixtures missing: run scripts/dev/make_parquet_fixtures.py")
        for name in names {
            let expected = try ParquetFixtures.expected(name)
            let file = try ParquetFile(path: ParquetFixtures.path(name))
            XCTAssertEqual(file.rowCount, expected.count, name)
            // Flat columns only (the nested fixture's list/struct columns are checked by the refusal test).
            let columns = file.columns.filter { !$0.isGroup && $0.repetition != "REPEATED" }.map(\.name)
            XCTAssertFalse(columns.isEmpty, name)
            let got = try readAllColumns(file, columns: columns)
            var checked = 0
            for (r, row) in expected.enumerated() {
                for c in columns {
                    guard let want = row[c], let have = got[r][c] else { XCTFail("\(name) row \(r) column \(c) missing"); continue }
                    if !want.matches(have) {
                        XCTFail("\(name) row \(r) column \(c): expected \(want), got \(have)")
                        return
                    }
                    checked += 1
                }
            }
            XCTAssertEqual(checked, expected.count * columns.count, name)
        }
    }

    /// The shard interface (text(row:), forEachText) agrees with pyarrow too, including nulls
    /// and rows read out of order (the row-group cache).
    func testShardTextMatchesPyarrow() throws {
        for name in ["snappy_v1_fineweb", "zstd_v2_fallback", "snappy_v2_long", "zstd_v1_manygroups", "none_v1_plain"] {
            let want: [String?] = try ParquetFixtures.expected(name).map { if case .string(let s) = $0["text"] { return s } else { return nil } }
            let shard = try ParquetShard(path: ParquetFixtures.path(name))
            XCTAssertEqual(try shard.rowCount(), want.count)
            var seen: [String?] = []
            try shard.forEachText { i, t in XCTAssertEqual(i, seen.count); seen.append(t) }
            XCTAssertEqual(seen, want, name)
            for row in stride(from: want.count - 1, through: 0, by: -3) { XCTAssertEqual(try shard.text(row: row), want[row], "\(name) row \(row)") }
        }
    }

    /// Pages decompressed on several threads give the same values and the same first error.
    func testParallelPageDecodingIsIdentical() throws {
        var parallel = ParquetLimits()
        parallel.threads = 3
        parallel.parallelMinBytes = 0
        var serial = ParquetLimits()
        serial.threads = 1
        for name in ["snappy_v1_fallback", "zstd_v2_fallback", "snappy_v2_smallpages", "zstd_v1_smallpages", "none_v1_fallback"] {
            let a = try ParquetFile(source: LocalFileSource(path: ParquetFixtures.path(name)), limits: parallel)
            let b = try ParquetFile(source: LocalFileSource(path: ParquetFixtures.path(name)), limits: serial)
            XCTAssertEqual(try readAllColumns(a, columns: ["text"]), try readAllColumns(b, columns: ["text"]), name)
        }
        for name in ["bad_page_size_zstd", "bad_page_size_snappy"] {
            func error(_ l: ParquetLimits) -> String {
                do { _ = try readAllColumns(try ParquetFile(source: LocalFileSource(path: ParquetFixtures.path(name)), limits: l), columns: ["text"]) }
                catch { return "\(error)" }
                return "no error"
            }
            XCTAssertEqual(error(parallel), error(serial))
            XCTAssertTrue(error(parallel).contains("page 0"), error(parallel))
        }
    }

    func testLimitsAreEnforced() throws {
        var l = ParquetLimits()
        l.maxRowsPerRowGroup = 10
        XCTAssertThrowsError(try ParquetFile(source: LocalFileSource(path: ParquetFixtures.path("snappy_v1_fineweb")), limits: l)) { e in
            XCTAssertTrue("\(e)".contains("row group 0 declares 30 rows (limit 10)"), "\(e)")
        }
        l = ParquetLimits()
        l.maxChunkBytes = 1000
        let f = try ParquetFile(source: LocalFileSource(path: ParquetFixtures.path("snappy_v1_fineweb")), limits: l)
        XCTAssertThrowsError(try f.read(column: f.column(named: "text"), rowGroup: 0)) { e in
            XCTAssertTrue("\(e)".contains("exceeds the limit of 1000 bytes"), "\(e)")
        }
    }

    func testFeaturesAreReallyCovered() throws {
        // Guards against a fixture silently losing what it is meant to cover.
        let long = try ParquetShard(path: ParquetFixtures.path("snappy_v2_long"))
        XCTAssertEqual(try long.text(row: 0)?.unicodeScalars.count, 100_000)
        XCTAssertEqual(try long.text(row: 1), "")
        XCTAssertNil(try long.text(row: 2))
        XCTAssertTrue(try long.text(row: 8)!.hasPrefix("😀e\u{301}"))
        let many = try ParquetFile(path: ParquetFixtures.path("zstd_v1_manygroups"))
        XCTAssertEqual(many.rowGroupCount, 32)
        let empty = try ParquetShard(path: ParquetFixtures.path("snappy_v1_empty"))
        XCTAssertEqual(try empty.rowCount(), 0)
        let fw = try ParquetFile(path: ParquetFixtures.path("snappy_v1_fineweb"))
        XCTAssertEqual(fw.columns.map(\.name), ["text", "id", "dump", "url", "date", "file_path", "language", "language_score", "token_count"])
        XCTAssertEqual(try fw.column(named: "token_count").type, .int64)
        XCTAssertEqual(try fw.column(named: "language_score").type, .double)
        let req = try ParquetFile(path: ParquetFixtures.path("snappy_v1_required"))
        XCTAssertEqual(req.columns[0].repetition, "REQUIRED")
    }
}
