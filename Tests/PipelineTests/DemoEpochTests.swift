import DistilFormats
import Foundation
import XCTest

/// End to end: the README's demo (three epochs on the embedded checkpoints, then a reproduction),
/// run through the real shell pipelines and the built tools.
final class DemoEpochTests: XCTestCase {
    var repo: URL { URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }

    /// The directory holding the built executables (next to the test bundle).
    var binDir: String {
        var u = Bundle.main.bundleURL
        if !FileManager.default.fileExists(atPath: u.appendingPathComponent("dl-kl").path) {
            u = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        }
        return u.path
    }

    @discardableResult
    func sh(_ args: [String], env: [String: String] = [:], expect: Int32 = 0) throws -> (out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e["DISTIL_BIN"] = binDir
        for (k, v) in env { e[k] = v }
        p.environment = e
        p.currentDirectoryURL = repo
        let o = Pipe(), r = Pipe()
        p.standardOutput = o; p.standardError = r
        try p.run()
        let outData = o.fileHandleForReading.readDataToEndOfFile()
        let errData = r.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let out = String(decoding: outData, as: UTF8.self), err = String(decoding: errData, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, expect, "\(args.joined(separator: " ")) failed:\n\(err)")
        return (out, err)
    }

    func testDemoEpochChallengerDethronesKingAndReproduces() throws {
        guard FileManager.default.fileExists(atPath: binDir + "/dl-judge") else {
            XCTFail("built tools not found in \(binDir)"); return
        }
        let work = NSTemporaryDirectory() + "distil-demo-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (out, err) = try sh(["pipelines/demo.sh", work])
        // The verdict of the block-200 epoch: the challenger (uid 2) takes all the weight.
        let verdict = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        XCTAssertEqual(verdict["winner"] as? Int, 2, out)
        XCTAssertTrue(err.contains("byte-identical"), err)
        XCTAssertTrue(err.contains("no new challenger"), err)
        // Epoch 260 spent no compute: no prompts, teacher stream or KL files.
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/epoch-260/teacher.dlt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/epoch-200/teacher.dlt"))
        // Running the same epoch again resumes from the cache and gives the same verdict bytes.
        let before = try readFile(work + "/epoch-200/verdict.json")
        try sh(["pipelines/reproduce.sh", "--work", work, "--block", "200"])
        XCTAssertEqual(try readFile(work + "/epoch-200/verdict.json"), before)
    }

    func testEpochRefusesBadArgumentsWithUsageStatus() throws {
        let (_, err) = try sh(["pipelines/epoch.sh", "--work", "/tmp/x"], expect: 2)
        XCTAssertTrue(err.contains("--commitments is required"), err)
    }
}
