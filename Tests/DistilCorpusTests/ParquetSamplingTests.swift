import DistilCorpus
import DistilFormats
import Foundation
import XCTest

/// Sampling from parquet: provenance, determinism, and reading only the byte ranges needed.
final class ParquetSamplingTests: XCTestCase {
    /// Records which rows the sampler asked for.
    final class RecordingShard: CorpusShard {
        let inner: ParquetShard
        var asked: [Int] = []
        init(_ inner: ParquetShard) { self.inner = inner }
        var name: String { inner.name }
        func rowCount() throws -> Int { try inner.rowCount() }
        func text(row: Int) throws -> String? { asked.append(row); return try inner.text(row: row) }
        func forEachText(_ body: (Int, String?) throws -> Void) throws { try inner.forEachText(body) }
        func rowGroup(ofRow row: Int) throws -> Int? { try inner.rowGroup(ofRow: row) }
    }

    func options(_ count: Int) -> SamplingOptions {
        var o = SamplingOptions()
        o.count = count; o.minChars = 100; o.maxChars = 400
        return o
    }

    func testSamplingReadsOnlyTheFooterAndTheNeededChunks() throws {
        let path = ParquetFixtures.path("zstd_v1_manygroups")
        let counting = CountingSource(try LocalFileSource(path: path))
        let shard = RecordingShard(ParquetShard(source: counting, name: "zstd_v1_manygroups.parquet"))
        XCTAssertTrue(counting.reads.isEmpty, "nothing is read before the shard is used")
        let seed = DistilRNG.seed(blockHash: "0xfeed", block: 9)
        let prompts = try PromptSampler(shards: [shard], options: options(6)).sample(block: 9, seed: seed, blockHash: "0xfeed")
        XCTAssertEqual(prompts.count, 6)

        // Expected reads: the footer probe (the last 64 KiB), the 4-byte leading magic, then the
        // text column chunk of each row group asked for (a repeat of the cached group reads nothing).
        let file = try ParquetFile(path: path)
        let text = try file.column(named: "text")
        let size = counting.size
        var expected: [[Int64]] = [[size - 65536, 65536], [0, 4]]
        var last: Int?
        for row in shard.asked {
            let g = try file.locate(row: row).rowGroup
            if g != last {
                let r = try file.chunkRange(column: text, rowGroup: g)
                expected.append([r.offset, Int64(r.count)])
            }
            last = g
        }
        XCTAssertEqual(counting.reads.map { [$0.offset, Int64($0.count)] }, expected)
        XCTAssertGreaterThanOrEqual(Set(shard.asked.map { try! file.locate(row: $0).rowGroup }).count, 4)
        // Far less than the file: the footer probe plus a few text chunks.
        XCTAssertLessThan(counting.bytesRead, Int(size) / 2, "read \(counting.bytesRead) of \(size) bytes")
        let chunkBytes = counting.reads.dropFirst(2).reduce(0) { $0 + $1.count }
        XCTAssertLessThan(chunkBytes, Int(size) / 5)

        // Provenance: row is the index in the shard, row_group the group holding it; texts match pyarrow.
        let want = try ParquetFixtures.expected("zstd_v1_manygroups")
        for p in prompts {
            let src = try XCTUnwrap(p.source)
            XCTAssertEqual(src.shard, "zstd_v1_manygroups.parquet")
            XCTAssertEqual(src.row_group, try file.locate(row: src.row).rowGroup)
            guard case .string(let raw) = want[src.row]["text"] else { XCTFail("row \(src.row) has no text"); continue }
            XCTAssertEqual(p.text, PromptSampler.clean(raw, options: options(6)))
        }
    }

    func testSmallFooterProbeReadsTheRestOfTheFooter() throws {
        let counting = CountingSource(try LocalFileSource(path: ParquetFixtures.path("zstd_v1_manygroups")))
        var limits = ParquetLimits()
        limits.footerProbeBytes = 4096
        let file = try ParquetFile(source: counting, limits: limits)
        let size = counting.size
        let footerLen = try counting.inner.read(offset: size - 8, count: 4).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertGreaterThan(footerLen, 4096)
        XCTAssertEqual(counting.reads.map { [$0.offset, Int64($0.count)] },
                       [[size - 4096, 4096], [size - 8 - Int64(footerLen), Int64(footerLen + 8 - 4096)], [0, 4]])
        XCTAssertEqual(file.rowCount, 640)
    }

    func testParquetDrawIsDeterministicAndTheSameRuleAsJSONL() throws {
        let path = ParquetFixtures.path("zstd_v1_manygroups")
        let seed = DistilRNG.seed(blockHash: "0xabc123", block: 77)
        func run() throws -> [PromptRecord] {
            try PromptSampler(shards: try Corpus.shards([path]), options: options(8)).sample(block: 77, seed: seed, blockHash: "0xabc123")
        }
        let a = try run(), b = try run()
        XCTAssertEqual(try a.map { try encodeJSON($0) }, try b.map { try encodeJSON($0) })
        // The same documented draw: shard by nextInt(below: shards), row by nextInt(below: rows).
        var rng = DistilRNG(domain: "prompts", seed: seed)
        let rows = try ParquetFile(path: path).rowCount
        _ = rng.nextInt(below: 1)
        XCTAssertEqual(a[0].source?.row, rng.nextInt(below: rows))
        // A directory of parquet shards is listed too.
        let dir = NSTemporaryDirectory() + "distil-parquet-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: path, toPath: dir + "/b.parquet")
        try FileManager.default.copyItem(atPath: ParquetFixtures.path("snappy_v1_fineweb"), toPath: dir + "/a.parquet")
        XCTAssertEqual(try Corpus.shards([dir]).map(\.name), ["a.parquet", "b.parquet"])
    }
}
