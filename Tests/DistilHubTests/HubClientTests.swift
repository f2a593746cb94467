import DistilFormats
@testable import DistilHub
import Foundation
import HubTestServer
import XCTest

/// dl-fetch's Hub client against a real HTTP server on loopback (HubTestServer), with faults.
final class HubClientTests: XCTestCase {
    static let commit = "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd"
    var tmp = ""
    var server: LoopbackHub!
    var weights: [UInt8] = []

    /// A valid safetensors file of `n` f32 values.
    static func safetensors(_ n: Int, seed: UInt8) -> [UInt8] {
        var header = Array("{\"w\":{\"dtype\":\"F32\",\"shape\":[\(n)],\"data_offsets\":[0,\(4 * n)]}}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        for i in 0..<8 { out.append(UInt8((header.count >> (8 * i)) & 0xFF)) }
        out += header
        var x = UInt32(seed) &* 2654435761
        for _ in 0..<(4 * n) { x = x &* 1103515245 &+ 12345; out.append(UInt8(truncatingIfNeeded: x >> 16)) }
        return out
    }

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "distil-hub-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        weights = HubClientTests.safetensors(700_000, seed: 7)   // 2.8 MB, served as LFS
        server = LoopbackHub(repos: [
            .init(id: "miner/model", commit: HubClientTests.commit, files: [
                .init("config.json", Array("{\"vocab_size\": 16}".utf8)),
                .init("model.safetensors", weights),
                .init("sub/readme.md", Array("hello\n".utf8)),
                .init("pytorch_model.bin", [1, 2, 3], lfs: true),
            ]),
        ])
        try server.start()
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(atPath: tmp)
    }

    func client(token: String? = nil, offline: Bool = false, endpoint: String? = nil,
                configure: (inout FetchOptions) -> Void = { _ in }) -> HubClient {
        var o = FetchOptions()
        o.retry.baseDelay = 0.01
        o.retry.maxDelay = 0.05
        o.progress = false
        o.headersDir = tmp + "/headers"
        configure(&o)
        let config = HubConfig(endpoint: endpoint ?? server.endpoint, token: token, cacheDir: tmp + "/hub", offline: offline)
        return HubClient(config: config, options: o)
    }

    func commitment(_ repo: String = "miner/model", revision: String? = nil) -> Commitment {
        Commitment(uid: 3, hotkey: "hk", block: 100, repo: repo, revision: revision)
    }

    var repoFolder: String { tmp + "/hub/models--miner--model" }

    /// Every file under the cache folder: nothing partial or stray is ever left behind.
    func cacheEntries() -> [String] {
        (FileManager.default.enumerator(atPath: tmp + "/hub")?.allObjects as? [String] ?? []).sorted()
    }

    func assertNoPartials(file: StaticString = #filePath, line: UInt = #line) {
        let bad = cacheEntries().filter { $0.hasSuffix(".incomplete") || $0.contains(".distil-") || $0.contains(".tmp") }
        XCTAssertEqual(bad, [], "partial files left in the cache", file: file, line: line)
    }

    // MARK: the happy path and the cache layout

