import DistilFormats

/// The judge's knobs.
public struct JudgeOptions: Sendable {
    /// The rules: how a challenger dethrones the king, who gets the weight.
    public var policy = JudgePolicy.default
    /// Judge a state written under another policy under this one (from now on).
    public var acceptPolicyChange = false
    /// The epsilon rule's epsilon (or the policy's copy margin): see `JudgePolicy.epsilon`.
    public var epsilon: Double { policy.epsilon }
    /// The epoch block (recorded in the verdict and the state); nil: the teacher stream's block.
    public var block: Int?
    /// Mean KL at or below this is "teacher in disguise" (the teacher itself, or a relabelled copy).
    public var teacherThreshold: Double = 1e-6
    /// Per-prompt KL vectors at least this cosine-similar (with means within epsilon) are copies.
    public var copyCosine: Double = 0.9999

    /// The default policy with this epsilon.
    public init(epsilon: Double = 0.01, block: Int? = nil) {
        policy.dethrone = .epsilon(epsilon); self.block = block
    }

    public init(policy: JudgePolicy, block: Int? = nil) {
        self.policy = policy; self.block = block
    }
}

/// A KL record and where it was read ("kl/2.jsonl:7"), so every error can name its line.
public struct SourcedKL: Sendable {
    public var record: KLRecord
    public var place: String
    public init(_ record: KLRecord, place: String) { self.record = record; self.place = place }
}

/// The rules of the competition: who gets scored (`plan`) and who wins (`judge`).
///
/// `judge` runs five named steps over one epoch's inputs: score and flag every model, resolve the
/// king, pick the winner, write each model's verdict, and derive the next state.
public enum Judge {
    public static let verdictFormat = "distil-verdict/1"

    // MARK: plan

    /// The models to score this epoch: the king (if its check is still ok) followed by every ok model
    /// never scored before, by (commitment block, uid). Empty when there is no new challenger: then
    /// the epoch spends no teacher or student compute.
    public static func plan(checks: [CheckVerdict], state: JudgeState) -> [CheckVerdict] {
        let ok = checks.filter(\.ok)
        let king = state.king.flatMap { k in kingCheck(k, in: ok) }
        // The king could not be checked this epoch (a transient fetch or re-check failure): spend no
        // compute; challengers are scored against it once it can be checked again.
        if king == nil, let k = state.king, retryCheck(for: k, in: checks) != nil { return [] }
        var seen = Set<ModelRef.Key>()
        let fresh = ok.filter { c in
            let key = c.model.key
            guard key != state.king?.model.key, state.scored(key) == nil, !seen.contains(key) else { return false }
            seen.insert(key)
            return true
        }.sorted { ($0.block, $0.uid) < ($1.block, $1.uid) }
        guard !fresh.isEmpty else { return [] }
        return (king.map { [$0] } ?? []) + fresh
    }

    /// The flag of a model whose re-check was RETRY: not judged this epoch.
    public static let pendingFlag = "RECHECK_RETRY"

    /// The flag a model rejected for a scoring failure of its own keeps in the state.
    public static let unscorableFlag = ReasonCode.unscorable.rawValue

    /// The king's check: the same model under the same uid, else the same model under another uid
    /// (a miner may re-register).
    static func kingCheck(_ k: KingRecord, in checks: [CheckVerdict]) -> CheckVerdict? {
        checks.first { $0.model.key == k.model.key && $0.uid == k.uid } ?? checks.first { $0.model.key == k.model.key }
    }

    /// A model's re-check verdict: by uid and identity, or a RETRY by uid, hotkey and repo (a failed
    /// listing may not know the commit).
    static func recheckVerdict(uid: Int, key: ModelRef.Key, in recheck: [CheckVerdict]) -> CheckVerdict? {
        recheck.first { $0.uid == uid && $0.model.key == key }
            ?? recheck.first { $0.uid == uid && $0.reason == .retry && $0.hotkey == key.hotkey && $0.repo == key.repo }
    }

