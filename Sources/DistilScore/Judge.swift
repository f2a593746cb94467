import DistilFormats

/// The judge's knobs.
public struct JudgeOptions: Sendable {
    /// A challenger takes the crown only with mean KL < (1 − epsilon) × the king's on the same prompts.
    public var epsilon: Double = 0.01
    /// The epoch block (recorded in the verdict and the state); nil: the teacher stream's block.
    public var block: Int?
    /// Mean KL at or below this is "teacher in disguise" (the teacher itself, or a relabelled copy).
    public var teacherThreshold: Double = 1e-6
    /// Per-prompt KL vectors at least this cosine-similar (with means within epsilon) are copies.
    public var copyCosine: Double = 0.9999

    public init(epsilon: Double = 0.01, block: Int? = nil) {
        self.epsilon = epsilon; self.block = block
    }
}

/// A KL record and where it was read ("kl/2.jsonl:7"), so every error can name its line.
public struct SourcedKL: Sendable {
    public var record: KLRecord
    public var place: String
    public init(_ record: KLRecord, place: String) { self.record = record; self.place = place }
}

/// The rules of the competition: who gets scored (`plan`) and who wins (`judge`).
public enum Judge {
    public static let verdictFormat = "distil-verdict/1"

    // MARK: plan

    /// The models to score this epoch: the king (if its check is still ok) followed by every ok model
    /// never scored before, by (commitment block, uid). Empty when there is no new challenger: then
    /// the epoch spends no teacher or student compute.
    public static func plan(checks: [CheckVerdict], state: JudgeState) -> [CheckVerdict] {
        let ok = checks.filter(\.ok)
        let kingID = state.king?.identity
        let king = kingID.flatMap { id in
            ok.first { ModelIdentity($0) == id && $0.uid == state.king?.uid } ?? ok.first { ModelIdentity($0) == id }
        }
        // The king could not be checked this epoch (a transient fetch or re-check failure): spend no
        // compute; challengers are scored against it once it can be checked again.
        if king == nil, let k = state.king, retryCheck(for: k, in: checks) != nil { return [] }
        var seen = Set<ModelIdentity>()
        let fresh = ok.filter { c in
            let id = ModelIdentity(c)
            guard id != kingID, state.scored(id) == nil, !seen.contains(id) else { return false }
            seen.insert(id)
            return true
        }.sorted { ($0.block, $0.uid) < ($1.block, $1.uid) }
        guard !fresh.isEmpty else { return [] }
        return (king.map { [$0] } ?? []) + fresh
    }

    /// The flag of a model whose re-check was RETRY: not judged this epoch.
    public static let pendingFlag = "RECHECK_RETRY"

    /// A model's re-check verdict: by uid and identity, or a RETRY by uid, hotkey and repo (a failed
    /// listing may not know the commit).
    static func recheckVerdict(uid: Int, identity: ModelIdentity, in recheck: [CheckVerdict]) -> CheckVerdict? {
        recheck.first { $0.uid == uid && ModelIdentity($0) == identity }
            ?? recheck.first { $0.uid == uid && $0.reason == "RETRY" && $0.hotkey == identity.hotkey && $0.repo == identity.repo }
    }

    /// The king's check when it says RETRY (transient): matched by hotkey, repo and uid, because a
    /// failed fetch may not know the commit.
    static func retryCheck(for k: KingRecord, in checks: [CheckVerdict]) -> CheckVerdict? {
        checks.first { $0.reason == "RETRY" && $0.hotkey == k.hotkey && $0.repo == k.repo && $0.uid == k.uid }
    }

    // MARK: judge

    /// One model's records after validation.
    struct Scored {
        var uid: Int
        var first: SourcedKL
        var check: CheckVerdict?
        var byPrompt: [String: SourcedKL]
        var vector: [Double] = []
        var perPrompt: [PromptScore] = []
        var summary = SampleSummary([])
        var flags: [String] = []
        var identity: ModelIdentity
        var block: Int? { check?.block ?? first.record.block }
        var repo: String { check?.repo ?? first.record.model }
        var eligible: Bool { flags.isEmpty }
    }