    func testFetchWritesHuggingFaceCacheLayout() throws {
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        XCTAssertEqual(m.commit, HubClientTests.commit)
        XCTAssertEqual(m.files.map(\.name), ["config.json", "model.safetensors", "pytorch_model.bin", "sub/readme.md"])
        let sha = Hashing.sha256Hex(weights)
        XCTAssertEqual(m.files[1].sha256, sha)
        XCTAssertEqual(m.files[1].size, Int64(weights.count))
        let snap = repoFolder + "/snapshots/" + HubClientTests.commit
        XCTAssertEqual(m.path, snap)
        // Relative symlinks into blobs/, named by the SHA-256 (LFS) or the git blob id.
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: snap + "/model.safetensors"), "../../blobs/" + sha)
        let readme = LoopbackHub.File("sub/readme.md", Array("hello\n".utf8))
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: snap + "/sub/readme.md"), "../../../blobs/" + readme.gitBlobId)
        XCTAssertEqual(try readFile(snap + "/model.safetensors"), weights)
        XCTAssertEqual(try readFile(snap + "/sub/readme.md"), Array("hello\n".utf8))
        XCTAssertEqual(String(decoding: try readFile(repoFolder + "/refs/main"), as: UTF8.self), HubClientTests.commit)
        XCTAssertTrue(FileManager.default.fileExists(atPath: repoFolder + "/trees/\(HubClientTests.commit).json"))
        // A .bin is listed (dl-check rejects it by name) but not downloaded.
        XCTAssertFalse(FileManager.default.fileExists(atPath: snap + "/pytorch_model.bin"))
        XCTAssertEqual(m.weights_sha256, WeightFiles.identity([("model.safetensors", sha), ("pytorch_model.bin", Hashing.sha256Hex([1, 2, 3] as [UInt8]))]))
        assertNoPartials()
    }

    func testPinnedCommitAlreadyCachedSendsNoRequest() throws {
        XCTAssertEqual(client().fetch(commitment()).outcome.rawValue, "ok")
        server.clearLog()
        let m = client().fetch(commitment(revision: HubClientTests.commit))
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        XCTAssertEqual(server.requests.map(\.target), [])
        // A branch is re-resolved (one listing request) but nothing is downloaded again.
        let again = client().fetch(commitment())
        XCTAssertEqual(again.outcome.rawValue, "ok")
        XCTAssertEqual(server.requests.count, 1)
        XCTAssertTrue(server.requests[0].target.hasPrefix("/api/models/miner/model/revision/main"))
    }

    /// `dl-fetch --stats`: a cold cache downloads the files (and a listing), a warm one with the
    /// commit pinned sends nothing; the figures are the client's own counts of the server's replies.
    func testFetchStatsCountWhatWasTransferred() throws {
        var config = client().config
        config.cacheDir = tmp + "/hub"
        let run = FetchRun(config: config, options: client().options)
        let local = Commitment(uid: 9, hotkey: "hk9", block: 101, repo: tmp + "/nowhere", revision: nil)
        let cold = try run.run([commitment(), local], into: JSONLWriter(MemoryWriter()))
        let files = weights.count + "{\"vocab_size\": 16}".utf8.count + "hello\n".utf8.count
        XCTAssertEqual(cold.models.map(\.uid), [3, 9])
        XCTAssertEqual(cold.models[0].requests, server.requests.count)
        XCTAssertGreaterThanOrEqual(cold.models[0].bytes_received, Int64(files))
        XCTAssertLessThan(cold.models[0].bytes_received, Int64(files + 65_536), "more than the files and a listing")
        XCTAssertEqual(cold.models[1], FetchStats.Model(uid: 9, repo: tmp + "/nowhere", requests: 0, bytes_received: 0))
        XCTAssertEqual(cold.bytes_received, cold.models[0].bytes_received)
        XCTAssertEqual(cold.requests, cold.models[0].requests)
        server.clearLog()
        let warm = try run.run([commitment(revision: HubClientTests.commit)], into: JSONLWriter(MemoryWriter()))
        XCTAssertEqual(warm, FetchStats(models: [.init(uid: 3, repo: "miner/model", requests: 0, bytes_received: 0)]))
        XCTAssertEqual(server.requests.count, 0)
    }

    // MARK: faults

    func testDroppedConnectionResumesWithRange() throws {
        server.inject("model.safetensors", .dropAfter(1_000_000))
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        let ranges = server.requests.filter { $0.target.hasPrefix("/cdn/") }.compactMap { $0.headers["range"] }
        XCTAssertEqual(ranges, ["bytes=1000000-"])
        XCTAssertEqual(try readFile(m.path! + "/model.safetensors"), weights)
        assertNoPartials()
    }

    func testPartialFileFromAnEarlierRunIsResumed() throws {
        let sha = Hashing.sha256Hex(weights)
        try FileManager.default.createDirectory(atPath: repoFolder + "/blobs", withIntermediateDirectories: true)
        try writeFileAtomically(repoFolder + "/blobs/\(sha).incomplete", Array(weights[0..<123_456]))
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        XCTAssertEqual(server.requests.filter { $0.target.hasPrefix("/cdn/") }.compactMap { $0.headers["range"] }, ["bytes=123456-"])
        XCTAssertEqual(try readFile(m.path! + "/model.safetensors"), weights)
        assertNoPartials()
    }

    func testServerIgnoringRangeRestartsFromZero() throws {
        let sha = Hashing.sha256Hex(weights)
        try FileManager.default.createDirectory(atPath: repoFolder + "/blobs", withIntermediateDirectories: true)
        try writeFileAtomically(repoFolder + "/blobs/\(sha).incomplete", Array(weights[0..<5000]))
        server.inject("model.safetensors", .ignoreRange)
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        XCTAssertEqual(try readFile(m.path! + "/model.safetensors"), weights)
    }

    func testRateLimitHonoursRetryAfter() throws {
        server.inject("/api/models/", .status(429, ["Retry-After": "1"]))
        let t0 = Date()
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        // The client waited what the server asked (a lower bound, not a speed assertion).
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.95)
        XCTAssertEqual(server.requests.filter { $0.target.hasPrefix("/api/") }.count, 2)
    }

    func testRateLimitAskingTooLongIsTransientNotDisqualifying() throws {
        server.inject("/api/models/", .status(429, ["RateLimit": "\"api\";r=0;t=3600"]))
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "transient")
        XCTAssertTrue(m.message!.contains("3600"), m.message!)
        XCTAssertEqual(cacheEntries().filter { $0.contains("blobs/") }, [])
    }

    func testServerErrorsAreRetriedThenTransient() throws {
        server.inject("model.safetensors", .status(500, [:]))
        server.inject("model.safetensors", .status(503, [:]))
        XCTAssertEqual(client().fetch(commitment()).outcome.rawValue, "ok")

        try FileManager.default.removeItem(atPath: tmp + "/hub")
        for _ in 0..<3 { server.inject("config.json", .status(500, [:])) }
        let m = client { $0.retry.attempts = 3 }.fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "transient")
        XCTAssertTrue(m.message!.contains("gave up after 3 attempts"), m.message!)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoFolder + "/snapshots/\(HubClientTests.commit)/config.json"))
        assertNoPartials()
    }

    func testCorruptBodyIsRejectedAndNothingIsLeft() throws {
        server.inject("model.safetensors", .corrupt)
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "transient")
        XCTAssertTrue(m.message!.contains("does not match"), m.message!)
        let sha = Hashing.sha256Hex(weights)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoFolder + "/blobs/" + sha))
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoFolder + "/snapshots/\(HubClientTests.commit)/model.safetensors"))
        assertNoPartials()
        // The next run fetches it cleanly.
        XCTAssertEqual(client().fetch(commitment()).outcome.rawValue, "ok")
    }

    func testCorruptSmallFileIsCaughtByItsGitBlobId() throws {
        server.inject("config.json", .corrupt)
        let m = client().fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "transient")
        XCTAssertTrue(m.message!.contains("config.json"), m.message!)
        assertNoPartials()
    }

    func testOverlongBodyIsRefused() throws {
        server.inject("model.safetensors", .extraBytes)
        let m = client { $0.retry.attempts = 1 }.fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "transient")
        XCTAssertTrue(m.message!.contains("more than"), m.message!)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoFolder + "/blobs/" + Hashing.sha256Hex(weights)))
    }

    func testTokenIsNotSentToAnotherHostOnRedirect() throws {
        server.add(.init(id: "miner/private", commit: HubClientTests.commit,
                         files: [.init("model.safetensors", weights), .init("config.json", Array("{}".utf8))], token: "s3cret"))
        server.cdnHost = "localhost"
        let m = client(token: "s3cret").fetch(commitment("miner/private"))
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        let cdn = server.requests.filter { $0.target.hasPrefix("/cdn/") }
        XCTAssertEqual(cdn.count, 1)
        XCTAssertTrue(cdn[0].host.hasPrefix("localhost"))
        XCTAssertNil(cdn[0].headers["authorization"], "the token followed a redirect to another host")
        let hub = server.requests.filter { !$0.target.hasPrefix("/cdn/") }
        XCTAssertFalse(hub.isEmpty)
        XCTAssertTrue(hub.allSatisfy { $0.headers["authorization"] == "Bearer s3cret" })
    }

    func testNotFoundPrivateGatedAndChanged() throws {
        XCTAssertEqual(client().fetch(commitment("miner/nothing")).outcome.rawValue, "not_found")
        server.add(.init(id: "miner/private", commit: HubClientTests.commit, files: [.init("config.json", [1])], token: "t"))
        let p = client().fetch(commitment("miner/private"))
        XCTAssertEqual(p.outcome.rawValue, "private")
        XCTAssertTrue(p.message!.contains("401"), p.message!)
        var gated = LoopbackHub.Repo(id: "miner/gated", commit: HubClientTests.commit, files: [.init("config.json", [1])])
        gated.gated = true
        server.add(gated)
        let g = client().fetch(commitment("miner/gated"))
        XCTAssertEqual(g.outcome.rawValue, "private")
        XCTAssertTrue(g.message!.contains("gated"), g.message!)
        // A pinned commit the Hub no longer has: the repo changed after the commitment.
        let c = client().fetch(commitment(revision: "1111111111222222222233333333334444444444"))
        XCTAssertEqual(c.outcome.rawValue, "changed")
        XCTAssertEqual(client().fetch(commitment(revision: "no-such-branch")).outcome.rawValue, "not_found")
        XCTAssertEqual(cacheEntries().filter { $0.contains("blobs/") }, [])
    }

    func testUnsafeFileNamesAreRefused() throws {
        for name in ["../escape.json", "a/../../escape.json", "/etc/passwd.json", "a//b.json", "./x.json", "con\u{1}.json"] {
            server.add(.init(id: "miner/evil", commit: HubClientTests.commit, files: [.init(name, Array("{}".utf8))]))
            let m = client().fetch(commitment("miner/evil"))
            XCTAssertEqual(m.outcome.rawValue, "error", name)
            XCTAssertTrue(m.message!.contains("unsafe file name"), m.message!)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/escape.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "/hub/escape.json"))
        XCTAssertEqual(cacheEntries().filter { $0.contains("blobs/") || $0.contains("snapshots/") }, [])
        XCTAssertEqual(client().fetch(commitment("../../etc")).outcome.rawValue, "error")
    }

    func testStalledServerTimesOutAsTransient() throws {
        server.inject("model.safetensors", .slow(2000))
        server.inject("model.safetensors", .slow(2000))
        let m = client {
            $0.retry.attempts = 2
            $0.timeouts.lowSpeedBytes = 100_000
            $0.timeouts.lowSpeedSeconds = 1
        }.fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "transient")
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoFolder + "/blobs/" + Hashing.sha256Hex(weights)))
    }

    // MARK: offline, and a cache written by huggingface_hub

    func testOfflineServesFromCacheAndFailsClearlyOtherwise() throws {
        XCTAssertEqual(client().fetch(commitment()).outcome.rawValue, "ok")
        server.clearLog()
        let m = client(offline: true).fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        XCTAssertEqual(m.commit, HubClientTests.commit)
        XCTAssertEqual(m.files[1].sha256, Hashing.sha256Hex(weights))
        let missing = client(offline: true).fetch(commitment("miner/other"))
        XCTAssertEqual(missing.outcome.rawValue, "transient")
        XCTAssertTrue(missing.message!.contains("HF_HUB_OFFLINE"), missing.message!)
        XCTAssertEqual(server.requests.count, 0)
    }

    func testCacheWrittenByHuggingfaceHubIsReadWithoutAnyRequest() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path + "/Fixtures/hf-cache"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/cp")
        p.arguments = ["-a", fixture, tmp + "/hub"]
        try p.run(); p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let commit = "0123456789abcdef0123456789abcdef01234567"
        // No server at all behind the endpoint: any request would fail the fetch.
        for (offline, revision) in [(true, nil), (false, commit), (true, commit)] as [(Bool, String?)] {
            let m = client(offline: offline, endpoint: "http://127.0.0.1:9")
                .fetch(commitment("distil-test/tiny-model", revision: revision))
            XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
            XCTAssertEqual(m.commit, commit)
            XCTAssertEqual(m.files.map(\.name), ["config.json", "docs/notes.txt", "model.safetensors", "tokenizer_config.json"])
            let st = try readFile(m.path! + "/model.safetensors")
            XCTAssertEqual(m.files[2].sha256, Hashing.sha256Hex(st))
            XCTAssertEqual(m.files[2].size, Int64(st.count))
            XCTAssertTrue(String(decoding: try readFile(m.path! + "/config.json"), as: UTF8.self).contains("qwen3"))
        }
    }

    // MARK: metadata only

    func testMetadataOnlyFetchesHeadersNotWeights() throws {
        let m = client { $0.metadataOnly = true }.fetch(commitment())
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        XCTAssertEqual(m.metadata_only, true)
        let sha = Hashing.sha256Hex(weights)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repoFolder + "/blobs/" + sha))
        XCTAssertTrue(FileManager.default.fileExists(atPath: m.path! + "/config.json"))
        let headerLen = Int(weights[0]) | Int(weights[1]) << 8
        XCTAssertEqual(try readFile(m.headers_path! + "/model.safetensors"), Array(weights[0..<(8 + headerLen)]))
        XCTAssertEqual(m.files[1].sha256, sha)
        // Far less than the file came over the wire.
        XCTAssertLessThan(server.bodyBytesSent, 300_000)
        XCTAssertTrue(server.requests.contains { $0.headers["range"] == "bytes=0-262143" })
    }

    func testHeaderLargerThanFirstReadTakesASecondRange() throws {
        // A header of ~300 KB (many tensors) needs a second ranged read.
        var json = "{"
        var off = 0
        for i in 0..<6000 {
            json += "\"model.layers.\(i).w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\(off),\(off + 4)]},"
            off += 4
        }
        json.removeLast(); json += "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var file: [UInt8] = (0..<8).map { UInt8((header.count >> (8 * $0)) & 0xFF) }
        file += header + [UInt8](repeating: 0, count: off)
        server.add(.init(id: "miner/big", commit: HubClientTests.commit, files: [.init("model.safetensors", file)]))
        let m = client { $0.metadataOnly = true }.fetch(commitment("miner/big"))
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        XCTAssertEqual(try readFile(m.headers_path! + "/model.safetensors"), Array(file[0..<(8 + header.count)]))
        XCTAssertEqual(server.requests.filter { $0.target.hasPrefix("/cdn/") }.compactMap { $0.headers["range"] }, ["bytes=0-262143", "bytes=262144-\(8 + header.count - 1)"])
    }

    func testLyingHeaderLengthIsRefused() throws {
        var file = HubClientTests.safetensors(10, seed: 1)
        file[5] = 0x7F   // a header "length" far beyond the file
        server.add(.init(id: "miner/liar", commit: HubClientTests.commit, files: [.init("model.safetensors", file)]))
        let m = client { $0.metadataOnly = true }.fetch(commitment("miner/liar"))
        XCTAssertEqual(m.outcome.rawValue, "error")
        XCTAssertTrue(m.message!.contains("out of bounds"), m.message!)
    }

    // MARK: small parts

    func testRetryAfterForms() {
        func r(_ h: [String: String]) -> HTTPResponse { HTTPResponse(status: 429, headers: h, url: "u") }
        XCTAssertEqual(RetryPolicy.requestedWait(r(["retry-after": "7"])), 7)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        XCTAssertEqual(RetryPolicy.requestedWait(r(["retry-after": "Tue, 14 Nov 2023 22:13:40 GMT"]), now: now)!, 20, accuracy: 0.5)
        XCTAssertEqual(RetryPolicy.requestedWait(r(["ratelimit": "\"api\";r=0;t=55"])), 55)
        XCTAssertEqual(RetryPolicy.requestedWait(r(["ratelimit": "limit=100, remaining=0, reset=12"])), 12)
        XCTAssertNil(RetryPolicy.requestedWait(r([:])))
        XCTAssertNil(RetryPolicy.requestedWait(r(["retry-after": "soon"])))
    }

    func testHostileListingsAreRefused() throws {
        let repo = try RepoRef("a/b", revision: nil)
        let good = "\"sha\":\"\(HubClientTests.commit)\""
        let blob = "\"blobId\":\"\(String(repeating: "a", count: 40))\""
        for body in [
            "[]", "{}", "{\(good)}",
            "{\"sha\":\"xyz\",\"siblings\":[]}",
            "{\(good),\"siblings\":[{\"rfilename\":\"a\",\"size\":true,\(blob)}]}",
            "{\(good),\"siblings\":[{\"rfilename\":\"a\",\"size\":-1,\(blob)}]}",
            "{\(good),\"siblings\":[{\"rfilename\":\"a\",\"size\":1,\"blobId\":\"../../x\"}]}",
            "{\(good),\"siblings\":[{\"rfilename\":\"a\",\"size\":1,\(blob)},{\"rfilename\":\"a\",\"size\":1,\(blob)}]}",
            "{\(good),\"siblings\":[{\"rfilename\":\"a\",\"size\":1,\(blob)},{\"rfilename\":\"a/b\",\"size\":1,\(blob)}]}",
            "{\(good),\"siblings\":[{\"rfilename\":\"a\",\"size\":1,\(blob),\"lfs\":{\"sha256\":\"zz\"}}]}",
        ] {
            XCTAssertThrowsError(try HubClient.parseListing(Array(body.utf8), repo: repo), body)
        }
        let ok = try HubClient.parseListing(Array("{\(good),\"siblings\":[{\"rfilename\":\"b/c.json\",\"size\":2,\(blob)}]}".utf8), repo: repo)
        XCTAssertEqual(ok.files, [RepoFile(path: "b/c.json", size: 2, blobId: String(repeating: "a", count: 40), lfsSHA256: nil)])
    }

    func testRepoIdsAndEnvironment() throws {
        for bad in ["", "a/b/c", "../x", "a/..", "-a/b", "a/b-", "a--b/c", "a b/c", "a/b\u{0}"] {
            XCTAssertThrowsError(try RepoRef(bad, revision: nil), bad)
        }
        XCTAssertThrowsError(try RepoRef("a/b", revision: "x y"))
        XCTAssertEqual(try RepoRef("Qwen/Qwen3.5-35B-A3B", revision: nil).folderName, "models--Qwen--Qwen3.5-35B-A3B")
        let c = HubConfig.fromEnvironment(["HOME": "/home/u", "HF_ENDPOINT": "http://mirror/", "HF_HUB_OFFLINE": "1", "HF_TOKEN": "t"])
        XCTAssertEqual(c.endpoint, "http://mirror")
        XCTAssertEqual(c.cacheDir, "/home/u/.cache/huggingface/hub")
        XCTAssertTrue(c.offline)
        XCTAssertEqual(c.token, "t")
        XCTAssertEqual(HubConfig.fromEnvironment(["HOME": "/h", "HF_HOME": "/hf"]).cacheDir, "/hf/hub")
        XCTAssertEqual(HubConfig.fromEnvironment(["HOME": "/h", "HF_HOME": "/hf", "HF_HUB_CACHE": "/c"]).cacheDir, "/c")
        XCTAssertFalse(HubConfig.fromEnvironment(["HOME": "/h", "HF_HUB_OFFLINE": "0"]).offline)
    }
}