    /// The king's check when it says RETRY (transient): matched by hotkey, repo and uid, because a
    /// failed fetch may not know the commit.
    static func retryCheck(for k: KingRecord, in checks: [CheckVerdict]) -> CheckVerdict? {
        checks.first { $0.reason == .retry && $0.hotkey == k.hotkey && $0.repo == k.repo && $0.uid == k.uid }
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
        var key: ModelRef.Key
        var block: Int? { check?.block ?? first.record.block }
        var repo: String { check?.repo ?? first.record.model }
        var eligible: Bool { flags.isEmpty }
        /// The model as its uid's check names it; without a check, as its records do (no revision
        /// or commit).
        var model: ModelRef {
            check?.model ?? ModelRef(uid: uid, hotkey: key.hotkey, repo: repo, revision: nil, commit: nil, block: block ?? 0)
        }
    }

    /// One model's scoring failure after validation.
    struct Failed {
        var uid: Int
        var source: SourcedFailure
        var check: CheckVerdict?
        var key: ModelRef.Key
        /// Of the model the uid's check describes (else nothing is recorded of it).
        var current: Bool { check.map { source.record.isOf($0.model) } ?? false }
        var fault: ScoringFault { source.record.fault }
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
    ///
    /// `failures`: dl-kl's scoring-failure records (a model it could not score). The checkpoint's
    /// fault (`miner`) rejects the model for good (`UNSCORABLE`, recorded with no score; a king loses
    /// the crown); ours (`ours`) is a RETRY: the model is `pending`, and a king keeps the crown while
    /// the challengers wait.
    public static func judge(checks: [CheckVerdict], records: [SourcedKL], failures: [SourcedFailure] = [], state: JudgeState,
                             recheck: [CheckVerdict]? = nil, options: JudgeOptions = JudgeOptions()) throws -> (Verdict, JudgeState) {
        if case .epsilon(let e) = options.policy.dethrone, !(e >= 0 && e < 1) {
            throw DistilError.usage("--epsilon must be in [0, 1), got \(e)")
        }
        try samePolicy(state, options)
        let checkByUID = try byUID(checks, what: "checks")
        _ = try byUID(recheck ?? [], what: "recheck")

        var models = try group(records, checks: checks, checkByUID: checkByUID)
        let failed = try groupFailures(failures, checks: checks, checkByUID: checkByUID, scored: models)
        let teacher = try sameTeacher(models, failed)
        let (kept, dropped) = try samePrompts(models)
        if !models.isEmpty && kept.isEmpty {
            throw DistilError("no prompt has a non-empty teacher continuation (\(dropped.count) dropped): nothing to score")
        }
        let block = options.block ?? teacher?.block

        try scoreAndFlag(&models, prompts: kept, recheck: recheck, options: options)
        let king = try resolveKing(state.king, checks: checks, recheck: recheck, models: models, failed: failed)
        let (winner, winnerIndex, reason) = pickWinner(models, king: king, rule: options.policy.dethrone,
                                                       unscored: failed.filter { $0.uid != king.failure?.uid }.count)
        let verdicts = modelVerdicts(models, king: king, winnerIndex: winnerIndex)
        let unscored = unscoredVerdicts(failed, king: king)
        let kingAfter = nextKing(models, king: king, winner: winner, winnerIndex: winnerIndex, crownedBlock: block)

        let history = kingHistory(state, kingAfter: kingAfter, policy: options.policy)
        let uids = checkByUID.keys.sorted()
        let values = weights(uids: uids, winner: winner, history: history, checks: checks, policy: options.policy)
        var verdict = Verdict(format: verdictFormat, block: block, epsilon: options.epsilon, teacher: teacher, prompts: kept,
                              dropped_prompts: dropped, king_before: state.king, king_after: kingAfter, winner: winner,
                              reason: reason, models: verdicts, weights: zip(uids, values).map { WeightEntry(uid: $0, weight: $1) },
                              uids: uids, values: values, tool: DistilVersion.tool)
        verdict.unscored = unscored.isEmpty ? nil : unscored
        var after = nextState(state, models: models, verdicts: verdicts, failed: failed, unscored: unscored, king: king,
                              kingAfter: kingAfter, block: block)
        // The default policy's verdicts and states keep the bytes they always had (no hash: default).
        verdict.policy_sha256 = options.policy.isDefault ? nil : options.policy.sha256
        after.policy_sha256 = verdict.policy_sha256
        after.kings = history
        Log.debug("verdict: \(reason)")
        return (verdict, after)
    }