    /// Judges one epoch: validates that every model was scored on the same prompts against the same
    /// teacher stream, scores each, applies the epsilon rule, and returns the verdict and the new state.
    /// Throws a one-line `DistilError` for inputs it must refuse.
    ///
    /// `recheck`: the integrity re-check of the scored models, taken after scoring and before the
    /// weights are set (dl-check --recheck-only; nil: none was run). A scored model whose re-check is
    /// REMOVED or CHANGED (any rejection) is disqualified; one whose re-check is RETRY is not judged
    /// this epoch (`pending`, not recorded, planned again). A king whose check or re-check is RETRY
    /// keeps the crown and the weight, and every challenger scored this epoch waits (`pending`).
    public static func judge(checks: [CheckVerdict], records: [SourcedKL], state: JudgeState, recheck: [CheckVerdict]? = nil,
                             options: JudgeOptions = JudgeOptions()) throws -> (Verdict, JudgeState) {
        guard options.epsilon >= 0, options.epsilon < 1 else {
            throw DistilError.usage("--epsilon must be in [0, 1), got \(options.epsilon)")
        }
        var checkByUID: [Int: CheckVerdict] = [:]
        for c in checks {
            if checkByUID[c.uid] != nil { throw DistilError("checks: uid \(c.uid) appears twice") }
            checkByUID[c.uid] = c
        }
        var recheckUIDs = Set<Int>()
        for r in recheck ?? [] where !recheckUIDs.insert(r.uid).inserted {
            throw DistilError("recheck: uid \(r.uid) appears twice")
        }

        var models = try group(records, checks: checks, checkByUID: checkByUID)
        let teacher = try sameTeacher(models)
        let (kept, dropped) = try samePrompts(models)
        if !models.isEmpty && kept.isEmpty {
            throw DistilError("no prompt has a non-empty teacher continuation (\(dropped.count) dropped): nothing to score")
        }

        // Scores and flags.
        for i in models.indices {
            var m = models[i]
            m.perPrompt = kept.map { p in
                let r = m.byPrompt[p]!.record
                return PromptScore(prompt_id: p, kl_mean: r.kl_mean, kl_std: r.kl_std, n_tokens: r.n_tokens)
            }
            m.vector = m.perPrompt.map(\.kl_mean)
            m.summary = SampleSummary(m.vector)
            if let c = m.check {
                if !matches(m.first.record, c) { m.flags.append("STALE") }
                if !c.ok { m.flags.append("DISQUALIFIED:\(c.reason)") }
                // The re-check of a model that was fit to score: gone or changed since is a
                // disqualification; a transient failure leaves it pending.
                if let recheck, c.ok, !m.flags.contains("STALE") {
                    guard let r = recheckVerdict(uid: m.uid, identity: m.identity, in: recheck) else {
                        throw DistilError("recheck: uid \(m.uid) (\(m.repo)) was scored but has no re-check verdict; re-check every "
                            + "scored model (dl-check --recheck-only --only plan.jsonl)")
                    }
                    if r.reason == "RETRY" { m.flags.append(pendingFlag) } else if !r.ok { m.flags.append("DISQUALIFIED:\(r.reason)") }
                }
            } else {
                m.flags.append("NOT_IN_CHECKS")
            }
            if m.summary.mean <= options.teacherThreshold { m.flags.append("TEACHER_IN_DISGUISE") }
            models[i] = m
        }
        flagCopies(&models, options: options)

        // The king.
        let kingBefore = state.king
        let exactKingCheck: CheckVerdict? = kingBefore.flatMap { k in
            checks.first { ModelIdentity($0) == k.identity && $0.uid == k.uid } ?? checks.first { ModelIdentity($0) == k.identity }
        }
        // The king's re-check (only asked of a king whose check was ok).
        let kingRecheck: CheckVerdict? = exactKingCheck?.ok == true
            ? kingBefore.flatMap { k in recheck.flatMap { recheckVerdict(uid: exactKingCheck!.uid, identity: k.identity, in: $0) } } : nil
        // A transient failure (RETRY) of the king's check or re-check never costs it the crown: it
        // keeps the weight, and the challengers scored this epoch wait for an epoch in which it can
        // be checked (they are not recorded, so they are planned again).
        let kingRetry: CheckVerdict?
        if exactKingCheck?.ok == true {
            kingRetry = kingRecheck?.reason == "RETRY" ? kingRecheck : nil
        } else {
            kingRetry = kingBefore.flatMap { k in exactKingCheck?.reason == "RETRY" ? exactKingCheck : retryCheck(for: k, in: checks) }
        }
        let waiting = kingRetry != nil
        let kingRecheckFailed = kingRecheck.map { !$0.ok && $0.reason != "RETRY" } ?? false
        let kingCheck = kingRetry ?? exactKingCheck
        var kingIndex = kingCheck.flatMap { kc in models.firstIndex { $0.uid == kc.uid && $0.identity == ModelIdentity(kc) } }
        var kingValid = (kingCheck?.ok == true && !kingRecheckFailed) || waiting
        if kingValid, !waiting, !models.isEmpty, kingIndex == nil, let k = kingBefore {
            throw DistilError("the king (uid \(kingCheck!.uid), \(k.repo)) has no KL records this epoch: challengers must be "
                + "scored with the king on the same prompts (dl-judge plan lists it)")
        }
        let kingFlags = kingIndex.map { models[$0].flags } ?? []
        if !waiting, let ki = kingIndex, !models[ki].eligible { kingValid = false }
        if !kingValid { kingIndex = nil }

        // The winner.
        let eps = options.epsilon
        func better(_ a: Scored, _ b: Scored) -> Bool {
            (a.summary.mean, a.block ?? Int.max, a.uid) < (b.summary.mean, b.block ?? Int.max, b.uid)
        }
        var winner: Int?
        var winnerIndex: Int?
        var reason: String
        if kingValid, let kc = kingCheck {
            if let r = kingRetry {
                winner = kc.uid
                winnerIndex = kingIndex
                let what = exactKingCheck?.ok == true ? "re-checked before the weights are set" : "checked this epoch"
                let challengers = models.indices.filter { $0 != kingIndex }.count
                reason = "the king (uid \(kc.uid)) could not be \(what) (RETRY: \(r.message)); it keeps the weight"
                    + (challengers > 0 ? " and the \(challengers) challenger\(challengers == 1 ? "" : "s") scored this epoch wait for the next epoch"
                                       : " and challengers wait")
            } else if let ki = kingIndex {
                let k = models[ki].summary.mean
                let bar = (1 - eps) * k
                let qualifying = models.indices.filter { $0 != ki && models[$0].eligible && models[$0].summary.mean < bar }
                if let best = qualifying.min(by: { better(models[$0], models[$1]) }) {
                    winnerIndex = best
                    let w = models[best]
                    reason = "uid \(w.uid) takes the crown: mean KL \(fmt(w.summary.mean)) < (1 - \(eps)) x king's \(fmt(k)) = \(fmt(bar))"
                } else {
                    winnerIndex = ki
                    reason = models.count > 1
                        ? "the king (uid \(kc.uid)) keeps the crown: no challenger below (1 - \(eps)) x \(fmt(k)) = \(fmt(bar))"
                        : "the king (uid \(kc.uid)) keeps the crown: no challenger this epoch"
                }
            } else {
                winner = kc.uid
                reason = "no new challenger: the king (uid \(kc.uid)) keeps the weight"
            }
        } else {
            let why: String
            if let k = kingBefore {
                let code = kingRecheckFailed ? "re-check: \(kingRecheck!.reason)"
                    : kingCheck.map { $0.ok ? (kingFlags.isEmpty ? "flagged this epoch" : kingFlags.joined(separator: ",")) : $0.reason }
                    ?? "absent from the checks"
                why = "the king (uid \(k.uid), \(k.repo)) lost the crown (\(code))"
            } else {
                why = "no king yet"
            }
            if let best = models.indices.filter({ models[$0].eligible }).min(by: { better(models[$0], models[$1]) }) {
                winnerIndex = best
                reason = "\(why): the lowest mean KL wins, uid \(models[best].uid) (\(fmt(models[best].summary.mean)))"
            } else {
                reason = "\(why) and no eligible model was scored: no weight this epoch"
            }
        }
        if let wi = winnerIndex { winner = models[wi].uid }

        // Per-model verdicts.
        let kingVector = kingIndex.map { models[$0].vector }
        let verdicts: [ModelVerdict] = models.enumerated().map { i, m in
            let wasKing = kingBefore.map { $0.identity == m.identity } ?? false
            let outcome: String
            if i == winnerIndex { outcome = wasKing ? "king" : "new_king" }
            else if wasKing { outcome = waiting ? "king" : "dethroned" }
            else if m.flags.contains(pendingFlag) || (waiting && m.eligible) { outcome = "pending" }
            else if !m.eligible { outcome = "no_weight" }
            else { outcome = "lost" }
            let r = m.first.record
            return ModelVerdict(uid: m.uid, hotkey: m.check?.hotkey ?? r.hotkey, repo: m.repo,
                                revision: m.check?.revision ?? r.revision, commit: m.check?.commit, block: m.block,
                                score: ScoreSummary(m.summary), flags: m.flags, eligible: m.eligible, outcome: outcome,
                                vs_king: (kingVector != nil && i != kingIndex) ? PairedComparison(m.vector, kingVector!) : nil,
                                per_prompt: m.perPrompt)
        }

        // The king after.
        var kingAfter: KingRecord?
        if let wi = winnerIndex {
            let m = models[wi]
            if let k = kingBefore, k.identity == m.identity {
                kingAfter = k; kingAfter!.uid = m.uid
            } else {
                kingAfter = KingRecord(uid: m.uid, hotkey: m.identity.hotkey, repo: m.repo, revision: m.check?.revision,
                                       commit: m.check?.commit, block: m.block ?? 0, crownedBlock: options.block ?? teacher?.block)
            }
        } else if winner != nil, var k = kingBefore, let kc = kingCheck {
            k.uid = kc.uid
            kingAfter = k
        }

        // Weights over every uid in the checks.
        let uids = checkByUID.keys.sorted()
        let values = uids.map { $0 == winner ? 1.0 : 0.0 }
        let block = options.block ?? teacher?.block

        let verdict = Verdict(format: verdictFormat, block: block, epsilon: eps, teacher: teacher, prompts: kept,
                              dropped_prompts: dropped, king_before: kingBefore, king_after: kingAfter, winner: winner,
                              reason: reason, models: verdicts, weights: zip(uids, values).map { WeightEntry(uid: $0, weight: $1) },
                              uids: uids, values: values, tool: DistilVersion.tool)

        // The new state: every model judged this epoch keeps its score; a dethroned king is marked.
        // Nothing is recorded of a model left pending, nor of anyone while the king waits on a RETRY.
        var newState = state
        newState.version = JudgeState.currentVersion
        newState.king = kingAfter
        for (m, v) in zip(models, verdicts) where m.check != nil && !m.flags.contains("STALE") && v.outcome != "pending" && !waiting {
            let rec = ScoredModel(uid: m.uid, hotkey: m.identity.hotkey, repo: m.repo, revision: m.check?.revision,
                                  commit: m.check?.commit, block: m.block, scored_block: block,
                                  score: ScoreSummary(m.summary), flags: m.flags,
                                  outcome: v.outcome == "new_king" ? "king" : v.outcome)
            if let j = newState.models.firstIndex(where: { $0.identity == m.identity }) {
                newState.models[j] = rec
            } else {
                newState.models.append(rec)
            }
        }
        if let k = kingBefore, kingAfter?.identity != k.identity,
           let j = newState.models.firstIndex(where: { $0.identity == k.identity }) {
            newState.models[j].outcome = "dethroned"
        }
        newState.models.sort { ($0.repo, $0.hotkey, $0.commit ?? $0.revision ?? "") < ($1.repo, $1.hotkey, $1.commit ?? $1.revision ?? "") }
        return (verdict, newState)
    }