/// Remote shards read with ranged GETs through the Hub's resolve URLs.
final class RemoteFileTests: XCTestCase {
    func testRangedReadsFetchOnlyWhatIsAsked() throws {
        var data = [UInt8](repeating: 0, count: 3_000_000)
        for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 11) }
        let server = LoopbackHub(repos: [.init(id: "datasets/org/corpus", commit: String(repeating: "e", count: 40),
                                                files: [.init("data/000.parquet", data, lfs: true)])])
        server.cdnHost = "localhost"
        try server.start()
        defer { server.stop() }
        var retry = RetryPolicy(); retry.baseDelay = 0.01
        let f = try RemoteFile(url: server.endpoint + "/datasets/org/corpus/resolve/main/data/000.parquet",
                               config: HubConfig(endpoint: server.endpoint, token: "tok", cacheDir: "/nonexistent", offline: false), retry: retry)
        XCTAssertEqual(f.size, Int64(data.count))
        XCTAssertEqual(try f.read(offset: Int64(data.count - 8), count: 8), Array(data[(data.count - 8)...]))
        // The tail read fetched the last 64 KB once; a read inside it sends nothing.
        let n = server.requests.count
        XCTAssertEqual(try f.read(offset: Int64(data.count - 5000), count: 100), Array(data[(data.count - 5000)..<(data.count - 4900)]))
        XCTAssertEqual(server.requests.count, n)
        XCTAssertEqual(try f.read(offset: 1_000_000, count: 4096), Array(data[1_000_000..<1_004_096]))
        XCTAssertLessThan(f.bytesFetched, 80_000)
        XCTAssertThrowsError(try f.read(offset: Int64(data.count) - 2, count: 10))
        // A dropped body is retried; the token went only to the Hub host.
        server.inject("/cdn/", .dropAfter(100))
        XCTAssertEqual(try f.read(offset: 2_000_000, count: 10_000), Array(data[2_000_000..<2_010_000]))
        XCTAssertTrue(server.requests.filter { $0.host.hasPrefix("localhost") }.allSatisfy { $0.headers["authorization"] == nil })
        XCTAssertTrue(server.requests.filter { $0.host.hasPrefix("127.0.0.1") }.allSatisfy { $0.headers["authorization"] == "Bearer tok" })
        // Missing file, and a server that ignores Range.
        XCTAssertThrowsError(try RemoteFile(url: server.endpoint + "/datasets/org/corpus/resolve/main/nope.parquet", config: HubConfig(endpoint: server.endpoint, token: nil, cacheDir: "/x", offline: false), retry: retry))
        server.inject("/cdn/", .ignoreRange)
        XCTAssertThrowsError(try f.read(offset: 100, count: 10)) { e in
            XCTAssertTrue("\(e)".contains("ignores Range"), "\(e)")
        }
    }
}