    /// The records by uid, refusing a uid that appears twice.
    static func byUID(_ checks: [CheckVerdict], what: String) throws -> [Int: CheckVerdict] {
        var out: [Int: CheckVerdict] = [:]
        for c in checks {
            if out[c.uid] != nil { throw DistilError("\(what): uid \(c.uid) appears twice") }
            out[c.uid] = c
        }
        return out
    }

    // MARK: step 1: score and flag

    /// Each model's per-prompt scores over the kept prompts, its summary, and the flags that keep it
    /// from weight: STALE, DISQUALIFIED:<reason> (check or re-check), RECHECK_RETRY, NOT_IN_CHECKS,
    /// TEACHER_IN_DISGUISE, COPY_OF:<uid>.
    static func scoreAndFlag(_ models: inout [Scored], prompts kept: [String], recheck: [CheckVerdict]?,
                             options: JudgeOptions) throws {
        for i in models.indices {
            var m = models[i]
            m.perPrompt = kept.map { p in
                let r = m.byPrompt[p]!.record
                return PromptScore(prompt_id: p, kl_mean: r.kl_mean, kl_std: r.kl_std, n_tokens: r.n_tokens)
            }
            m.vector = m.perPrompt.map(\.kl_mean)
            m.summary = SampleSummary(m.vector)
            if let c = m.check {
                if !m.first.record.isOf(c.model) { m.flags.append("STALE") }
                if !c.ok { m.flags.append("DISQUALIFIED:\(c.reason.rawValue)") }
                // The re-check of a model that was fit to score: gone or changed since is a
                // disqualification; a transient failure leaves it pending.
                if let recheck, c.ok, !m.flags.contains("STALE") {
                    guard let r = recheckVerdict(uid: m.uid, key: m.key, in: recheck) else {
                        throw DistilError("recheck: uid \(m.uid) (\(m.repo)) was scored but has no re-check verdict; re-check every "
                            + "scored model (dl-check --recheck-only --only plan.jsonl)")
                    }
                    if r.reason == .retry { m.flags.append(pendingFlag) } else if !r.ok { m.flags.append("DISQUALIFIED:\(r.reason.rawValue)") }
                }
            } else {
                m.flags.append("NOT_IN_CHECKS")
            }
            if m.summary.mean <= options.teacherThreshold { m.flags.append("TEACHER_IN_DISGUISE") }
            models[i] = m
            Log.debug("uid \(m.uid) \(m.repo): mean KL \(fmt(m.summary.mean)) over \(m.summary.n) prompts"
                + (m.flags.isEmpty ? "" : " [\(m.flags.joined(separator: ","))]"))
        }
        flagCopies(&models, options: options)
    }

    // MARK: step 2: resolve the king

    /// The king this epoch: its check and re-check, whether it waits on a transient failure, and
    /// whether it may keep the crown.
    struct KingStatus {
        /// The king before this epoch.
        var before: KingRecord?
        /// The check of exactly the king's model.
        var exactCheck: CheckVerdict?
        /// Its re-check (only asked of a king whose check was ok).
        var recheck: CheckVerdict?
        /// The RETRY (check or re-check) the king waits on, if any.
        var retry: CheckVerdict?
        var recheckFailed: Bool
        /// The check that stands for the king: the RETRY it waits on, else its exact check.
        var check: CheckVerdict?
        /// Its scored records this epoch (nil: none, or it cannot keep the crown).
        var index: Int?
        var valid: Bool
        /// Its flags this epoch (for the reason it lost the crown).
        var flags: [String]
        /// Its scoring failure this epoch, if dl-kl could not score it.
        var failure: Failed?
        /// A transient failure (RETRY) of the king's check or re-check, or a failure of ours to score
        /// it, never costs it the crown: it keeps the weight, and the challengers scored this epoch
        /// wait (they are not recorded, so they are planned again).
        var waiting: Bool { retry != nil || failure?.fault == .ours }
    }

