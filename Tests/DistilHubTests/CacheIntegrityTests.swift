import DistilFormats
@testable import DistilHub
import Foundation
import HubTestServer
import XCTest

/// A cache damaged after download (a crash, a full disk, another tool, a person) is detected before
/// compute and refetched or refused with a reason, never served as ok; two fetches on one cache
/// share the blobs through huggingface_hub's lock files (docs/FORMATS.md, "The Hub cache").
final class CacheIntegrityTests: XCTestCase {
    static let commit = "0123456789abcdef0123456789abcdef01234567"
    var tmp = ""
    var server: LoopbackHub!
    var weights: [UInt8] = []

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "distil-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        weights = HubClientTests.safetensors(300_000, seed: 3)
        server = LoopbackHub(repos: [
            .init(id: "miner/model", commit: CacheIntegrityTests.commit, files: [
                .init("config.json", Array("{\"vocab_size\": 16}".utf8)),
                .init("model.safetensors", weights),
            ]),
        ])
        try server.start()
    }

    override func tearDownWithError() throws {
        server.stop()
        try? FileManager.default.removeItem(atPath: tmp)
    }

    func client(offline: Bool = false) -> HubClient {
        var o = FetchOptions()
        o.retry.baseDelay = 0.01
        o.retry.maxDelay = 0.05
        o.retry.attempts = 2
        o.progress = false
        return HubClient(config: HubConfig(endpoint: server.endpoint, token: nil, cacheDir: tmp + "/hub", offline: offline), options: o)
    }

    var commitment: Commitment { Commitment(uid: 3, hotkey: "hk", block: 100, repo: "miner/model", revision: CacheIntegrityTests.commit) }
    var cache: RepoCache { RepoCache(root: tmp + "/hub", repo: try! RepoRef("miner/model", revision: CacheIntegrityTests.commit)) }
    var sha: String { Hashing.sha256Hex(weights) }
    var blob: String { cache.blob(sha) }
    var link: String { cache.snapshot(CacheIntegrityTests.commit) + "/model.safetensors" }
    var weightGets: Int { server.requests.filter { $0.method == "GET" && $0.target.hasSuffix("model.safetensors") }.count }

    /// Fetches into a fresh cache, then damages it with `damage`; the next fetch must end with the
    /// right bytes behind the snapshot entry, having downloaded the weights once more.
    func assertRepaired(_ what: String, _ damage: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(client().fetch(commitment).outcome.rawValue, "ok", file: file, line: line)
        try damage()
        server.clearLog()
        let m = client().fetch(commitment)
        XCTAssertEqual(m.outcome.rawValue, "ok", "\(what): \(m.message ?? "")", file: file, line: line)
        XCTAssertEqual(weightGets, 1, "\(what): the weights were not fetched again", file: file, line: line)
        XCTAssertEqual(try readFile(link, limit: 1 << 24), weights, what, file: file, line: line)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), "../../blobs/" + sha, what, file: file, line: line)
        // And a third fetch trusts the repaired blob: no request at all (the commit is pinned).
        server.clearLog()
        XCTAssertEqual(client().fetch(commitment).outcome.rawValue, "ok", file: file, line: line)
        XCTAssertEqual(server.requests.count, 0, "\(what): \(server.requests.map(\.target))", file: file, line: line)
    }

    func testABlobChangedAfterDownloadIsRefetched() throws {
        try assertRepaired("a flipped byte, same size") {
            let fd = open(blob, O_WRONLY)
            XCTAssertGreaterThanOrEqual(fd, 0)
            var b: UInt8 = weights[1000] ^ 0xFF
            XCTAssertEqual(pwrite(fd, &b, 1, 1000), 1)
            close(fd)
        }
    }

    func testAStampedBlobChangedLaterIsRefetched() throws {
        try assertRepaired("a flipped byte in a blob stamped as verified") {
            // Blobs are stamped once their ctime is 2 s old (CacheIntegrity.writeStamp): age it, stamp it.
            Thread.sleep(forTimeInterval: 2.2)
            XCTAssertEqual(client().fetch(commitment).outcome.rawValue, "ok")
            XCTAssertTrue(FileManager.default.fileExists(atPath: cache.stamp(sha)), "no stamp was written")
            let fd = open(blob, O_WRONLY)
            var b: UInt8 = weights[2000] ^ 0x10
            XCTAssertEqual(pwrite(fd, &b, 1, 2000), 1)
            close(fd)
        }
    }

    func testATruncatedSnapshotFileIsRefetched() throws {
        try assertRepaired("truncated") { XCTAssertEqual(truncate(link, off_t(weights.count / 2)), 0) }
    }

    func testADanglingSymlinkIsRefetched() throws {
        try assertRepaired("blob deleted") { XCTAssertEqual(unlink(blob), 0) }
    }

    func testASnapshotLinkLeadingOutOfTheCacheIsReplaced() throws {
        try assertRepaired("link to a file outside the cache") {
            // Same size and even the same bytes: it is still not ours, so it is not trusted.
            try writeFileAtomically(tmp + "/outside", weights)
            XCTAssertEqual(unlink(link), 0)
            XCTAssertEqual(symlink(tmp + "/outside", link), 0)
            // The blob itself is removed too, so only a fetch can bring the file back.
            XCTAssertEqual(unlink(blob), 0)
        }
    }

    func testOfflineADamagedCacheIsRefusedWithAReasonNeverOk() throws {
        XCTAssertEqual(client().fetch(commitment).outcome.rawValue, "ok")
        let fd = open(blob, O_WRONLY)
        var b: UInt8 = weights[5] ^ 0x01
        XCTAssertEqual(pwrite(fd, &b, 1, 5), 1)
        close(fd)
        let m = client(offline: true).fetch(commitment)
        XCTAssertEqual(m.outcome.rawValue, "transient", m.message ?? "")      // our disk, not the miner: RETRY
        XCTAssertTrue(m.message!.contains("HF_HUB_OFFLINE"), m.message!)
        XCTAssertFalse(FileManager.default.fileExists(atPath: blob), "the corrupt blob was kept")
        // Offline without a trees file the listing comes from the symlinks: one leading out is refused.
        try? FileManager.default.removeItem(atPath: cache.tree(CacheIntegrityTests.commit))
        try writeFileAtomically(tmp + "/outside", weights)
        unlink(link)
        XCTAssertEqual(symlink("../../../../../outside/blobs/" + sha, link), 0)
        let m2 = client(offline: true).fetch(commitment)
        XCTAssertEqual(m2.outcome.rawValue, "error", m2.message ?? "")
        XCTAssertTrue(m2.message!.contains("not into this repo's blobs/"), m2.message!)
    }

    func testOfflineAModelNeverFetchedIsRetryNotAnEmptyOk() throws {
        let m = client(offline: true).fetch(commitment)
        XCTAssertEqual(m.outcome.rawValue, "transient", m.message ?? "")
        XCTAssertTrue(m.files.isEmpty)
        // And once a snapshot folder exists but holds nothing (every download failed): still not ok.
        try makeDirs(cache.snapshot(CacheIntegrityTests.commit))
        XCTAssertEqual(client(offline: true).fetch(commitment).outcome.rawValue, "transient")
    }

    func testLockFilesAreGroupWritableAsHuggingfaceHubMakesThem() throws {
        let old = umask(0o022)
        defer { umask(old) }
        XCTAssertEqual(client().fetch(commitment).outcome.rawValue, "ok")
        var st = stat()
        XCTAssertEqual(stat(cache.lock(sha), &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o664)
    }

    func testAFailedFetchLeavesARepoFolderHuggingfaceHubCanScan() throws {
        server.inject("model.safetensors", .status(500, [:]))
        server.inject("model.safetensors", .status(500, [:]))
        let m = client().fetch(commitment)
        XCTAssertEqual(m.outcome.rawValue, "transient", m.message ?? "")
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache.folder + "/snapshots", isDirectory: &isDir) && isDir.boolValue,
                      "no snapshots/ folder: huggingface_hub's scan calls the repo corrupted")
    }

    // MARK: two fetches on one cache

    /// A cache we cannot write (here: a file where its folder should be; a full disk in
    /// scripts/tests/diskfull.sh) is ours, not the model's: dl-fetch's path throws, naming the cache
    /// file, instead of recording the model as `transient`; the library's `fetch` still returns one.
    func testAnUnwritableCacheStopsTheFetchInsteadOfFailingTheModel() throws {
        try writeFileAtomically(tmp + "/hub", Array("not a folder".utf8))
        XCTAssertThrowsError(try client().fetchStoppingOnLocalFailure(commitment)) { e in
            XCTAssertTrue((e as? DistilError)?.message.hasPrefix(tmp + "/hub/") == true, "\(e)")
        }
        XCTAssertEqual(client().fetch(commitment).outcome.rawValue, "transient")
        // The Hub's own failures stay the model's outcome.
        let gone = Commitment(uid: 4, hotkey: "hk", block: 100, repo: "miner/absent")
        XCTAssertEqual(try client().fetchStoppingOnLocalFailure(gone).outcome.rawValue, "not_found")
    }

    func testTwoFetchesOnOneCacheShareTheBlobs() throws {
        server.bytesPerSecond = 1_500_000          // ~0.8 s for the weights: the two overlap
        let group = DispatchGroup()
        let results = ManifestBox()
        for _ in 0..<2 {
            group.enter()
            Thread.detachNewThread { [self] in
                results.append(client().fetch(commitment))
                group.leave()
            }
        }
        group.wait()
        XCTAssertEqual(results.all.map(\.outcome.rawValue), ["ok", "ok"], results.all.compactMap(\.message).joined(separator: "; "))
        // One download: the second waited on the blob's lock and found it complete and verified.
        XCTAssertEqual(weightGets, 1)
        XCTAssertEqual(try readFile(blob, limit: 1 << 24), weights)
        let names = try FileManager.default.contentsOfDirectory(atPath: cache.folder + "/blobs")
        XCTAssertFalse(names.contains { $0.contains(".incomplete") }, "\(names)")
    }

    func testTwoDlFetchProcessesOnOneCache() throws {
        // The built tool, twice, at once: separate processes, one cache, one Hub.
        var bin = Bundle.main.bundleURL
        if !FileManager.default.fileExists(atPath: bin.appendingPathComponent("dl-fetch").path) {
            bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        }
        let tool = bin.appendingPathComponent("dl-fetch")
        guard FileManager.default.isExecutableFile(atPath: tool.path) else { return XCTFail("dl-fetch not built in \(bin.path)") }
        server.bytesPerSecond = 1_500_000
        let input = tmp + "/commitments.jsonl"
        try writeFileAtomically(input, try encodeJSON(commitment) + [0x0A])
        var runs: [(Process, String)] = []
        for i in 0..<2 {
            let p = Process()
            p.executableURL = tool
            p.arguments = ["-q", "-o", tmp + "/m\(i).jsonl", input]
            p.environment = ["HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": tmp + "/hub", "PATH": "/usr/bin:/bin"]
            try p.run()
            runs.append((p, tmp + "/m\(i).jsonl"))
        }
        for (p, out) in runs {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
            let m = try JSONLReader<Manifest>(path: out).readAll()
            XCTAssertEqual(m.map(\.outcome.rawValue), ["ok"], m.compactMap(\.message).joined())
        }
        XCTAssertEqual(weightGets, 1, "the second process downloaded the weights again")
        XCTAssertEqual(try readFile(blob, limit: 1 << 24), weights)
        let names = try FileManager.default.contentsOfDirectory(atPath: cache.folder + "/blobs")
        XCTAssertFalse(names.contains { $0.contains(".incomplete") }, "\(names)")
    }

    func testAFetchWaitsWhileAnotherToolHoldsTheBlobLock() throws {
        // huggingface_hub takes .locks/models--ORG--NAME/ETAG.lock with flock (filelock) while it
        // writes a blob: hold it the same way and the fetch must wait, then finish.
        let lockPath = cache.lock(sha)
        try makeDirs((lockPath as NSString).deletingLastPathComponent)
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o664)
        XCTAssertEqual(flock(fd, LOCK_EX), 0)
        let done = DispatchSemaphore(value: 0)
        let results = ManifestBox()
        Thread.detachNewThread { [self] in results.append(client().fetch(commitment)); done.signal() }
        XCTAssertEqual(done.wait(timeout: .now() + 1.0), .timedOut, "the fetch did not wait for the lock")
        XCTAssertFalse(FileManager.default.fileExists(atPath: blob))
        flock(fd, LOCK_UN)
        close(fd)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(results.all.first?.outcome.rawValue, "ok")
        XCTAssertEqual(try readFile(blob, limit: 1 << 24), weights)
    }
}

final class ManifestBox: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Manifest] = []
    func append(_ m: Manifest) { lock.lock(); list.append(m); lock.unlock() }
    var all: [Manifest] { lock.lock(); defer { lock.unlock() }; return list }
}