    // MARK: validation

    /// Groups records by uid (a record without uid is matched to the check with its repo and hotkey),
    /// refusing duplicate prompts, negative or malformed values, and one uid carrying two models.
    static func group(_ records: [SourcedKL], checks: [CheckVerdict], checkByUID: [Int: CheckVerdict]) throws -> [Scored] {
        var byUID: [Int: Scored] = [:]
        for s in records {
            let r = s.record
            let uid: Int
            if let u = r.uid {
                uid = u
            } else if let c = checks.first(where: { $0.repo == r.model && (r.hotkey == nil || $0.hotkey == r.hotkey) }) {
                uid = c.uid
            } else {
                throw DistilError("\(s.place): KL record of '\(r.model)' has no uid and matches no check")
            }
            guard r.kl_mean.isFinite, r.kl_mean >= -1e-6 else {
                throw DistilError("\(s.place): kl_mean \(r.kl_mean) is not a KL divergence (negative or not finite)")
            }
            guard r.kl_std.isFinite, r.kl_std >= 0 else { throw DistilError("\(s.place): kl_std \(r.kl_std) is negative") }
            guard r.n_tokens >= 0 else { throw DistilError("\(s.place): n_tokens \(r.n_tokens) is negative") }
            if var m = byUID[uid] {
                let f = m.first.record
                if f.model != r.model || f.revision != r.revision || f.hotkey != r.hotkey {
                    throw DistilError("\(s.place): uid \(uid) has KL records of two models ('\(f.model)' at \(m.first.place), '\(r.model)')")
                }
                if let prev = m.byPrompt[r.prompt_id] {
                    throw DistilError("\(s.place): uid \(uid) has prompt '\(r.prompt_id)' twice (first at \(prev.place))")
                }
                m.byPrompt[r.prompt_id] = s
                byUID[uid] = m
            } else {
                let c = checkByUID[uid]
                let id = c.map(ModelIdentity.init) ?? ModelIdentity(hotkey: r.hotkey ?? "", repo: r.model, commit: r.revision ?? "")
                byUID[uid] = Scored(uid: uid, first: s, check: c, byPrompt: [r.prompt_id: s], identity: id)
            }
        }
        return byUID.keys.sorted().map { byUID[$0]! }
    }

