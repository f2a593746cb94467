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
}