    static func resolveKing(_ before: KingRecord?, checks: [CheckVerdict], recheck: [CheckVerdict]?,
                            models: [Scored], failed: [Failed]) throws -> KingStatus {
        let exact = before.flatMap { kingCheck($0, in: checks) }
        let kingRecheck: CheckVerdict? = exact?.ok == true
            ? before.flatMap { k in recheck.flatMap { recheckVerdict(uid: exact!.uid, key: k.model.key, in: $0) } } : nil
        let retry: CheckVerdict?
        if exact?.ok == true {
            retry = kingRecheck?.reason == .retry ? kingRecheck : nil
        } else {
            retry = before.flatMap { k in exact?.reason == .retry ? exact : retryCheck(for: k, in: checks) }
        }
        let recheckFailed = kingRecheck.map { !$0.ok && $0.reason != .retry } ?? false
        let check = retry ?? exact
        var s = KingStatus(before: before, exactCheck: exact, recheck: kingRecheck, retry: retry, recheckFailed: recheckFailed,
                           check: check, index: check.flatMap { kc in models.firstIndex { $0.uid == kc.uid && $0.key == kc.model.key } },
                           valid: false, flags: [])
        s.failure = check.flatMap { kc in failed.first { $0.uid == kc.uid && $0.key == kc.model.key && $0.current } }
        s.valid = (check?.ok == true && !recheckFailed) || s.waiting
        // Its own checkpoint could not be scored: it cannot keep the crown (unless it waits on a RETRY).
        if !s.waiting, s.failure?.fault == .miner {
            s.valid = false
            s.flags = [unscorableFlag]
        }
        if s.valid, !s.waiting, !models.isEmpty, s.index == nil, s.failure == nil, let k = before {
            throw DistilError("the king (uid \(check!.uid), \(k.repo)) has no KL records this epoch: challengers must be "
                + "scored with the king on the same prompts (dl-judge plan lists it)")
        }
        if s.failure == nil { s.flags = s.index.map { models[$0].flags } ?? [] }
        if !s.waiting, let ki = s.index, !models[ki].eligible { s.valid = false }
        if !s.valid { s.index = nil }
        Log.debug("king: " + (before.map { "uid \($0.uid) \($0.repo)" } ?? "none")
            + (s.waiting ? ", waiting on RETRY" : "") + (before != nil && !s.valid ? ", cannot keep the crown" : ""))
        return s
    }

    // MARK: step 3: pick the winner