    /// Every record must come from one teacher stream (same teacher and epoch block hash).
    static func sameTeacher(_ models: [Scored]) throws -> TeacherRef? {
        guard let ref = models.first else { return nil }
        let t0 = ref.first.record.teacher
        for m in models {
            for p in m.byPrompt.keys.sorted() {
                let s = m.byPrompt[p]!
                if s.record.teacher != t0 {
                    throw DistilError("\(s.place): uid \(m.uid) was scored against teacher stream \(describe(s.record.teacher)) "
                        + "but uid \(ref.uid) against \(describe(t0)) (\(ref.first.place)): refusing to compare different teacher streams")
                }
            }
        }
        return t0
    }

    /// Every model must have exactly the same prompts, with the same continuation lengths; prompts
    /// with an empty continuation are dropped for all. Returns (kept, dropped), each sorted.
    static func samePrompts(_ models: [Scored]) throws -> ([String], [String]) {
        guard let ref = models.first else { return ([], []) }
        let ids = Set(ref.byPrompt.keys)
        for m in models.dropFirst() {
            let mine = Set(m.byPrompt.keys)
            if mine != ids {
                let missing = ids.subtracting(mine).sorted(), extra = mine.subtracting(ids).sorted()
                var what: [String] = []
                if !missing.isEmpty { what.append("lacks \(list(missing))") }
                if !extra.isEmpty { what.append("has extra \(list(extra))") }
                throw DistilError("\(m.first.place): uid \(m.uid) and uid \(ref.uid) were scored on different prompts: uid \(m.uid) "
                    + what.joined(separator: " and ") + " (\(ids.count) vs \(mine.count) prompts)")
            }
        }
        var kept: [String] = [], dropped: [String] = []
        for p in ids.sorted() {
            let n0 = ref.byPrompt[p]!.record.n_tokens
            for m in models.dropFirst() where m.byPrompt[p]!.record.n_tokens != n0 {
                let s = m.byPrompt[p]!
                throw DistilError("\(s.place): prompt '\(p)' has \(s.record.n_tokens) continuation tokens for uid \(m.uid) "
                    + "but \(n0) for uid \(ref.uid): not the same teacher stream")
            }
            if n0 == 0 { dropped.append(p) } else { kept.append(p) }
        }
        return (kept, dropped)
    }

