import DistilFormats
@testable import DistilScore
import Foundation
import XCTest

/// The judge's rule for a model dl-kl could not score (docs/FORMATS.md "Scoring failure"): the
/// checkpoint's fault rejects it for good; ours is a RETRY; a king keeps the crown on ours and loses
/// it on the miner's.
final class ScoringFailureTests: XCTestCase {
    static func failure(_ uid: Int, _ fault: ScoringFault, _ message: String = "non-finite KL", teacher: TeacherRef? = Epoch.teacher)
        -> SourcedFailure {
        var f = ScoringFailure(model: "org/m\(uid)", fault: fault, message: message)
        f.uid = uid; f.hotkey = "hk\(uid)"; f.revision = "rev\(uid)"; f.teacher = teacher
        return SourcedFailure(f, place: "kl/\(uid).jsonl:1")
    }

    func judge(_ checks: [CheckVerdict], _ recs: [SourcedKL], _ failures: [SourcedFailure], state: JudgeState,
               recheck: [CheckVerdict]? = nil) throws -> (Verdict, JudgeState) {
        try Judge.judge(checks: checks, records: recs, failures: failures, state: state, recheck: recheck,
                        options: JudgeOptions(epsilon: 0.01, block: 500))
    }

    let checks = [Epoch.check(1), Epoch.check(2), Epoch.check(3)]
    let king = Epoch.records(1, [0.5, 0.5, 0.5])
    let winner = Epoch.records(2, [0.4, 0.4, 0.4])

    func testChallengerOfTheMinersFaultIsRejectedForGoodAndTheOthersAreJudged() throws {
        let (v, s) = try judge(checks, king + winner, [Self.failure(3, .miner)], state: Epoch.king(1))
        XCTAssertEqual(v.winner, 2, "the other challenger is judged as if uid 3 had not committed")
        XCTAssertEqual(v.models.map(\.uid), [1, 2])
        XCTAssertEqual(v.unscored, [UnscoredModel(uid: 3, hotkey: "hk3", repo: "org/m3", commit: "c3", fault: .miner, reason: .unscorable,
                                                  message: "non-finite KL", outcome: .noWeight)])
        XCTAssertEqual(v.values, [0, 1, 0])
        let rec = try XCTUnwrap(s.models.first { $0.uid == 3 })
        XCTAssertEqual(rec.outcome, .noWeight)
        XCTAssertEqual(rec.flags, ["UNSCORABLE"])
        XCTAssertEqual(rec.score.n_prompts, 0)
        XCTAssertEqual(rec.scored_block, 500)
        XCTAssertEqual(Judge.plan(checks: checks, state: s), [], "never planned again")
    }

    func testChallengerOfOurFaultIsPendingAndPlannedAgain() throws {
        let (v, s) = try judge(checks, king + Epoch.records(2, [0.6, 0.6, 0.6]), [Self.failure(3, .ours, "cannot be read")],
                               state: Epoch.king(1))
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(v.unscored?.map(\.outcome), [.pending])
        XCTAssertEqual(v.unscored?.map(\.reason), [.retry])
        XCTAssertNil(s.models.first { $0.uid == 3 }, "not recorded")
        XCTAssertEqual(s.models.first { $0.uid == 2 }?.outcome, .lost, "the other challenger is judged")
        XCTAssertEqual(Judge.plan(checks: checks, state: s).map(\.uid), [1, 3], "planned again, with the king")
    }

    func testTheKingAloneWithAFailedChallengerSaysSo() throws {
        let (v, _) = try judge(checks, king, [Self.failure(3, .miner)], state: Epoch.king(1))
        XCTAssertEqual(v.reason, "the king (uid 1) keeps the crown: no challenger was scored this epoch (1 could not be scored)")
    }

    func testKingOfOurFaultKeepsTheCrownAndTheChallengersWait() throws {
        let (v, s) = try judge(checks, winner, [Self.failure(1, .ours, "out of memory")], state: Epoch.king(1))
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(v.values, [1, 0, 0])
        XCTAssertEqual(v.reason, "the king (uid 1) could not be scored this epoch (RETRY: ours or transient: out of memory); it keeps "
            + "the weight and the 1 challenger scored this epoch wait for the next epoch")
        XCTAssertEqual(v.models.map(\.outcome), [.pending], "uid 2 beat it, but waits")
        XCTAssertEqual(v.unscored?.map(\.outcome), [.king])
        XCTAssertEqual(s, Epoch.king(1), "nothing of the epoch is recorded")
        XCTAssertEqual(Judge.plan(checks: checks, state: s).map(\.uid), [1, 2, 3])
    }