    /// The uid that gets the weight (nil: nobody), the index of its records if it was scored, and one
    /// sentence saying why.
    /// `unscored`: the challengers whose scoring failed (for the words when none was scored).
    static func pickWinner(_ models: [Scored], king: KingStatus, rule: JudgePolicy.Dethrone, unscored: Int = 0) -> (Int?, Int?, String) {
        let noChallenger = unscored == 0 ? "no challenger this epoch"
            : "no challenger was scored this epoch (\(unscored) could not be scored)"
        func better(_ a: Scored, _ b: Scored) -> Bool {
            (a.summary.mean, a.block ?? Int.max, a.uid) < (b.summary.mean, b.block ?? Int.max, b.uid)
        }
        if king.valid, let kc = king.check {
            if king.waiting {
                let what = king.retry.map { r in
                    (king.exactCheck?.ok == true ? "re-checked before the weights are set" : "checked this epoch") + " (RETRY: \(r.message))"
                } ?? "scored this epoch (\(ReasonCode.retry.rawValue): ours or transient: \(king.failure!.source.record.message))"
                let challengers = models.indices.filter { $0 != king.index }.count
                let reason = "the king (uid \(kc.uid)) could not be \(what); it keeps the weight"
                    + (challengers > 0 ? " and the \(challengers) challenger\(challengers == 1 ? "" : "s") scored this epoch wait for the next epoch"
                                       : " and challengers wait")
                return (king.index.map { models[$0].uid } ?? kc.uid, king.index, reason)
            }
            guard let ki = king.index else {
                return (kc.uid, nil, "no new challenger: the king (uid \(kc.uid)) keeps the weight")
            }
            let k = models[ki].summary.mean
            switch rule {
            case .epsilon(let eps):
                let bar = (1 - eps) * k
                let qualifying = models.indices.filter { $0 != ki && models[$0].eligible && models[$0].summary.mean < bar }
                if let best = qualifying.min(by: { better(models[$0], models[$1]) }) {
                    let w = models[best]
                    return (w.uid, best, "uid \(w.uid) takes the crown: mean KL \(fmt(w.summary.mean)) < (1 - \(eps)) x king's \(fmt(k)) = \(fmt(bar))")
                }
                return (models[ki].uid, ki, models.count > 1
                    ? "the king (uid \(kc.uid)) keeps the crown: no challenger below (1 - \(eps)) x \(fmt(k)) = \(fmt(bar))"
                    : "the king (uid \(kc.uid)) keeps the crown: \(noChallenger)")
            case .pairedT(let alpha, let minPrompts, let margin):
                // Challenger minus (1 - margin) x king, prompt by prompt: below zero with p < alpha.
                let bar = models[ki].vector.map { (1 - margin) * $0 }
                func p(_ i: Int) -> Double { PairedComparison(models[i].vector, bar).p_value ?? 1 }
                let n = models[ki].vector.count
                let qualifying = n < minPrompts ? [] : models.indices.filter {
                    $0 != ki && models[$0].eligible && models[$0].summary.mean < (1 - margin) * k && p($0) < alpha
                }
                let test = "paired t-test over \(n) prompts against (1 - \(margin)) x the king's per-prompt KL, alpha \(alpha)"
                if let best = qualifying.min(by: { better(models[$0], models[$1]) }) {
                    let w = models[best]
                    return (w.uid, best, "uid \(w.uid) takes the crown: mean KL \(fmt(w.summary.mean)) vs king's \(fmt(k)), p = \(fmt(p(best))) (\(test))")
                }
                if models.count == 1 { return (models[ki].uid, ki, "the king (uid \(kc.uid)) keeps the crown: \(noChallenger)") }
                return (models[ki].uid, ki, n < minPrompts
                    ? "the king (uid \(kc.uid)) keeps the crown: \(n) prompts, fewer than the \(minPrompts) the paired test needs"
                    : "the king (uid \(kc.uid)) keeps the crown: no challenger significantly below it (\(test))")
            }
        }
        let why: String
        if let k = king.before {
            let code = king.recheckFailed ? "re-check: \(king.recheck!.reason.rawValue)"
                : king.check.map { $0.ok ? (king.flags.isEmpty ? "flagged this epoch" : king.flags.joined(separator: ",")) : $0.reason.rawValue }
                ?? "absent from the checks"
            why = "the king (uid \(k.uid), \(k.repo)) lost the crown (\(code))"
        } else {
            why = "no king yet"
        }
        if let best = models.indices.filter({ models[$0].eligible }).min(by: { better(models[$0], models[$1]) }) {
            return (models[best].uid, best, "\(why): the lowest mean KL wins, uid \(models[best].uid) (\(fmt(models[best].summary.mean)))")
        }
        return (nil, nil, "\(why) and no eligible model was scored: no weight this epoch")
    }

    // MARK: step 4: verdicts

    /// Each scored model's outcome, score, flags and comparison with the king.
    static func modelVerdicts(_ models: [Scored], king: KingStatus, winnerIndex: Int?) -> [ModelVerdict] {
        let kingVector = king.index.map { models[$0].vector }
        return models.enumerated().map { i, m in
            let wasKing = king.before.map { $0.model.key == m.key } ?? false
            let outcome: ModelOutcome
            if i == winnerIndex { outcome = wasKing ? .king : .newKing }
            else if wasKing { outcome = king.waiting ? .king : .dethroned }
            else if m.flags.contains(pendingFlag) || (king.waiting && m.eligible) { outcome = .pending }
            else if !m.eligible { outcome = .noWeight }
            else { outcome = .lost }
            let r = m.first.record
            return ModelVerdict(uid: m.uid, hotkey: m.check?.hotkey ?? r.hotkey, repo: m.repo,
                                revision: m.check?.revision ?? r.revision, commit: m.check?.commit, block: m.block,
                                score: ScoreSummary(m.summary), flags: m.flags, eligible: m.eligible, outcome: outcome,
                                vs_king: (kingVector != nil && i != king.index) ? PairedComparison(m.vector, kingVector!) : nil,
                                per_prompt: m.perPrompt)
        }
    }

