import DistilFormats
@testable import DistilScore
import Foundation
import XCTest

/// Builders for small epochs.
enum Epoch {
    static let teacher = TeacherRef(repo: "t/teacher", revision: "r", weightsSHA256: "w", block: 500, blockHash: "beef")

    static func check(_ uid: Int, block: Int? = nil, ok: Bool = true, reason: ReasonCode = .ok) -> CheckVerdict {
        let m = Manifest(commitment: Commitment(uid: uid, hotkey: "hk\(uid)", block: block ?? 100 + uid, repo: "org/m\(uid)",
                                                revision: "rev\(uid)"),
                         commit: "c\(uid)", path: nil, files: [], outcome: .ok)
        return CheckVerdict(manifest: m, ok: ok, reason: reason, message: "")
    }

    static func records(_ uid: Int, _ kls: [Double], nTokens: [Int]? = nil, teacher: TeacherRef? = Epoch.teacher,
                        prompts: [String]? = nil, file: String = "kl.jsonl") -> [SourcedKL] {
        kls.enumerated().map { i, v in
            var r = KLRecord(model: "org/m\(uid)", promptID: prompts?[i] ?? String(format: "500-%02d", i), klMean: v, klStd: 0.01,
                             nTokens: nTokens?[i] ?? 10)
            r.uid = uid; r.hotkey = "hk\(uid)"; r.revision = "rev\(uid)"; r.block = 100 + uid; r.teacher = teacher
            return SourcedKL(r, place: "\(file):\(i + 1)")
        }
    }

    static func king(_ uid: Int) -> JudgeState {
        let c = check(uid)
        return JudgeState(king: KingRecord(uid: uid, hotkey: c.hotkey, repo: c.repo, revision: c.revision, commit: c.commit,
                                           block: c.block, crownedBlock: 400))
    }
}

