@testable import DistilEval
import DistilFormats
import Foundation
import XCTest

/// What moved out of dl-kl's and dl-teacher's mains: the resume rule of `dl-kl --checks`, the seed
/// and prompt-id rules of a teacher run, the top-k of `dl-teacher inspect`.
final class EvalRunTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "distil-evalrun-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func verdict(uid: Int, ok: Bool, path: String?) -> CheckVerdict {
        var m = Manifest(commitment: Commitment(uid: uid, hotkey: "hk\(uid)", block: 10 + uid, repo: "org/m\(uid)", revision: "main"),
                         commit: String(repeating: "\(uid)", count: 40), path: path, files: [], outcome: .ok)
        m.weights_sha256 = "w\(uid)"
        return CheckVerdict(manifest: m, ok: ok, reason: ok ? .ok : .params, message: "")
    }

    func writeChecks(_ vs: [CheckVerdict]) throws -> String {
        let path = dir + "/checks.jsonl"
        let w = JSONLWriter(try FileWriter(path: path))
        for v in vs { try w.write(v) }
        try w.close()
        return path
    }

    func testScoreAllSkipsRejectedModelsKeepsFinishedFilesAndCarriesTheCheckIdentity() throws {
        let checks = try writeChecks([verdict(uid: 3, ok: true, path: "/models/3"), verdict(uid: 1, ok: false, path: "/models/1"),
                                      verdict(uid: 2, ok: true, path: "/models/2")])
        let out = dir + "/kl"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try writeFileAtomically(out + "/2.jsonl", Array("kept\n".utf8))   // finished by a killed run
        var run = StudentRun(stream: "teacher.dlt")
        var scored: [(String, StudentIdentity)] = []
        run.scoreModel = { _, directory, identity, w in
            scored.append((directory, identity))
            try w.write(KLRecord(model: identity.model, promptID: "p", klMean: 0.5, klStd: 0, nTokens: 1))
        }
        var written: [StudentRun.Written] = []
        try run.scoreAll(checks: checks, outDir: out) { written.append($0) }
        XCTAssertEqual(scored.map(\.0), ["/models/3"], "only the ok model without a file is scored")
        let id = try XCTUnwrap(scored.first?.1)
        XCTAssertEqual([id.uid, id.block], [3, 13])
        XCTAssertEqual(id.hotkey, "hk3")
        XCTAssertEqual(id.revision, String(repeating: "3", count: 40), "the pinned commit, not the branch")
        XCTAssertEqual(id.weightsSHA256, "w3")
        XCTAssertEqual(written, [StudentRun.Written(uid: "3", model: "org/m3", kl: out + "/3.jsonl"),
                                 StudentRun.Written(uid: "2", model: "org/m2", kl: out + "/2.jsonl")])
        XCTAssertEqual(try readFile(out + "/2.jsonl", limit: 100), Array("kept\n".utf8))
        XCTAssertEqual(try JSONLReader<KLRecord>(path: out + "/3.jsonl").readAll().map(\.model), ["org/m3"])
    }

    func testScoreAllRefusesAnOkModelWithoutALocalPath() throws {
        let checks = try writeChecks([verdict(uid: 4, ok: true, path: nil)])
        var run = StudentRun(stream: "teacher.dlt")
        run.scoreModel = { _, _, _, _ in XCTFail("nothing may be scored") }
        XCTAssertThrowsError(try run.scoreAll(checks: checks, outDir: dir + "/kl") { _ in }) { e in
            XCTAssertEqual((e as? DistilError)?.message, "\(checks): uid 4: no local path for org/m4")
        }
    }

    func testTopIsBestFirstWithTiesByLowerIDAndAtLeastOne() {
        let row: [Float] = [-3, -0.5, -2, -0.5, -0.123456]
        XCTAssertEqual(TeacherInspect.top(row, k: 3), [[4, -0.1235], [1, -0.5], [3, -0.5]])
        XCTAssertEqual(TeacherInspect.top(row, k: 0), [[4, -0.1235]])
        XCTAssertEqual(TeacherInspect.top(row, k: 9).map { Int($0[0]) }, [4, 1, 3, 2, 0])
    }

    func testSamplingSeedIsTheGivenOneElseTheBlocksAndGreedyHasNone() throws {
        XCTAssertNil(try TeacherJob.samplingSeed(temperature: 0, seed: "ab", block: 1, blockHash: "0xff"))
        XCTAssertEqual(try TeacherJob.samplingSeed(temperature: 0.7, seed: "ab", block: 1, blockHash: "0xff"), "ab")
        XCTAssertEqual(try TeacherJob.samplingSeed(temperature: 0.7, seed: nil, block: 42, blockHash: "0xAbC"), "abc/42")
        XCTAssertThrowsError(try TeacherJob.samplingSeed(temperature: 0.7, seed: nil, block: 42, blockHash: nil)) { e in
            XCTAssertEqual((e as? DistilError)?.kind, .usage)
        }
    }

    func testRepeatedPromptIDsAreRefused() throws {
        let ps = [PromptRecord(id: "a", text: "x"), PromptRecord(id: "b", text: "y")]
        XCTAssertNoThrow(try TeacherJob.checkUniqueIDs(ps, source: "p.jsonl"))
        XCTAssertThrowsError(try TeacherJob.checkUniqueIDs(ps + [PromptRecord(id: "a", text: "z")], source: "p.jsonl")) { e in
            XCTAssertEqual((e as? DistilError)?.message, "p.jsonl: duplicate prompt id 'a'")
        }
    }
}