    func testKingOfTheMinersFaultLosesTheCrown() throws {
        var state = Epoch.king(1)
        state.models = [ScoredModel(model: state.king!.model, scored_block: 400, score: .unscored, flags: [], outcome: .king)]
        let (v, s) = try judge(checks, winner + Epoch.records(3, [0.45, 0.45, 0.45]), [Self.failure(1, .miner)], state: state)
        XCTAssertEqual(v.winner, 2, "the lowest eligible mean wins outright")
        XCTAssertEqual(v.reason, "the king (uid 1, org/m1) lost the crown (UNSCORABLE): the lowest mean KL wins, uid 2 (0.4)")
        XCTAssertEqual(v.unscored?.map(\.outcome), [.dethroned])
        XCTAssertEqual(s.king?.uid, 2)
        XCTAssertEqual(s.models.first { $0.uid == 1 }?.outcome, .dethroned)
        XCTAssertEqual(s.models.first { $0.uid == 3 }?.outcome, .lost)
    }

    func testKingOfTheMinersFaultWhoseRecheckIsRetryStillWaits() throws {
        var retry = Epoch.check(1, ok: false, reason: .retry)
        retry.message = "503"
        let (v, s) = try judge(checks, winner, [Self.failure(1, .miner)], state: Epoch.king(1),
                               recheck: [retry, Epoch.check(2)])
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(v.unscored?.map(\.outcome), [.king])
        XCTAssertEqual(s, Epoch.king(1))
    }

    func testRefusesAFailureBesideRecordsTwoFailuresAndAnotherTeacher() {
        func refused(_ recs: [SourcedKL], _ fs: [SourcedFailure], _ containing: String, line: UInt = #line) {
            XCTAssertThrowsError(try judge(checks, recs, fs, state: Epoch.king(1)), line: line) { e in
                XCTAssertTrue("\(e)".contains(containing), "\(e)", line: line)
            }
        }
        refused(king + winner, [Self.failure(2, .miner)], "kl/2.jsonl:1: uid 2 has a scoring failure and KL records (kl.jsonl:1)")
        refused(king, [Self.failure(3, .miner), Self.failure(3, .ours)], "uid 3 has two scoring failures (first at kl/3.jsonl:1)")
        let other = TeacherRef(repo: "t/teacher", revision: "r", weightsSHA256: "w", block: 501, blockHash: "f00d")
        refused(king, [Self.failure(3, .miner, teacher: other)], "kl/3.jsonl:1: uid 3's scoring failure names teacher stream")
    }

    func testNoKingAndOnlyFailures() throws {
        let (v, s) = try judge(checks, [], [Self.failure(2, .miner), Self.failure(3, .ours)], state: JudgeState())
        XCTAssertNil(v.winner)
        XCTAssertEqual(v.teacher, Epoch.teacher, "the stream the failures name")
        XCTAssertEqual(v.unscored?.map(\.outcome), [.noWeight, .pending])
        XCTAssertEqual(s.models.map(\.model.uid), [2])
    }

    /// The committed sample (docs/FORMATS.md "Scoring failure") reads as one failure line among KL
    /// records, and a verdict without failures has no `unscored` key (its bytes as before).
    func testTheSampleReadsAsAFailureAndVerdictsWithoutFailuresKeepTheirBytes() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("DistilFormatsTests/Samples").path
        let (records, failures) = try JudgeIO.readKLLines([dir + "/kl.jsonl", dir + "/kl-failed.jsonl"])
        XCTAssertFalse(records.isEmpty)
        XCTAssertEqual(failures.count, 1)
        let f = try XCTUnwrap(failures.first)
        XCTAssertEqual(f.place, dir + "/kl-failed.jsonl:1")
        XCTAssertEqual(f.record.fault, .miner)
        XCTAssertEqual(f.record.uid, 3)
        XCTAssertTrue(f.record.message.contains("non-finite KL"))
        XCTAssertNotNil(f.record.teacher)
        XCTAssertEqual(try JudgeIO.readKL([dir + "/kl-failed.jsonl"]).count, 0)
        let (v, _) = try judge(checks, king + winner, [], state: Epoch.king(1))
        XCTAssertFalse(String(decoding: try JudgeIO.encode(v), as: UTF8.self).contains("unscored"))
    }
}