    // MARK: the policy and the weights

    /// A state is judged under the policy it was written under: another one is refused, unless the
    /// operator says the change is meant (then the next state records the new policy's hash). An
    /// empty state (the first epoch) takes any policy.
    static func samePolicy(_ state: JudgeState, _ options: JudgeOptions) throws {
        let was = state.policy_sha256 ?? JudgePolicy.defaultSHA256, now = options.policy.sha256
        guard was != now, state.king != nil || !state.models.isEmpty, !options.acceptPolicyChange else { return }
        throw DistilError("the state was written under policy \(was.prefix(12)) and this judge runs policy \(now.prefix(12)): "
            + "pass the state's policy (--policy), or --accept-policy-change to judge under the new one from now on")
    }

    /// The kings in crowning order, the latest last, as a last-kings policy keeps them (nil under
    /// any other policy, so those states keep their bytes).
    static func kingHistory(_ state: JudgeState, kingAfter: KingRecord?, policy: JudgePolicy) -> [KingRecord]? {
        guard case .lastKings(let n) = policy.weights else { return nil }
        var kings = state.kings ?? state.king.map { [$0] } ?? []
        if let k = kingAfter {
            if let last = kings.last, last.model.key == k.model.key { kings[kings.count - 1] = k } else { kings.append(k) }
        }
        // Keep a little more than the policy reads: a king that lost its check comes back to it.
        return Array(kings.suffix(max(n, 1) * 4))
    }

    /// Each uid's weight: 1.0 to the winner, or (last kings) an even split over the winner and the
    /// kings before it, the most recent first, each counted once and only with a passing check under
    /// its uid of this epoch, until the policy's number of kings is reached.
    static func weights(uids: [Int], winner: Int?, history: [KingRecord]?, checks: [CheckVerdict], policy: JudgePolicy) -> [Double] {
        guard let winner else { return uids.map { _ in 0 } }
        var paid = [winner]
        if case .lastKings(let n) = policy.weights, let history {
            var seen = Set<ModelRef.Key>()
            for k in history.reversed() where paid.count < n && seen.insert(k.model.key).inserted {
                guard let c = kingCheck(k, in: checks), c.ok, !paid.contains(c.uid) else { continue }
                paid.append(c.uid)
            }
        }
        let share = 1.0 / Double(paid.count)
        return uids.map { paid.contains($0) ? share : 0 }
    }

    // MARK: step 5: the next king and state

    /// The king after this epoch: the winner (the same record, under its current uid, if it was the
    /// king already), or the waiting king.
    static func nextKing(_ models: [Scored], king: KingStatus, winner: Int?, winnerIndex: Int?, crownedBlock: Int?) -> KingRecord? {
        if let wi = winnerIndex {
            let m = models[wi]
            if var k = king.before, k.model.key == m.key {
                k.uid = m.uid
                return k
            }
            return KingRecord(model: m.model, crownedBlock: crownedBlock)
        }
        if winner != nil, var k = king.before, let kc = king.check {
            k.uid = kc.uid
            return k
        }
        return nil
    }

    /// The new state: every model judged this epoch keeps its score; a dethroned king is marked; a
    /// model rejected for its own scoring failure is recorded with no score (`no_weight`,
    /// `UNSCORABLE`), so it is never planned again. Nothing is recorded of a model left pending, nor
    /// of anyone while the king waits on a RETRY.
    static func nextState(_ state: JudgeState, models: [Scored], verdicts: [ModelVerdict], failed: [Failed], unscored: [UnscoredModel],
                          king: KingStatus, kingAfter: KingRecord?, block: Int?) -> JudgeState {
        var s = state
        s.version = JudgeState.currentVersion
        s.king = kingAfter
        for (m, v) in zip(models, verdicts) where !king.waiting && v.outcome != .pending && !m.flags.contains("STALE") {
            guard let c = m.check else { continue }
            let rec = ScoredModel(model: c.model, scored_block: block, score: ScoreSummary(m.summary), flags: m.flags, outcome: v.outcome.recorded)
            s.put(rec)
        }
        for (f, v) in zip(failed, unscored) where !king.waiting && v.outcome == .noWeight && f.current {
            s.put(ScoredModel(model: f.check!.model, scored_block: block, score: .unscored, flags: [unscorableFlag], outcome: .noWeight))
        }
        if let k = king.before, kingAfter?.model.key != k.model.key,
           let j = s.models.firstIndex(where: { $0.model.key == k.model.key }) {
            s.models[j].outcome = .dethroned
        }
        s.models.sort { ModelRef.stateOrder($0.model, $1.model) }
        return s
    }