    /// Whether a KL record is of the model the check describes (repo, and hotkey/revision when given).
    static func matches(_ r: KLRecord, _ c: CheckVerdict) -> Bool {
        guard r.model == c.repo else { return false }
        if let h = r.hotkey, h != c.hotkey { return false }
        if let v = r.revision, v != c.revision, v != c.commit { return false }
        return true
    }

    /// Flags the later commitment (block, then uid) of two models whose per-prompt KL vectors are
    /// identical, or cosine-similar above the threshold with means within epsilon of each other (a
    /// uniformly better model has a proportional vector and is not a copy).
    static func flagCopies(_ models: inout [Scored], options: JudgeOptions) {
        let order = models.indices.sorted { (models[$0].block ?? Int.max, models[$0].uid) < (models[$1].block ?? Int.max, models[$1].uid) }
        for (j, b) in order.enumerated() {
            for a in order.prefix(j) {
                let va = models[a].vector, vb = models[b].vector
                let ma = models[a].summary.mean, mb = models[b].summary.mean
                let same = va == vb
                let near = Statistics.cosine(va, vb) > options.copyCosine && abs(ma - mb) <= options.epsilon * max(ma, mb)
                if same || near {
                    models[b].flags.append("COPY_OF:\(models[a].uid)")
                    break
                }
            }
        }
    }

    static func describe(_ t: TeacherRef?) -> String {
        guard let t else { return "(none recorded)" }
        let hash = t.block_hash.map { String($0.prefix(12)) } ?? "-"
        return "(\(t.repo)@\(t.revision ?? "-"), block \(t.block.map(String.init) ?? "-"), hash \(hash))"
    }

    static func list(_ xs: [String]) -> String {
        xs.count <= 3 ? xs.joined(separator: ", ") : xs.prefix(3).joined(separator: ", ") + " and \(xs.count - 3) more"
    }

    static func fmt(_ x: Double) -> String {
        var s = String(format: "%.6g", x)
        if s == "-0" { s = "0" }
        return s
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
