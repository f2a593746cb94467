import DistilFormats
import DistilHub
import Foundation
import XCTest

final class LocalFetchTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "distil-fetch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/model/sub", withIntermediateDirectories: true)
        try writeFileAtomically(dir + "/model/config.json", Array("{}".utf8))
        try writeFileAtomically(dir + "/model/model.safetensors", [1, 2, 3])
        try writeFileAtomically(dir + "/model/sub/extra.txt", Array("x".utf8))
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testManifestListsFilesWithHashes() throws {
        let m = LocalFetcher.fetch(Commitment(uid: 4, hotkey: "h", block: 9, repo: "file://" + dir + "/model"))
        XCTAssertEqual(m.outcome.rawValue, "ok")
        XCTAssertEqual(m.files.map(\.name), ["config.json", "model.safetensors", "sub/extra.txt"])
        XCTAssertEqual(m.files[1].sha256, Hashing.sha256Hex([1, 2, 3] as [UInt8]))
        XCTAssertEqual(m.files[1].size, 3)
        XCTAssertEqual(m.weights_sha256, Hashing.sha256Hex("model.safetensors\t\(Hashing.sha256Hex([1, 2, 3] as [UInt8]))\n"))
        XCTAssertEqual(m.uid, 4)
    }

    func testMissingDirectoryIsNotFound() {
        let m = LocalFetcher.fetch(Commitment(uid: 1, hotkey: "h", block: 1, repo: dir + "/nope"))
        XCTAssertEqual(m.outcome.rawValue, "not_found")
    }

    /// A header length of 2^63 (or beyond the file) is the fetch's `error`, as for a Hub repo.
    func testImpossibleSafetensorsHeaderLengthIsAnError() throws {
        for n: UInt64 in [1 << 63, 9, 100 << 20 + 1] {
            var bytes = withUnsafeBytes(of: n.littleEndian) { Array($0) }
            bytes += Array("{}      ".utf8)
            try writeFileAtomically(dir + "/model/model.safetensors", bytes)
            let m = LocalFetcher.fetch(Commitment(uid: 1, hotkey: "h", block: 1, repo: dir + "/model"))
            XCTAssertEqual(m.outcome.rawValue, "error", "\(n)")
            XCTAssertTrue(m.message?.contains("safetensors header length \(n) is out of bounds") == true, m.message ?? "")
        }
        var ok = withUnsafeBytes(of: UInt64(8).littleEndian) { Array($0) }
        ok += Array("{}      ".utf8)
        try writeFileAtomically(dir + "/model/model.safetensors", ok)
        XCTAssertEqual(LocalFetcher.fetch(Commitment(uid: 1, hotkey: "h", block: 1, repo: dir + "/model")).outcome.rawValue, "ok")
    }

    /// A FIFO in place of a file is refused, never opened for reading (that would block).
    func testFIFOIsRefusedWithoutBlocking() throws {
        XCTAssertEqual(mkfifo(dir + "/model/weights.safetensors", 0o644), 0)
        let m = LocalFetcher.fetch(Commitment(uid: 1, hotkey: "h", block: 1, repo: dir + "/model"))
        XCTAssertEqual(m.outcome.rawValue, "error")
        XCTAssertTrue(m.message!.contains("not a regular file"), m.message!)
        XCTAssertThrowsError(try readFile(dir + "/model/weights.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("is not a regular file"), "\(e)")
        }
    }

    func testSymlinkOutOfTheDirectoryIsRefused() throws {
        try FileManager.default.createSymbolicLink(atPath: dir + "/model/escape", withDestinationPath: "/etc/passwd")
        let m = LocalFetcher.fetch(Commitment(uid: 1, hotkey: "h", block: 1, repo: dir + "/model"))
        XCTAssertEqual(m.outcome.rawValue, "error")
        XCTAssertTrue(m.message!.contains("outside the model directory"), m.message!)
    }

    /// Only a file:// URL, an absolute path or a ./ or ../ path names a local model; what exists
    /// on disk plays no part.
    func testOnlyExplicitPathsAreLocal() {
        for r in ["file:///m", "/abs/m", "./m", "../m", "./epoch-200/kl"] { XCTAssertTrue(LocalFetcher.isLocal(r), r) }
        for r in ["epoch-200/kl", "model", "demo/king", "Qwen/Qwen3-0.6B"] { XCTAssertFalse(LocalFetcher.isLocal(r), r) }
    }

    /// A miner commits `epoch-200/kl`, a folder of the validator's working directory that holds a
    /// model-shaped set of files: dl-fetch (offline here) asks the Hub and gets `transient`, and
    /// the recheck of a manifest claiming it as local asks the Hub too; neither reads the folder.
    func testCommittedRepoIdThatIsAFolderOfTheWorkingDirectoryGoesToTheHub() throws {
        try FileManager.default.createDirectory(atPath: dir + "/work/epoch-200/kl", withIntermediateDirectories: true)
        try writeFileAtomically(dir + "/work/epoch-200/kl/config.json", Array("{}".utf8))
        try writeFileAtomically(dir + "/work/epoch-200/kl/model.safetensors", [1, 2, 3])
        let was = FileManager.default.currentDirectoryPath
        XCTAssertTrue(FileManager.default.changeCurrentDirectoryPath(dir + "/work"))
        defer { FileManager.default.changeCurrentDirectoryPath(was) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: "epoch-200/kl/model.safetensors"))

        var o = FetchOptions()
        o.progress = false
        o.headersDir = dir + "/headers"
        let config = HubConfig(endpoint: "http://127.0.0.1:9", token: nil, cacheDir: dir + "/hub", offline: true)
        let out = MemoryWriter()
        let c = Commitment(uid: 7, hotkey: "hk7", block: 190, repo: "epoch-200/kl")
        try FetchRun(config: config, options: o).run([c], into: JSONLWriter(out))
        let ms = try JSONLReader<Manifest>(MemoryReader(out.bytes)).readAll()
        XCTAssertEqual(ms.count, 1)
        XCTAssertEqual(ms[0].outcome, .transient, ms[0].message ?? "")
        XCTAssertNil(ms[0].path)
        XCTAssertNotEqual(ms[0].commit, "local")
        XCTAssertTrue(ms[0].message?.contains("HF_HUB_OFFLINE") == true, ms[0].message ?? "")

        let claimed = Manifest(commitment: c, commit: "local", path: dir + "/work/epoch-200/kl",
                               files: [ManifestFile(name: "config.json", size: 2, sha256: Hashing.sha256Hex(Array("{}".utf8)))], outcome: .ok)
        let r = HubClient(config: config, options: o).recheck(claimed)
        XCTAssertEqual(r.outcome, .transient, r.message ?? "")
    }
}
