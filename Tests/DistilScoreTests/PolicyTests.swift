import DistilFormats
@testable import DistilScore
import Foundation
import XCTest

/// The judge's rules as data: the default policy is today's rules byte for byte; a paired-test
/// policy and a last-kings policy decide differently from the epsilon rule where they should; a
/// state is not judged under another policy than its own without saying so.
final class PolicyTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    func testTheDefaultPolicyFileIsTheBuiltInDefaultAndGivesTheCommittedVerdictBytes() throws {
        let p = try JudgePolicy.load(path: fixtures + "/policy-default.json")
        XCTAssertEqual(p, .default)
        XCTAssertTrue(p.isDefault)
        XCTAssertEqual(String(decoding: p.canonicalBytes, as: UTF8.self),
                       #"{"dethrone":{"epsilon":0.01,"rule":"epsilon"},"format":"distil-policy/1","max_new_tokens":512,"#
                       + #""max_params":5300000000,"prompts":40,"temperature":0,"vocab_size":248320,"weights":{"rule":"winner_takes_all"}}"#)
        XCTAssertEqual(p.sha256, Hashing.sha256Hex(p.canonicalBytes))
        // An empty file and a partial one are the default where they say nothing.
        let dir = NSTemporaryDirectory() + "distil-policy-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFileAtomically(dir + "/empty.json", Array("{}".utf8))
        XCTAssertEqual(try JudgePolicy.load(path: dir + "/empty.json").sha256, JudgePolicy.defaultSHA256)

        // The committed sample epoch judged under the loaded default: exactly the committed bytes.
        let checks = try JudgeIO.readChecks(fixtures + "/checks.jsonl")
        let recs = try JudgeIO.readKL([fixtures + "/kl.jsonl"])
        let state = try JudgeIO.readState(fixtures + "/state.json")
        let (v, after) = try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(policy: p, block: 1000))
        XCTAssertEqual(try JudgeIO.encode(v), try readFile(fixtures + "/verdict.json"))
        XCTAssertEqual(try JudgeIO.encode(after), try readFile(fixtures + "/state-after.json"))
        XCTAssertNil(v.policy_sha256)
    }

    func testUnknownFieldsAndRulesAreRefusedNamingTheFile() throws {
        let dir = NSTemporaryDirectory() + "distil-policy-bad-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (body, what) in [(#"{"epsilon": 0.02}"#, "unknown field 'epsilon'"),
                             (#"{"dethrone": {"rule": "paired_t", "alfa": 0.1}}"#, "dethrone: unknown field 'alfa'"),
                             (#"{"dethrone": {"rule": "vibes"}}"#, "dethrone.rule 'vibes' is not epsilon or paired_t"),
                             (#"{"weights": {"rule": "last_kings", "kings": 0}}"#, "weights.kings must be in 1...256"),
                             (#"{"format": "distil-policy/9"}"#, "format 'distil-policy/9' is not distil-policy/1")] {
            try writeFileAtomically(dir + "/p.json", Array(body.utf8))
            XCTAssertThrowsError(try JudgePolicy.load(path: dir + "/p.json"), body) { e in
                XCTAssertEqual((e as? DistilError)?.message, "\(dir)/p.json: \(what)")
            }
        }
    }

    /// 40 prompts; the king's KL is 1.0 on each. Challenger 2 is 2.5% better on average but noisy
    /// (0.475 / 1.475 alternately); challenger 3 is 0.8% better with little noise (0.972 / 1.012).
    func epoch() -> ([CheckVerdict], [SourcedKL]) {
        let n = 40
        let king = [Double](repeating: 1.0, count: n)
        let noisy = (0..<n).map { 0.975 + ($0 % 2 == 0 ? -0.5 : 0.5) }
        let steady = (0..<n).map { 0.992 + ($0 % 2 == 0 ? -0.02 : 0.02) }
        return ([Epoch.check(1), Epoch.check(2), Epoch.check(3)],
                Epoch.records(1, king) + Epoch.records(2, noisy) + Epoch.records(3, steady))
    }

    func testAPairedTestPolicyDecidesOtherwiseThanTheEpsilonRule() throws {
        let (checks, recs) = epoch()
        // The epsilon rule: only the mean counts; the noisy challenger is below 0.99 x the king.
        let (eps, _) = try Judge.judge(checks: checks, records: recs, state: Epoch.king(1), options: JudgeOptions(epsilon: 0.01, block: 500))
        XCTAssertEqual(eps.winner, 2)
        XCTAssertTrue(eps.models.allSatisfy(\.eligible), "\(eps.models.map(\.flags))")

        // The paired test: the noisy one is not significantly better (p ~ 0.4), the steady one is
        // (t = -2.5 on 39 degrees of freedom, p < 0.01) although it is within 1% of the king.
        var paired = try JudgePolicy.load(path: fixtures + "/policy-paired.json")
        var state = Epoch.king(1)
        state.policy_sha256 = paired.sha256
        let (v, after) = try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(policy: paired, block: 500))
        XCTAssertEqual(v.winner, 3, v.reason)
        XCTAssertTrue(v.reason.contains("paired t-test over 40 prompts"), v.reason)
        XCTAssertEqual(v.policy_sha256, paired.sha256)
        XCTAssertEqual(after.policy_sha256, paired.sha256)
        XCTAssertEqual(v.values, [0, 0, 1])
        let p3 = try XCTUnwrap(v.models[2].vs_king?.p_value)
        let p2 = try XCTUnwrap(v.models[1].vs_king?.p_value)
        XCTAssertLessThan(p3, 0.01)
        XCTAssertGreaterThan(p2, 0.3)

        // With a 1% margin the steady challenger is not significantly below 0.99 x the king: the king stays.
        paired.dethrone = .pairedT(alpha: 0.05, minPrompts: 20, margin: 0.01)
        state.policy_sha256 = paired.sha256
        let (m, _) = try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(policy: paired, block: 500))
        XCTAssertEqual(m.winner, 1, m.reason)
        XCTAssertTrue(m.reason.contains("no challenger significantly below it"), m.reason)

        // Fewer prompts than the test needs: nobody is dethroned.
        paired.dethrone = .pairedT(alpha: 0.05, minPrompts: 41, margin: 0)
        state.policy_sha256 = paired.sha256
        let (few, _) = try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(policy: paired, block: 500))
        XCTAssertEqual(few.winner, 1)
        XCTAssertTrue(few.reason.contains("40 prompts, fewer than the 41"), few.reason)
    }

    func testALastThreeKingsPolicySplitsTheWeightWhereTheEpsilonRuleGivesItAll() throws {
        let policy = try JudgePolicy.load(path: fixtures + "/policy-last-kings.json")
        XCTAssertEqual(policy.weights, .lastKings(3))
        // Kings so far: uid 5, then uid 4, then uid 1 (the king now); uid 6 was king before them all.
        let checks = (1...6).map { Epoch.check($0) }
        var state = Epoch.king(1)
        state.kings = [6, 5, 4, 1].map { Epoch.king($0).king! }
        state.policy_sha256 = policy.sha256
        let recs = Epoch.records(1, [0.5, 0.6, 0.55]) + Epoch.records(2, [0.3, 0.35, 0.32])

        let (wta, _) = try Judge.judge(checks: checks, records: recs, state: Epoch.king(1), options: JudgeOptions(epsilon: 0.01, block: 500))
        XCTAssertEqual(wta.winner, 2)
        XCTAssertEqual(wta.values, [0, 1, 0, 0, 0, 0])

        // Uid 2 takes the crown; the weight goes to it and the two kings before it (uids 1 and 4).
        let (v, after) = try Judge.judge(checks: checks, records: recs, state: state, options: JudgeOptions(policy: policy, block: 500))
        XCTAssertEqual(v.winner, 2)
        XCTAssertEqual(v.uids, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(v.values, [1.0 / 3, 1.0 / 3, 0, 1.0 / 3, 0, 0])
        XCTAssertEqual(after.kings?.map(\.uid), [6, 5, 4, 1, 2])

        // A past king whose check fails this epoch is passed over for the one before it.
        var failing = checks
        failing[3] = Epoch.check(4, ok: false, reason: .removed)
        let (w, _) = try Judge.judge(checks: failing, records: recs, state: state, options: JudgeOptions(policy: policy, block: 500))
        XCTAssertEqual(w.values, [1.0 / 3, 1.0 / 3, 0, 0, 1.0 / 3, 0])
    }

    func testAStateIsNotJudgedUnderAnotherPolicyWithoutSayingSo() throws {
        let (checks, recs) = epoch()
        let paired = try JudgePolicy.load(path: fixtures + "/policy-paired.json")
        XCTAssertThrowsError(try Judge.judge(checks: checks, records: recs, state: Epoch.king(1),
                                             options: JudgeOptions(policy: paired, block: 500))) { e in
            let msg = (e as? DistilError)?.message ?? ""
            XCTAssertTrue(msg.hasPrefix("the state was written under policy \(JudgePolicy.defaultSHA256.prefix(12)) and this judge runs policy \(paired.sha256.prefix(12))"), msg)
        }
        var o = JudgeOptions(policy: paired, block: 500)
        o.acceptPolicyChange = true
        let (_, after) = try Judge.judge(checks: checks, records: recs, state: Epoch.king(1), options: o)
        XCTAssertEqual(after.policy_sha256, paired.sha256)
        // The first epoch (an empty state) takes any policy.
        XCTAssertNoThrow(try Judge.judge(checks: checks, records: recs, state: JudgeState(), options: JudgeOptions(policy: paired, block: 500)))
    }
}