final class JudgeTests: XCTestCase {
    func judge(_ checks: [CheckVerdict], _ recs: [SourcedKL], state: JudgeState = JudgeState(), epsilon: Double = 0.01)
        throws -> (Verdict, JudgeState) {
        try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(epsilon: epsilon, block: 500))
    }

    func assertRefused(_ checks: [CheckVerdict], _ recs: [SourcedKL], state: JudgeState = JudgeState(),
                       containing: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try judge(checks, recs, state: state), file: file, line: line) { e in
            let msg = (e as? DistilError)?.message ?? "\(e)"
            XCTAssertTrue(msg.contains(containing), msg, file: file, line: line)
            XCTAssertFalse(msg.contains("\n"), "one line", file: file, line: line)
        }
    }

    // MARK: epsilon rule

    func testExactlyOneMinusEpsilonTimesKingDoesNotWin() throws {
        let checks = [Epoch.check(1), Epoch.check(2)]
        let recs = Epoch.records(1, [0.5, 0.5, 0.5]) + Epoch.records(2, [0.495, 0.495, 0.495])
        let (v, s) = try judge(checks, recs, state: Epoch.king(1))
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(s.king?.uid, 1)
        XCTAssertEqual(v.models.first { $0.uid == 2 }?.outcome.rawValue, "lost")
    }

    func testJustBelowTheBarWins() throws {
        let checks = [Epoch.check(1), Epoch.check(2)]
        let below = 0.495.nextDown
        let recs = Epoch.records(1, [0.5, 0.5, 0.5]) + Epoch.records(2, [below, below, below])
        let (v, s) = try judge(checks, recs, state: Epoch.king(1))
        XCTAssertEqual(v.winner, 2)
        XCTAssertEqual(s.king?.uid, 2)
        XCTAssertEqual(s.king?.crowned_block, 500)
        XCTAssertEqual(v.values, [0, 1])
        XCTAssertEqual(v.uids, [1, 2])
        XCTAssertEqual(v.weights, [WeightEntry(uid: 1, weight: 0), WeightEntry(uid: 2, weight: 1)])
        XCTAssertEqual(v.models.first { $0.uid == 1 }?.outcome.rawValue, "dethroned")
        XCTAssertEqual(v.models.first { $0.uid == 2 }?.outcome.rawValue, "new_king")
    }

    func testBetterButWithinEpsilonKeepsTheKing() throws {
        let (v, _) = try judge([Epoch.check(1), Epoch.check(2)],
                               Epoch.records(1, [0.50, 0.52]) + Epoch.records(2, [0.499, 0.515]), state: Epoch.king(1))
        XCTAssertEqual(v.winner, 1)
        XCTAssertNotNil(v.models.first { $0.uid == 2 }?.vs_king)
        XCTAssertNil(v.models.first { $0.uid == 1 }?.vs_king)
    }

    func testLowestQualifyingChallengerWinsAndTiesGoToEarlierBlockThenUid() throws {
        var checks = [Epoch.check(1), Epoch.check(2, block: 300), Epoch.check(3, block: 200), Epoch.check(4, block: 200)]
        // uid 2, 3 and 4 tie exactly; uid 3 and 4 share block 200: uid 3 wins (earlier block, then lower uid).
        var recs = Epoch.records(1, [1, 1]) + Epoch.records(2, [0.5, 0.7]) + Epoch.records(3, [0.7, 0.5]) + Epoch.records(4, [0.6, 0.6])
        // Different vectors with the same mean; not copies (cosine < 0.9999).
        var (v, _) = try judge(checks, recs, state: Epoch.king(1))
        XCTAssertEqual(v.winner, 3)
        // Without a king the lowest mean wins outright, same ties.
        (v, _) = try judge(checks, recs)
        XCTAssertEqual(v.winner, 3)
        // A strictly lower mean beats an earlier block.
        checks.append(Epoch.check(5, block: 999))
        recs += Epoch.records(5, [0.55, 0.6])
        (v, _) = try judge(checks, recs)
        XCTAssertEqual(v.winner, 5)
    }

    // MARK: statistics in the verdict

    func testScoresAndConfidenceIntervals() throws {
        let (v, _) = try judge([Epoch.check(1)], Epoch.records(1, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]))
        let s = v.models[0].score
        XCTAssertEqual(s.n_prompts, 11)
        XCTAssertEqual(s.mean_kl, 0.6, accuracy: 1e-15)
        XCTAssertEqual(s.std, (0.11 as Double).squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(s.se, (0.11 / 11 as Double).squareRoot(), accuracy: 1e-12)
        // t_{0.975, 10} = 2.228138852
        XCTAssertEqual(s.ci_high - s.mean_kl, 2.228138852 * s.se, accuracy: 1e-8)
        XCTAssertEqual(s.mean_kl - s.ci_low, 2.228138852 * s.se, accuracy: 1e-8)
        XCTAssertEqual(v.models[0].per_prompt.count, 11)
        XCTAssertEqual(v.models[0].per_prompt[3], PromptScore(prompt_id: "500-03", kl_mean: 0.4, kl_std: 0.01, n_tokens: 10))
        XCTAssertEqual(v.winner, 1)   // first epoch: crowned outright
    }

    // MARK: disqualification and flags

    func testDisqualifiedAndAbsentModelsNeverGetWeight() throws {
        let checks = [Epoch.check(1), Epoch.check(2, ok: false, reason: .params)]
        let recs = Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.1, 0.1]) + Epoch.records(9, [0.05, 0.06])
        let (v, _) = try judge(checks, recs)
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(v.models.first { $0.uid == 2 }?.flags, ["DISQUALIFIED:PARAMS"])
        XCTAssertEqual(v.models.first { $0.uid == 9 }?.flags, ["NOT_IN_CHECKS"])
        XCTAssertEqual(v.uids, [1, 2])   // weights cover the checks' uids
    }

    func testDisqualifiedKingLosesTheCrownToTheBestEligible() throws {
        let checks = [Epoch.check(1, ok: false, reason: .removed), Epoch.check(2), Epoch.check(3)]
        let recs = Epoch.records(2, [0.6, 0.61]) + Epoch.records(3, [0.7, 0.5])
        let (v, s) = try judge(checks, recs, state: Epoch.king(1))
        XCTAssertEqual(v.winner, 3)
        XCTAssertEqual(s.king?.uid, 3)
        XCTAssertTrue(v.reason.contains("REMOVED"), v.reason)
        XCTAssertEqual(v.king_before?.uid, 1)
    }

    func testTeacherInDisguiseGetsNoWeight() throws {
        let (v, _) = try judge([Epoch.check(1), Epoch.check(2)],
                               Epoch.records(1, [1e-7, 1e-6]) + Epoch.records(2, [0.3, 0.4]))
        XCTAssertEqual(v.winner, 2)
        XCTAssertEqual(v.models[0].flags, ["TEACHER_IN_DISGUISE"])
        XCTAssertEqual(v.models[0].outcome.rawValue, "no_weight")
    }

    func testCopiesAreFlaggedOnTheLaterCommitment() throws {
        // uid 2 committed at block 300 is a copy of uid 3 committed at block 200 (identical vectors).
        let checks = [Epoch.check(1), Epoch.check(2, block: 300), Epoch.check(3, block: 200), Epoch.check(4, block: 400)]
        let near = [0.31 * 1.000001, 0.22, 0.45]   // cosine > 0.9999, same mean within epsilon
        let recs = Epoch.records(1, [1, 1, 1]) + Epoch.records(2, [0.31, 0.22, 0.45]) + Epoch.records(3, [0.31, 0.22, 0.45])
            + Epoch.records(4, near)
        let (v, _) = try judge(checks, recs, state: Epoch.king(1))
        XCTAssertEqual(v.models.first { $0.uid == 2 }?.flags, ["COPY_OF:3"])
        XCTAssertEqual(v.models.first { $0.uid == 4 }?.flags, ["COPY_OF:3"])
        XCTAssertEqual(v.models.first { $0.uid == 3 }?.flags, [])
        XCTAssertEqual(v.winner, 3)
    }

    func testProportionalButMuchBetterModelIsNotACopy() throws {
        let (v, _) = try judge([Epoch.check(1), Epoch.check(2)],
                               Epoch.records(1, [0.4, 0.2, 0.6]) + Epoch.records(2, [0.2, 0.1, 0.3]))
        XCTAssertEqual(v.models[1].flags, [])
        XCTAssertEqual(v.winner, 2)
    }

    // MARK: refusals

    func testMismatchedPromptSetsAreRefused() {
        let recs = Epoch.records(1, [0.5, 0.5, 0.5]) + Epoch.records(2, [0.4, 0.4], prompts: ["500-00", "500-09"])
        assertRefused([Epoch.check(1), Epoch.check(2)], recs, containing: "different prompts")
    }

    func testDifferentTeacherStreamsAreRefused() {
        var other = Epoch.teacher
        other.block_hash = "f00d"
        let recs = Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.4, 0.4], teacher: other)
        assertRefused([Epoch.check(1), Epoch.check(2)], recs, containing: "teacher stream")
        other = Epoch.teacher
        other.weights_sha256 = "x"
        assertRefused([Epoch.check(1), Epoch.check(2)], Epoch.records(1, [0.5]) + Epoch.records(2, [0.4], teacher: other),
                      containing: "teacher stream")
    }

    func testDuplicatePromptIsRefusedNamingTheLine() {
        let recs = Epoch.records(1, [0.5, 0.5], prompts: ["500-00", "500-00"])
        assertRefused([Epoch.check(1)], recs, containing: "kl.jsonl:2: uid 1 has prompt '500-00' twice (first at kl.jsonl:1)")
    }

    func testKingWithoutRecordsWhileChallengersScoredIsRefused() {
        assertRefused([Epoch.check(1), Epoch.check(2)], Epoch.records(2, [0.1]), state: Epoch.king(1), containing: "the king (uid 1")
    }

    func testContinuationLengthsMustAgree() {
        let recs = Epoch.records(1, [0.5, 0.5], nTokens: [10, 12]) + Epoch.records(2, [0.4, 0.4], nTokens: [10, 11])
        assertRefused([Epoch.check(1), Epoch.check(2)], recs, containing: "continuation tokens")
    }

    func testNegativeKLIsRefused() {
        assertRefused([Epoch.check(1)], Epoch.records(1, [0.5, -0.2]), containing: "kl.jsonl:2: kl_mean -0.2")
    }

    // MARK: empty continuations, no records

    func testEmptyContinuationIsDroppedForEveryModel() throws {
        let recs = Epoch.records(1, [0.5, 0.0, 0.5], nTokens: [10, 0, 10]) + Epoch.records(2, [0.3, 0.0, 0.3], nTokens: [10, 0, 10])
        let (v, _) = try judge([Epoch.check(1), Epoch.check(2)], recs)
        XCTAssertEqual(v.prompts, ["500-00", "500-02"])
        XCTAssertEqual(v.dropped_prompts, ["500-01"])
        XCTAssertEqual(v.models[0].score.n_prompts, 2)
        XCTAssertEqual(v.models[0].score.mean_kl, 0.5)
        XCTAssertEqual(v.models[1].vs_king, nil)   // no king yet
    }

    func testNoRecordsKeepsAValidKing() throws {
        let (v, s) = try judge([Epoch.check(1), Epoch.check(2)], [], state: Epoch.king(1))
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(v.values, [1, 0])
        XCTAssertEqual(s.king, Epoch.king(1).king)
        XCTAssertTrue(v.reason.contains("no new challenger"))
        // A king whose check is no longer ok gets nothing, and nobody else does either.
        let (v2, s2) = try judge([Epoch.check(1, ok: false, reason: .changed), Epoch.check(2)], [], state: Epoch.king(1))
        XCTAssertNil(v2.winner)
        XCTAssertEqual(v2.values, [0, 0])
        XCTAssertNil(s2.king)
    }

    func testTransientFailureOfTheKingNeverCostsTheCrown() throws {
        // The king's fetch failed transiently: no commit known, reason RETRY.
        var retry = Epoch.check(1, ok: false, reason: .retry)
        retry.commit = nil
        retry.message = "HTTP 503 after 6 attempts"
        let checks = [retry, Epoch.check(2)]
        XCTAssertEqual(Judge.plan(checks: checks, state: Epoch.king(1)), [], "no compute while the king cannot be checked")
        let (v, s) = try judge(checks, [], state: Epoch.king(1))
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(v.values, [1, 0])
        XCTAssertEqual(s.king, Epoch.king(1).king)
        XCTAssertTrue(v.reason.contains("RETRY"), v.reason)
        XCTAssertTrue(s.models.isEmpty, "the challenger is not marked as scored: it is judged once the king can be checked")
        // Records for challengers in such an epoch (scored anyway) are not judged: the king keeps the
        // crown and the challengers wait, unrecorded. (This used to be refused.)
        let (v1, s1) = try judge(checks, Epoch.records(2, [0.1, 0.1]), state: Epoch.king(1))
        XCTAssertEqual(v1.winner, 1)
        XCTAssertEqual(v1.models.map(\.outcome.rawValue), ["pending"])
        XCTAssertEqual(s1.king, Epoch.king(1).king)
        XCTAssertTrue(s1.models.isEmpty)
        // A rejection that is not transient still dethrones (unchanged).
        let (v2, _) = try judge([Epoch.check(1, ok: false, reason: .changed), Epoch.check(2)], [], state: Epoch.king(1))
        XCTAssertNil(v2.winner)
    }

    // MARK: the integrity re-check before the weights are set

    /// A re-check verdict (dl-check --recheck-only) of the model Epoch.check(uid) describes.
    func recheck(_ uid: Int, _ reason: ReasonCode = .ok) -> CheckVerdict { Epoch.check(uid, ok: reason == .ok, reason: reason) }

    func testRemovedOrChangedChallengerIsDisqualified() throws {
        let checks = [Epoch.check(1), Epoch.check(2), Epoch.check(3), Epoch.check(4)]
        let recs = Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.1, 0.12]) + Epoch.records(3, [0.2, 0.21])
            + Epoch.records(4, [0.4, 0.41])
        let (v, s) = try Judge.judge(checks: checks, records: recs, state: Epoch.king(1),
                                     recheck: [recheck(1), recheck(2, .changed), recheck(3, .removed), recheck(4)],
                                     options: JudgeOptions(epsilon: 0.01, block: 500))
        // The best scores are gone or changed since they were checked: they never win.
        XCTAssertEqual(v.winner, 4)
        XCTAssertEqual(v.models.map(\.flags), [[], ["DISQUALIFIED:CHANGED"], ["DISQUALIFIED:REMOVED"], []])
        XCTAssertEqual(v.models.map(\.outcome.rawValue), ["dethroned", "no_weight", "no_weight", "new_king"])
        // They are judged (recorded as no_weight), not left pending.
        XCTAssertEqual(s.models.map(\.outcome.rawValue), ["dethroned", "no_weight", "no_weight", "king"])
        // Without the re-check the same epoch crowns uid 2.
        XCTAssertEqual(try judge(checks, recs, state: Epoch.king(1)).0.winner, 2)
    }

    func testChallengerWhoseRecheckIsRetryStaysPending() throws {
        let checks = [Epoch.check(1), Epoch.check(2), Epoch.check(3)]
        let recs = Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.1, 0.12]) + Epoch.records(3, [0.6, 0.61])
        var retry = recheck(2, .retry)
        retry.commit = nil   // a failed listing may not know the commit: matched by uid, hotkey and repo
        retry.message = "HTTP 503 after 6 attempts"
        let (v, s) = try Judge.judge(checks: checks, records: recs, state: Epoch.king(1),
                                     recheck: [recheck(1), retry, recheck(3)], options: JudgeOptions(epsilon: 0.01, block: 500))
        XCTAssertEqual(v.winner, 1, "the better challenger is not judged this epoch")
        XCTAssertEqual(v.values, [1, 0, 0])
        XCTAssertEqual(v.models.map(\.outcome.rawValue), ["king", "pending", "lost"])
        XCTAssertEqual(v.models[1].flags, [Judge.pendingFlag])
        XCTAssertFalse(v.models[1].eligible)
        // Not recorded: planned again next epoch, after the king.
        XCTAssertEqual(s.models.map(\.uid), [1, 3])
        XCTAssertEqual(Judge.plan(checks: checks, state: s).map(\.uid), [1, 2])
        // Next epoch its re-check passes and it takes the crown.
        let (v2, s2) = try Judge.judge(checks: checks, records: Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.1, 0.12]),
                                       state: s, recheck: [recheck(1), recheck(2)], options: JudgeOptions(epsilon: 0.01, block: 600))
        XCTAssertEqual(v2.winner, 2)
        XCTAssertEqual(s2.king?.uid, 2)
    }

    func testKingWhoseRecheckIsRetryKeepsTheCrownAndChallengersWait() throws {
        let checks = [Epoch.check(1), Epoch.check(2), Epoch.check(3, ok: false, reason: .vocab), Epoch.check(4)]
        var before = Epoch.king(1)
        before.models = [ScoredModel(uid: 1, hotkey: "hk1", repo: "org/m1", revision: "rev1", commit: "c1", block: 101, scored_block: 400,
                                     score: ScoreSummary(SampleSummary([0.5, 0.5])), flags: [], outcome: .king)]
        let recs = Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.1, 0.12]) + Epoch.records(4, [0.3, 0.3])
        var retry = recheck(1, .retry)
        retry.message = "429: Retry-After 900 s exceeds --max-wait"
        let (v, s) = try Judge.judge(checks: checks, records: recs, state: before,
                                     recheck: [retry, recheck(2), recheck(4, .changed)], options: JudgeOptions(epsilon: 0.01, block: 500))
        XCTAssertEqual(v.winner, 1)
        XCTAssertEqual(v.values, [1, 0, 0, 0])
        XCTAssertEqual(v.king_after, before.king)
        XCTAssertTrue(v.reason.contains("RETRY: 429"), v.reason)
        XCTAssertTrue(v.reason.contains("the 2 challengers scored this epoch wait"), v.reason)
        XCTAssertEqual(v.models.map(\.outcome.rawValue), ["king", "pending", "no_weight"])
        XCTAssertEqual(v.models[2].flags, ["DISQUALIFIED:CHANGED"])
        // Nothing of this epoch is recorded: the state is the one before, and the plan is the same.
        XCTAssertEqual(s, before)
        XCTAssertEqual(Judge.plan(checks: checks, state: s).map(\.uid), [1, 2, 4])
    }

    func testKingWhoseRecheckFailsLosesTheCrown() throws {
        let checks = [Epoch.check(1), Epoch.check(2), Epoch.check(3)]
        // Both challengers are worse than the king: only its disqualification lets one win.
        let recs = Epoch.records(1, [0.3, 0.3]) + Epoch.records(2, [0.5, 0.52]) + Epoch.records(3, [0.6, 0.61])
        for code in [ReasonCode.changed, .removed] {
            let (v, s) = try Judge.judge(checks: checks, records: recs, state: Epoch.king(1),
                                         recheck: [recheck(1, code), recheck(2), recheck(3)], options: JudgeOptions(epsilon: 0.01, block: 500))
            XCTAssertEqual(v.winner, 2)
            XCTAssertEqual(s.king?.uid, 2)
            XCTAssertTrue(v.reason.contains("lost the crown (re-check: \(code))"), v.reason)
            XCTAssertEqual(v.models[0].flags, ["DISQUALIFIED:\(code)"])
            XCTAssertEqual(v.models[0].outcome.rawValue, "dethroned")
            XCTAssertEqual(s.models.first { $0.uid == 1 }?.outcome.rawValue, "dethroned")
        }
        // A king re-checked as changed in an epoch without records: nobody gets weight.
        let (v, s) = try Judge.judge(checks: checks, records: [], state: Epoch.king(1), recheck: [recheck(1, .changed)],
                                     options: JudgeOptions(epsilon: 0.01, block: 500))
        XCTAssertNil(v.winner)
        XCTAssertNil(s.king)
    }

    func testRecheckMustCoverEveryScoredModel() {
        let checks = [Epoch.check(1), Epoch.check(2)]
        let recs = Epoch.records(1, [0.5]) + Epoch.records(2, [0.4])
        XCTAssertThrowsError(try Judge.judge(checks: checks, records: recs, state: Epoch.king(1), recheck: [recheck(1)])) { e in
            XCTAssertTrue("\(e)".contains("uid 2 (org/m2) was scored but has no re-check verdict"), "\(e)")
        }
        XCTAssertThrowsError(try Judge.judge(checks: checks, records: recs, state: Epoch.king(1),
                                             recheck: [recheck(1), recheck(2), recheck(2, .retry)])) { e in
            XCTAssertTrue("\(e)".contains("recheck: uid 2 appears twice"), "\(e)")
        }
        // A re-check of another commit of the uid is not this model's.
        var other = recheck(2)
        other.commit = "c2-new"
        XCTAssertThrowsError(try Judge.judge(checks: checks, records: recs, state: Epoch.king(1), recheck: [recheck(1), other]))
    }

    // MARK: state and plan

    func testStateRoundTripAndPlan() throws {
        let checks = [Epoch.check(1), Epoch.check(2), Epoch.check(3, ok: false, reason: .vocab)]
        // Epoch 1: only uid 1 is new; plan lists it; it is crowned.
        var state = JudgeState()
        XCTAssertEqual(Judge.plan(checks: checks, state: state).map(\.uid), [1, 2])
        var (v, after) = try judge(checks, Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.6, 0.7]), state: state)
        XCTAssertEqual(v.winner, 1)
        // Round trip through bytes.
        let bytes = try JudgeIO.encode(after)
        state = try decodeJSONLine(JudgeState.self, Data(bytes), where: "state.json")
        XCTAssertEqual(state, after)
        XCTAssertEqual(try JudgeIO.encode(state), bytes)
        XCTAssertEqual(state.models.map(\.outcome.rawValue), ["king", "lost"])
        // No new challenger: plan is empty.
        XCTAssertEqual(Judge.plan(checks: checks, state: state), [])
        // A new commit of uid 2 is a new model: plan lists the king first, then it.
        var c2 = Epoch.check(2)
        c2.commit = "c2-new"
        let checks2 = [checks[0], c2, checks[2]]
        XCTAssertEqual(Judge.plan(checks: checks2, state: state).map(\.commit), ["c1", "c2-new"])
        // The loser keeps its score after the next epoch.
        (v, after) = try judge(checks2, Epoch.records(1, [0.5, 0.5]) + Epoch.records(2, [0.4, 0.4]), state: state)
        XCTAssertEqual(v.winner, 2)
        XCTAssertEqual(after.models.count, 3)
        let old = after.models.first { $0.commit == "c2" }
        XCTAssertEqual(old?.score.mean_kl ?? 0, 0.65, accuracy: 1e-15)
        XCTAssertEqual(old?.outcome.rawValue, "lost")
        XCTAssertEqual(after.models.first { $0.commit == "c1" }?.outcome.rawValue, "dethroned")
        XCTAssertEqual(Judge.plan(checks: checks2, state: after), [])
    }

    func testEmptyObjectIsTheEmptyStateAndOtherVersionsAreRefused() throws {
        let s = try decodeJSONLine(JudgeState.self, Data("{}".utf8), where: "state.json")
        XCTAssertEqual(s, JudgeState())
        XCTAssertThrowsError(try decodeJSONLine(JudgeState.self, Data(#"{"version": 7}"#.utf8), where: "state.json")) { e in
            XCTAssertTrue("\(e)".contains("unsupported state version 7"), "\(e)")
        }
    }

    // MARK: input files

    var fixtures: String { URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path }

    func testBadLineNamesTheFileLineAndField() throws {
        let path = NSTemporaryDirectory() + "judge-bad-\(getpid()).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let good = try String(contentsOfFile: fixtures + "/kl.jsonl", encoding: .utf8).split(separator: "\n")[0]
        let bad = good.replacingOccurrences(of: "\"kl_mean\":0.3,", with: "")
        try (good + "\n" + bad + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try JudgeIO.readKL([path])) { e in
            XCTAssertEqual((e as? DistilError)?.message, "\(path):2: missing field 'kl_mean'")
        }
    }

    func testSampleInputsGiveExactlyTheSampleVerdictAndState() throws {
        let checks = try JudgeIO.readChecks(fixtures + "/checks.jsonl")
        let recs = try JudgeIO.readKL([fixtures + "/kl.jsonl"])
        let state = try JudgeIO.readState(fixtures + "/state.json")
        let (v, after) = try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(epsilon: 0.01, block: 1000))
        XCTAssertEqual(String(decoding: try JudgeIO.encode(v), as: UTF8.self),
                       try String(contentsOfFile: fixtures + "/verdict.json", encoding: .utf8))
        XCTAssertEqual(String(decoding: try JudgeIO.encode(after), as: UTF8.self),
                       try String(contentsOfFile: fixtures + "/state-after.json", encoding: .utf8))
        // The verdict reads back as itself.
        let back = try decodeJSONFile(Verdict.self, path: fixtures + "/verdict.json")
        XCTAssertEqual(back, v)
        XCTAssertEqual(Judge.plan(checks: checks, state: state).map(\.uid), [1, 2, 4])
        XCTAssertEqual(Judge.plan(checks: checks, state: after), [])
    }

    /// The committed re-check sample (recheck.jsonl: the challenger's re-check is RETRY) gives exactly
    /// the committed verdict (uid 2 `pending`, flagged RECHECK_RETRY) and a state without uid 2.
    func testSampleRecheckGivesExactlyTheSampleVerdictAndState() throws {
        let checks = try JudgeIO.readChecks(fixtures + "/checks.jsonl")
        let recheck = try JudgeIO.readChecks(fixtures + "/recheck.jsonl")
        let recs = try JudgeIO.readKL([fixtures + "/kl.jsonl"])
        let state = try JudgeIO.readState(fixtures + "/state.json")
        let (v, after) = try Judge.judge(checks: checks, records: recs, state: state, recheck: recheck,
                                         options: JudgeOptions(epsilon: 0.01, block: 1000))
        XCTAssertEqual(String(decoding: try JudgeIO.encode(v), as: UTF8.self),
                       try String(contentsOfFile: fixtures + "/verdict-recheck.json", encoding: .utf8))
        XCTAssertEqual(String(decoding: try JudgeIO.encode(after), as: UTF8.self),
                       try String(contentsOfFile: fixtures + "/state-after-recheck.json", encoding: .utf8))
        XCTAssertEqual(v.models.first { $0.uid == 2 }?.outcome.rawValue, "pending")
        XCTAssertNil(after.models.first { $0.uid == 2 })
        XCTAssertEqual(Judge.plan(checks: checks, state: after).map(\.uid), [1, 2])
    }

    func testSummaryTableNamesEveryModel() throws {
        let (v, _) = try judge([Epoch.check(1), Epoch.check(2)], Epoch.records(1, [0.5, 0.6]) + Epoch.records(2, [0.3, 0.2]),
                               state: Epoch.king(1))
        let t = JudgeIO.summary(v)
        XCTAssertTrue(t.contains("org/m1"), t)
        XCTAssertTrue(t.contains("new king"), t)
        XCTAssertTrue(t.contains("winner: uid 2"), t)
    }
}
