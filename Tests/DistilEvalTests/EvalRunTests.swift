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
        run.scoreModel = { _, directory, identity, emit in
            scored.append((directory, identity))
            try emit(KLRecord(model: identity.model, promptID: "p", klMean: 0.5, klStd: 0, nTokens: 1))
        }
        var written: [StudentRun.Written] = []
        try run.scoreAll(checks: checks, outDir: out) { written.append($0) }
        XCTAssertEqual(scored.map(\.0), ["/models/3"], "only the ok model without a file is scored")
        // Its records are named from the check's ModelRef.
        var named = KLRecord(model: "", promptID: "p", klMean: 0, klStd: 0, nTokens: 0)
        try XCTUnwrap(scored.first?.1).name(&named)
        XCTAssertEqual([named.uid, named.block], [3, 13])
        XCTAssertEqual(named.model, "org/m3")
        XCTAssertEqual(named.hotkey, "hk3")
        XCTAssertEqual(named.revision, String(repeating: "3", count: 40), "the pinned commit, not the branch")
        XCTAssertEqual(named.weights_sha256, "w3")
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

    /// A model folder holding one weight file, and the weight identity dl-fetch gives it.
    func modelFolder(_ name: String, weights: [UInt8]) throws -> (String, String) {
        let d = dir + "/" + name
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        try writeFileAtomically(d + "/config.json", Array("{}".utf8))
        try writeFileAtomically(d + "/model.safetensors", weights)
        return (d, WeightFiles.identity([("model.safetensors", Hashing.sha256Hex(weights))]))
    }

    /// One model that cannot be scored never stops the others: each kind of failure becomes that
    /// model's one scoring-failure line (whose fault, why), its summary says "failed", and the next
    /// model is scored. The engine's error on files that are still the checked ones is the
    /// checkpoint's fault; on files we cannot read, or that are no longer the checked ones, ours.
    func testScoreAllRecordsEachModelsScoringFailureAndGoesOn() throws {
        let stream = dir + "/teacher.dlt"
        try writeFileAtomically(stream, try demoTeacherStream([PromptRecord(id: "p0", text: "", tokens: [1, 2, 3])], maxNew: 2,
                                                              batch: 1, threads: 1))
        var vs: [CheckVerdict] = []
        for uid in 3...8 {
            let (path, identity) = try modelFolder("m\(uid)", weights: Array("weights of \(uid)".utf8))
            var v = verdict(uid: uid, ok: true, path: path)
            v.weights_sha256 = identity
            vs.append(v)
        }
        unlink(dir + "/m5/model.safetensors")                                            // a dangling link: cannot be read
        try FileManager.default.createSymbolicLink(atPath: dir + "/m5/model.safetensors", withDestinationPath: dir + "/nowhere")
        try writeFileAtomically(dir + "/m6/model.safetensors", Array("other bytes".utf8))  // not the checked ones
        XCTAssertEqual(mkfifo(dir + "/m7/model.safetensors.fifo", 0o644), 0)                // would block a read
        let checks = try writeChecks(vs)
        var run = StudentRun(stream: stream)
        run.scoreModel = { _, directory, identity, emit in
            switch identity.uid! {
            case 3, 5, 6: throw DistilError.input(directory, "the engine refuses it")
            case 4: throw ModelFault(.ours, "\(directory): does not fit in memory")
            case 7:
                // Half its records written, then the engine fails: nothing of them is kept.
                try emit(KLRecord(model: identity.model, promptID: "p0", klMean: 0.5, klStd: 0, nTokens: 1))
                throw DistilError.input(directory, "non-finite KL")
            default: try emit(KLRecord(model: identity.model, promptID: "p0", klMean: 0.5, klStd: 0, nTokens: 1))
            }
        }
        var written: [StudentRun.Written] = []
        try run.scoreAll(checks: checks, outDir: dir + "/kl") { written.append($0) }
        XCTAssertEqual(written.map(\.uid), ["3", "4", "5", "6", "7", "8"])
        XCTAssertEqual(written.map(\.failed), [.miner, .ours, .ours, .ours, .ours, nil])
        func failure(_ uid: Int) throws -> ScoringFailure {
            let lines = try JSONLReader<KLLine>(path: dir + "/kl/\(uid).jsonl").readAll()
            XCTAssertEqual(lines.count, 1)
            guard case .failure(let f)? = lines.first else { throw DistilError("uid \(uid): no failure line") }
            return f
        }
        let f3 = try failure(3)
        XCTAssertEqual([f3.fault], [.miner])
        XCTAssertEqual(f3.message, dir + "/m3: the engine refuses it")
        XCTAssertEqual(f3.uid, 3)
        XCTAssertEqual(f3.hotkey, "hk3")
        XCTAssertEqual(f3.weights_sha256, vs[0].weights_sha256)
        XCTAssertEqual(f3.teacher?.repo, "demo/teacher", "the stream it was to be scored against")
        XCTAssertEqual(try failure(4).message, dir + "/m4: does not fit in memory")
        XCTAssertEqual(try failure(5).message, "our copy of its files cannot be read: \(dir)/m5/model.safetensors: cannot open: No such file or directory")
        let m6 = try failure(6).message, m7 = try failure(7).message
        XCTAssertTrue(m6.hasPrefix(dir + "/m6: the engine refuses it (our copy of its weights is not the one checked: "), m6)
        XCTAssertTrue(m7.hasPrefix("our copy of its files cannot be read: \(dir)/m7/model.safetensors.fifo"), "a FIFO is not read (it would block): \(m7)")
        if case .record(let r)? = try JSONLReader<KLLine>(path: dir + "/kl/8.jsonl").next() {
            XCTAssertEqual(r.model, "org/m8")
        } else {
            XCTFail("uid 8 is scored")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/kl").sorted(), (3...8).map { "\($0).jsonl" },
                       "no temporary is left")
        // Run again: every file is kept, and the summary still says which ones failed.
        var again: [StudentRun.Written] = []
        run.scoreModel = { _, _, _, _ in XCTFail("nothing is scored twice") }
        try run.scoreAll(checks: checks, outDir: dir + "/kl") { again.append($0) }
        XCTAssertEqual(again, written)
    }

    /// What is no model's fault stops the run: a teacher stream that cannot be read (every model
    /// would fail the same way), our output that cannot be written. The models before keep their
    /// files; the model it hit gets no failure record.
    func testScoreAllStopsOnTheTeacherStreamAndOnOurOutput() throws {
        let checks = try writeChecks([verdict(uid: 3, ok: true, path: dir), verdict(uid: 4, ok: true, path: dir),
                                      verdict(uid: 5, ok: true, path: dir)])
        let missing = dir + "/missing.dlt"
        var run = StudentRun(stream: missing)
        run.scoreModel = { _, _, identity, emit in
            if identity.uid == 4 { _ = try ScoringStop.teacher { try TeacherStreamReader(path: missing) } }
            try emit(KLRecord(model: identity.model, promptID: "p0", klMean: 0.5, klStd: 0, nTokens: 1))
        }
        XCTAssertThrowsError(try run.scoreAll(checks: checks, outDir: dir + "/kl") { _ in }) { e in
            XCTAssertEqual((e as? DistilError)?.message, dir + "/missing.dlt: cannot open: No such file or directory")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/kl"), ["3.jsonl"])
        // A model whose failure is to be recorded, while the stream cannot be read: the run stops too.
        run.scoreModel = { _, directory, _, _ in throw DistilError.input(directory, "the engine refuses it") }
        XCTAssertThrowsError(try run.scoreAll(checks: checks, outDir: dir + "/kl") { _ in }) { e in
            XCTAssertEqual((e as? DistilError)?.message, dir + "/missing.dlt: cannot open: No such file or directory")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/kl"), ["3.jsonl"])
    }

    /// `--record-failure`: nothing is scored; every model without a file gets a failure of ours.
    func testRecordFailureWritesAFailureOfOursForEveryModelWithoutAFile() throws {
        let stream = dir + "/teacher.dlt"
        try writeFileAtomically(stream, try demoTeacherStream([PromptRecord(id: "p0", text: "", tokens: [1, 2])], maxNew: 1,
                                                              batch: 1, threads: 1))
        let checks = try writeChecks([verdict(uid: 3, ok: true, path: dir), verdict(uid: 4, ok: true, path: dir)])
        try FileManager.default.createDirectory(atPath: dir + "/kl", withIntermediateDirectories: true)
        try writeFileAtomically(dir + "/kl/4.jsonl", Array("kept\n".utf8))
        var run = StudentRun(stream: stream)
        run.scoreModel = { _, _, _, _ in XCTFail("nothing is scored") }
        var written: [StudentRun.Written] = []
        try run.scoreAll(checks: checks, outDir: dir + "/kl", failure: "dl-kl was killed by signal 9 twice while scoring it") { written.append($0) }
        XCTAssertEqual(written.map(\.failed), [.ours, nil])
        XCTAssertEqual(try JSONLReader<KLLine>(path: dir + "/kl/3.jsonl").readAll().count, 1)
        guard case .failure(let f)? = try JSONLReader<KLLine>(path: dir + "/kl/3.jsonl").next() else { return XCTFail("no failure line") }
        XCTAssertEqual(f.fault, .ours)
        XCTAssertEqual(f.message, "dl-kl was killed by signal 9 twice while scoring it")
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
