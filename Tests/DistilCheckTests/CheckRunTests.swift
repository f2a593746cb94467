import DistilCheck
import DistilFormats
import Foundation
import XCTest

/// What moved out of dl-check's main: `--only` (the models a listing names, matched by uid, hotkey,
/// repo and commit) and the teacher-tokenizer rule (a tokenizer.json or its directory).
final class CheckRunTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "distil-checkrun-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func manifest(_ uid: Int, commit: String?) -> Manifest {
        Manifest(commitment: Commitment(uid: uid, hotkey: "hk\(uid)", block: 7, repo: "org/m\(uid)", revision: "main"),
                 commit: commit, path: "/m/\(uid)", files: [], outcome: .ok)
    }

    func listing(_ ms: [Manifest]) throws -> String {
        let path = dir + "/plan.jsonl"
        let w = JSONLWriter(try FileWriter(path: path))
        for m in ms { try w.write(CheckVerdict(manifest: m, ok: true, reason: .ok, message: "")) }
        try w.close()
        return path
    }

    func testSelectKeepsTheListingsOrderAndMatchesTheCommit() throws {
        let all = [manifest(1, commit: "a"), manifest(2, commit: "b"), manifest(3, commit: "c")]
        let plan = try listing([all[2], all[0]])
        XCTAssertEqual(try CheckRun.select(all, listedIn: plan, from: "m.jsonl").map(\.uid), [3, 1])
    }

    func testSelectRefusesAListedModelWithoutItsManifest() throws {
        let plan = try listing([manifest(2, commit: "old")])
        XCTAssertThrowsError(try CheckRun.select([manifest(2, commit: "new")], listedIn: plan, from: "m.jsonl")) { e in
            XCTAssertEqual((e as? DistilError)?.message, "\(plan): uid 2 (org/m2 at old) has no manifest in m.jsonl")
        }
    }

    func testTeacherTokenizerIsAFileOrItsDirectory() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let tokenizer = try readFile(repo.appendingPathComponent("demo/tokenizer.json").path)
        try writeFileAtomically(dir + "/tokenizer.json", tokenizer)
        try writeFileAtomically(dir + "/tokenizer_config.json", Array(#"{"chat_template": "{# c #}hi"}"#.utf8))
        var byDir = CheckOptions(), byFile = CheckOptions()
        try byDir.useTeacherTokenizer(dir)
        try byFile.useTeacherTokenizer(dir + "/tokenizer.json")
        for o in [byDir, byFile] {
            XCTAssertEqual(o.teacherTokenizerSHA256, try Hashing.sha256Hex(file: dir + "/tokenizer.json"))
            XCTAssertEqual(o.teacherChatTemplate, "{# c #}hi")
            XCTAssertNotNil(o.teacherTokenizer)
        }
        var missing = CheckOptions()
        XCTAssertThrowsError(try missing.useTeacherTokenizer(dir + "/missing.json"))
    }
}
