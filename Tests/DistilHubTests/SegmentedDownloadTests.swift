import DistilFormats
@testable import DistilHub
import Foundation
import HubTestServer
import XCTest

/// One large file over several ranged connections (FetchOptions.connectionsPerFile): chunks land out
/// of order, hashing stays in order, and every way a segmented download can end leaves either the
/// verified blob or a plain prefix that the next run (or huggingface_hub) resumes.
final class SegmentedDownloadTests: XCTestCase {
    static let commit = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
    static let chunk = 256 << 10
    var tmp = ""
    var server: LoopbackHub!
    var weights: [UInt8] = []
    var sha: String { Hashing.sha256Hex(weights) }
    var blobs: String { tmp + "/hub/models--miner--model/blobs" }

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "distil-seg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        weights = HubClientTests.safetensors(700_000, seed: 9)   // 2.8 MB: 11 chunks of 256 KB
        server = LoopbackHub(repos: [.init(id: "miner/model", commit: SegmentedDownloadTests.commit,
                                           files: [.init("model.safetensors", weights), .init("config.json", Array("{}".utf8))])])
        try server.start()
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(atPath: tmp)
    }

    func client(token: String? = nil, attempts: Int = 6, connections: Int = 3) -> HubClient {
        var o = FetchOptions()
        o.retry.baseDelay = 0.01
        o.retry.maxDelay = 0.05
        o.retry.attempts = attempts
        o.progress = false
        o.connectionsPerFile = connections
        o.segmentBytes = Int64(SegmentedDownloadTests.chunk)
        return HubClient(config: HubConfig(endpoint: server.endpoint, token: token, cacheDir: tmp + "/hub", offline: false), options: o)
    }

    func fetch(_ c: HubClient, repo: String = "miner/model") -> Manifest {
        c.fetch(Commitment(uid: 1, hotkey: "hk", block: 1, repo: repo, revision: nil))
    }

    /// The start offsets of the ranged content requests, in the order the server saw them.
    var rangeStarts: [Int] {
        server.requests.filter { $0.target.hasPrefix("/cdn/") }.compactMap { r in
            r.headers["range"].flatMap { Int($0.dropFirst(6).split(separator: "-")[0]) }
        }
    }

    func assertPlaced(_ m: Manifest, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "", file: file, line: line)
        XCTAssertEqual(try readFile(m.path! + "/model.safetensors"), weights, file: file, line: line)
        XCTAssertEqual(try readFile(blobs + "/" + sha), weights, file: file, line: line)
        assertNoPartials(file: file, line: line)
    }

    func assertNoPartials(file: StaticString = #filePath, line: UInt = #line) {
        let left = (try? FileManager.default.contentsOfDirectory(atPath: blobs))?.filter { $0.contains(".") } ?? []
        XCTAssertEqual(left, [], "partial files left in the cache", file: file, line: line)
    }

    /// What a failed run left must be a prefix of the content, under the name huggingface_hub resumes.
    func assertPrefixOnly(file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: blobs)) ?? []
        XCTAssertFalse(names.contains { $0.contains(".distil-") }, "\(names)", file: file, line: line)
        XCTAssertFalse(names.contains(sha), "an unverified blob was placed", file: file, line: line)
        guard names.contains(sha + ".incomplete") else { return 0 }
        let part = try readFile(blobs + "/" + sha + ".incomplete")
        XCTAssertLessThan(part.count, weights.count, file: file, line: line)
        XCTAssertEqual(part, Array(weights.prefix(part.count)), "the partial file is not a prefix", file: file, line: line)
        return part.count
    }

    func testEveryChunkIsFetchedOnceOverSeveralConnections() throws {
        try assertPlaced(fetch(client()))
        let chunks = (weights.count + SegmentedDownloadTests.chunk - 1) / SegmentedDownloadTests.chunk
        XCTAssertEqual(rangeStarts.sorted(), (0..<chunks).map { $0 * SegmentedDownloadTests.chunk })
        // Each connection goes through the Hub's resolve URL once, then asks the content URL directly.
        let resolves = server.requests.filter { $0.target.contains("/resolve/") && $0.target.hasSuffix("model.safetensors") }
        XCTAssertGreaterThanOrEqual(resolves.count, 2)
        XCTAssertLessThanOrEqual(resolves.count, 3)
    }

    func testOneConnectionMeansOneStream() throws {
        try assertPlaced(fetch(client(connections: 1)))
        XCTAssertEqual(rangeStarts, [])   // a fresh single-stream download asks for no range at all
    }

    func testDroppedConnectionInOneSegmentResumesWithinThatSegment() throws {
        server.inject("/cdn/", .dropAfter(100_000))
        try assertPlaced(fetch(client()))
        // The dropped chunk was asked again from where it broke, not from its start.
        XCTAssertTrue(rangeStarts.contains { $0 % SegmentedDownloadTests.chunk == 100_000 }, "\(rangeStarts)")
    }

    func testFailedSegmentedRunLeavesAPrefixThatTheNextRunResumes() throws {
        server.inject("/cdn/", .dropAfter(100_000))
        let m = fetch(client(attempts: 1))
        XCTAssertEqual(m.outcome.rawValue, "transient", m.message ?? "")
        let kept = try assertPrefixOnly()
        server.clearLog()
        try assertPlaced(fetch(client()))
        XCTAssertEqual(rangeStarts.min(), kept, "the next run did not resume at the prefix")
    }

    func testInterruptedSegmentedRunIsRecoveredFromItsFrontier() throws {
        // What a killed run leaves: chunks beyond the frontier half written, holes in between.
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        var part = Array(weights.prefix(300_000)) + [UInt8](repeating: 0, count: 500_000)
        part += [UInt8](repeating: 0xEE, count: 200_000)
        try writeFileAtomically(blobs + "/" + sha + ".distil-part.incomplete", part)
        try writeFileAtomically(blobs + "/" + sha + ".distil-frontier.incomplete", Array("300000".utf8))
        try assertPlaced(fetch(client()))
        XCTAssertEqual(rangeStarts.min(), 300_000)
        XCTAssertFalse(rangeStarts.contains { $0 < 300_000 })
    }

    func testAnInterruptedRunOfAnEarlierVersionIsRecoveredToo() throws {
        // Before the pair's names ended in .incomplete (visible to huggingface_hub's scan).
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        try writeFileAtomically(blobs + "/" + sha + ".distil-part", Array(weights.prefix(300_000)) + [UInt8](repeating: 0, count: 9))
        try writeFileAtomically(blobs + "/" + sha + ".distil-part.frontier", Array("300000".utf8))
        try assertPlaced(fetch(client()))
        XCTAssertEqual(rangeStarts.min(), 300_000)
    }

    func testInterruptedRunWithoutItsFrontierStartsOver() throws {
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        try writeFileAtomically(blobs + "/" + sha + ".distil-part.incomplete", [UInt8](repeating: 0xEE, count: 900_000))
        try assertPlaced(fetch(client()))
        XCTAssertEqual(rangeStarts.min(), 0)
    }

    func testServerIgnoringRangeMidDownloadFallsBackToOneStream() throws {
        server.inject("/cdn/", .ignoreRange)
        try assertPlaced(fetch(client()))
    }

    func testServerThatNeverHonoursRangeStillDelivers() throws {
        for _ in 0..<20 { server.inject("/cdn/", .ignoreRange) }
        try assertPlaced(fetch(client()))
    }

    func testCorruptChunkIsCaughtAndNothingIsPlaced() throws {
        server.inject("/cdn/", .corrupt)
        let m = fetch(client())
        XCTAssertEqual(m.outcome.rawValue, "transient")
        XCTAssertTrue(m.message!.contains("does not match"), m.message!)
        XCTAssertEqual(try assertPrefixOnly(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/hub/models--miner--model/snapshots/\(SegmentedDownloadTests.commit)/model.safetensors"))
        try assertPlaced(fetch(client()))
    }

    func testTokenGoesToTheHubOnlyNeverToTheContentHost() throws {
        server.add(.init(id: "miner/private", commit: SegmentedDownloadTests.commit,
                         files: [.init("model.safetensors", weights), .init("config.json", Array("{}".utf8))], token: "s3cret"))
        server.cdnHost = "localhost"
        let m = fetch(client(token: "s3cret"), repo: "miner/private")
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        let cdn = server.requests.filter { $0.target.hasPrefix("/cdn/") }
        XCTAssertGreaterThan(cdn.count, 5)
        XCTAssertTrue(cdn.allSatisfy { $0.host.hasPrefix("localhost") && $0.headers["authorization"] == nil })
        XCTAssertTrue(server.requests.filter { !$0.target.hasPrefix("/cdn/") }.allSatisfy { $0.headers["authorization"] == "Bearer s3cret" })
    }

    func testBoardFrontierFollowsContiguousChunksOnly() {
        let b = SegmentBoard(start: 10, size: 110, chunk: 30, sidecar: -1)   // [10,40) [40,70) [70,100) [100,110)
        XCTAssertEqual(b.count, 4)
        XCTAssertEqual(b.range(3).lo, 100); XCTAssertEqual(b.range(3).hi, 110)
        _ = b.wrote(1, 30, added: 30)
        XCTAssertEqual(b.frontier, 10)             // chunk 1 done, chunk 0 not begun: no prefix yet
        _ = b.wrote(0, 12, added: 12)
        XCTAssertEqual(b.frontier, 22)
        XCTAssertEqual(b.wrote(0, 30, added: 18), 70)   // chunk 0 completes: the frontier jumps over chunk 1
        _ = b.wrote(3, 10, added: 10)
        XCTAssertEqual(b.frontier, 70)
        XCTAssertEqual(b.wrote(2, 30, added: 30), 110)
        XCTAssertEqual(b.total, 100)
    }
}
