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
    func sh(_ args: [String], env: [String: String] = [:], cwd: String? = nil, expect: Int32 = 0) throws -> (out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e["DISTIL_BIN"] = binDir
        for (k, v) in env { e[k] = v }
        p.environment = e
        p.currentDirectoryURL = cwd.map { URL(fileURLWithPath: $0) } ?? repo
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
        // The scored models were re-checked before the judge (local directories: re-hashed), and
        // only in the epochs that scored someone.
        let recheck = try String(contentsOfFile: work + "/epoch-200/recheck.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(recheck.count, 2)
        for line in recheck {
            let v = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            XCTAssertEqual(v["reason"] as? String, "OK", String(line))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: work + "/epoch-120/recheck.jsonl"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/epoch-260/recheck.jsonl"))
        // Running the same epoch again resumes from the cache and gives the same verdict bytes.
        let before = try readFile(work + "/epoch-200/verdict.json")
        try sh(["pipelines/reproduce.sh", "--work", work, "--block", "200"])
        XCTAssertEqual(try readFile(work + "/epoch-200/verdict.json"), before)
    }

    /// dl-check --recheck-only on a local model (a copy of the demo king): unchanged is OK, a changed
    /// file is CHANGED, a removed directory is REMOVED; --only picks the listed models.
    func testRecheckOnlyOfALocalModel() throws {
        let work = NSTemporaryDirectory() + "distil-recheck-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: work) }
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let model = work + "/king"
        try FileManager.default.copyItem(atPath: repo.appendingPathComponent("demo/king").path, toPath: model)
        try #"{"block": 100, "hotkey": "hk1", "repo": "\#(model)", "uid": 1}"#.write(toFile: work + "/c.jsonl", atomically: true, encoding: .utf8)
        try sh(["-c", "\"$DISTIL_BIN/dl-fetch\" c.jsonl > manifests.jsonl 2>/dev/null"], cwd: work)
        // The listing names the model as dl-check's verdicts do; a uid not in the manifests is an error.
        try sh(["-c", "\"$DISTIL_BIN/dl-check\" --vocab-size 512 manifests.jsonl > checks.jsonl 2>/dev/null"], cwd: work)
        func recheck() throws -> [String: Any] {
            let (out, _) = try sh(["-c", "\"$DISTIL_BIN/dl-check\" --recheck-only --only checks.jsonl manifests.jsonl"], cwd: work)
            return try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        }
        XCTAssertEqual(try recheck()["reason"] as? String, "OK")
        try "{}".write(toFile: model + "/generation_config.json", atomically: true, encoding: .utf8)
        XCTAssertEqual(try recheck()["reason"] as? String, "CHANGED")
        try FileManager.default.removeItem(atPath: model)
        XCTAssertEqual(try recheck()["reason"] as? String, "REMOVED")
        try #"{"uid": 9, "hotkey": "hk9", "repo": "x", "commit": "local"}"#.write(toFile: work + "/other.jsonl", atomically: true, encoding: .utf8)
        let (_, err) = try sh(["-c", "\"$DISTIL_BIN/dl-check\" --recheck-only --only other.jsonl manifests.jsonl"], cwd: work, expect: 1)
        XCTAssertTrue(err.contains("uid 9 (x at local) has no manifest"), err)
    }

    func testEpochRefusesBadArgumentsWithUsageStatus() throws {
        let (_, err) = try sh(["pipelines/epoch.sh", "--work", "/tmp/x"], expect: 2)
        XCTAssertTrue(err.contains("--commitments is required"), err)
    }
}