    // MARK: step 4b: the models that could not be scored

    /// Each scoring failure's verdict: the checkpoint's fault is a rejection (`no_weight`), ours a
    /// RETRY (`pending`); the king keeps the crown on ours and loses it on the miner's. A failure of
    /// a model that is not its uid's checked one (or has no check) is `no_weight` and never recorded.
    static func unscoredVerdicts(_ failed: [Failed], king: KingStatus) -> [UnscoredModel] {
        failed.map { f in
            let r = f.source.record
            let outcome: ModelOutcome
            if king.failure?.uid == f.uid && f.current { outcome = king.waiting ? .king : .dethroned }
            else if f.current && f.fault == .ours { outcome = .pending }
            else { outcome = .noWeight }
            return UnscoredModel(uid: f.uid, hotkey: f.check?.hotkey ?? r.hotkey, repo: f.check?.repo ?? r.model, commit: f.check?.commit,
                                 fault: f.fault, reason: f.fault.reason, message: r.message, outcome: outcome)
        }
    }

    // MARK: validation

    /// The scoring failures by uid (a record without uid is matched to the check with its repo and
    /// hotkey), refusing a uid that failed twice or has KL records too.
    static func groupFailures(_ failures: [SourcedFailure], checks: [CheckVerdict], checkByUID: [Int: CheckVerdict],
                              scored: [Scored]) throws -> [Failed] {
        var byUID: [Int: Failed] = [:]
        for s in failures {
            let r = s.record
            guard let uid = r.uid ?? r.check(in: checks)?.uid else {
                throw DistilError("\(s.place): scoring failure of '\(r.model)' has no uid and matches no check")
            }
            if let prev = byUID[uid] { throw DistilError("\(s.place): uid \(uid) has two scoring failures (first at \(prev.source.place))") }
            if let m = scored.first(where: { $0.uid == uid }) {
                throw DistilError("\(s.place): uid \(uid) has a scoring failure and KL records (\(m.first.place))")
            }
            let c = checkByUID[uid]
            byUID[uid] = Failed(uid: uid, source: s, check: c,
                                key: c?.model.key ?? r.namedKey)
        }
        return byUID.keys.sorted().map { byUID[$0]! }
    }

    /// Groups records by uid (a record without uid is matched to the check with its repo and hotkey),
    /// refusing duplicate prompts, negative or malformed values, and one uid carrying two models.
    static func group(_ records: [SourcedKL], checks: [CheckVerdict], checkByUID: [Int: CheckVerdict]) throws -> [Scored] {
        var byUID: [Int: Scored] = [:]
        for s in records {
            let r = s.record
            let uid: Int
            if let u = r.uid {
                uid = u
            } else if let c = r.check(in: checks) {
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
                let key = c?.model.key ?? r.namedKey
                byUID[uid] = Scored(uid: uid, first: s, check: c, byPrompt: [r.prompt_id: s], key: key)
            }
        }
        return byUID.keys.sorted().map { byUID[$0]! }
    }

    /// Every record must come from one teacher stream (same teacher and epoch block hash), and
    /// every scoring failure name that stream.
    static func sameTeacher(_ models: [Scored], _ failed: [Failed] = []) throws -> TeacherRef? {
        let t0 = models.first?.first.record.teacher ?? failed.first?.source.record.teacher
        let first = models.first.map { ($0.uid, $0.first.place) } ?? failed.first.map { ($0.uid, $0.source.place) }
        for f in failed where f.source.record.teacher != t0 {
            throw DistilError("\(f.source.place): uid \(f.uid)'s scoring failure names teacher stream \(describe(f.source.record.teacher)) "
                + "but uid \(first!.0) was scored against \(describe(t0)) (\(first!.1)): refusing to compare different teacher streams")
        }
        guard let ref = models.first else { return t0 }
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
