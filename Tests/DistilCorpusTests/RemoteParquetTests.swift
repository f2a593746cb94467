import DistilCorpus
import DistilFormats
import Foundation
import HubTestServer
import XCTest

/// A parquet shard on a (loopback) Hub, sampled with ranged reads through its resolve URL.
final class RemoteParquetTests: XCTestCase {
    func testRemoteShardSamplesLikeTheLocalCopyReadingOnlyRanges() throws {
        let name = "zstd_v1_manygroups"
        let bytes = try ParquetFixtures.bytes(name)
        let server = LoopbackHub(repos: [.init(id: "datasets/org/fineweb", commit: String(repeating: "f", count: 40),
                                                files: [.init("data/\(name).parquet", bytes, lfs: true)])])
        try server.start()
        defer { server.stop() }
        let url = server.endpoint + "/datasets/org/fineweb/resolve/main/data/\(name).parquet"
        var o = SamplingOptions()
        o.count = 3; o.minChars = 1
        let seed = DistilRNG.seed(blockHash: "0x77", block: 5)
        let remote = try PromptSampler(shards: try Corpus.shards([url]), options: o).sample(block: 5, seed: seed, blockHash: "0x77")
        let local = try PromptSampler(shards: try Corpus.shards([ParquetFixtures.path(name)]), options: o).sample(block: 5, seed: seed, blockHash: "0x77")
        XCTAssertEqual(remote.map(\.text), local.map(\.text))
        XCTAssertEqual(remote.map { $0.source?.row }, local.map { $0.source?.row })
        XCTAssertEqual(remote.map { $0.source?.row_group }, local.map { $0.source?.row_group })
        XCTAssertEqual(remote[0].source?.shard, url)
        // Only ranges came over the wire, never the whole file.
        let cdn = server.requests.filter { $0.target.hasPrefix("/cdn/") }
        XCTAssertFalse(cdn.isEmpty)
        XCTAssertTrue(cdn.allSatisfy { $0.headers["range"] != nil })
        XCTAssertLessThan(server.bodyBytesSent, Int64(bytes.count))
        // A remote shard that is not parquet, and one that does not exist.
        XCTAssertThrowsError(try Corpus.shards([server.endpoint + "/x/y/resolve/main/a.jsonl"]))
        XCTAssertThrowsError(try Corpus.shards([server.endpoint + "/datasets/org/fineweb/resolve/main/nope.parquet"])[0].rowCount())
    }
}
