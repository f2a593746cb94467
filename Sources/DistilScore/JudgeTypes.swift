import DistilFormats

/// The king as the state and the verdict record it: the model, and when it took the crown.
public struct KingRecord: HoldsModelRef, Codable, Equatable, Sendable {
    public var model: ModelRef
    /// The epoch block in which it took the crown (nil when no block was given).
    public var crowned_block: Int?

    public init(model: ModelRef, crownedBlock: Int?) { self.model = model; crowned_block = crownedBlock }

    public init(uid: Int, hotkey: String, repo: String, revision: String?, commit: String?, block: Int, crownedBlock: Int?) {
        self.init(model: ModelRef(uid: uid, hotkey: hotkey, repo: repo, revision: revision, commit: commit, block: block),
                  crownedBlock: crownedBlock)
    }

    enum CodingKeys: String, CodingKey { case crowned_block }

    // Flat, as it always was: the model's fields and crowned_block in one object.
    public init(from decoder: Decoder) throws {
        model = try ModelRef(from: decoder)
        crowned_block = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Int.self, forKey: .crowned_block)
    }

    public func encode(to encoder: Encoder) throws {
        try model.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(crowned_block, forKey: .crowned_block)
    }
}

/// A model's score over one epoch's prompts.
public struct ScoreSummary: Codable, Equatable, Sendable {
    /// Prompts scored (after dropping empty continuations).
    public var n_prompts: Int
    /// Mean over prompts of the per-prompt mean KL (nats).
    public var mean_kl: Double
    /// Sample standard deviation of the per-prompt KL.
    public var std: Double
    /// Standard error of the mean.
    public var se: Double
    /// 95% confidence interval of the mean (Student t, n − 1 degrees of freedom).
    public var ci_low: Double
    public var ci_high: Double

    public init(_ s: SampleSummary) {
        n_prompts = s.n; mean_kl = s.mean; std = s.std; se = s.se; ci_low = s.ci_low; ci_high = s.ci_high
    }

    /// The score of a model that was never scored (its scoring failed): no prompts, every figure 0.
    public static let unscored = ScoreSummary(n_prompts: 0)

    init(n_prompts: Int) { self.n_prompts = n_prompts; mean_kl = 0; std = 0; se = 0; ci_low = 0; ci_high = 0 }
}

/// One scored model in the state: kept forever so a model is scored once.
public struct ScoredModel: HoldsModelRef, Codable, Equatable, Sendable {
    public var model: ModelRef
    /// The epoch block it was (last) scored in.
    public var scored_block: Int?
    public var score: ScoreSummary
    /// Flags of that epoch (see `ModelVerdict.flags`).
    public var flags: [String]
    /// `king`, `lost`, `dethroned` or `no_weight`.
    public var outcome: ModelOutcome

    public init(model: ModelRef, scored_block: Int?, score: ScoreSummary, flags: [String], outcome: ModelOutcome) {
        self.model = model; self.scored_block = scored_block; self.score = score; self.flags = flags; self.outcome = outcome
    }

    public init(uid: Int, hotkey: String, repo: String, revision: String?, commit: String?, block: Int, scored_block: Int?,
                score: ScoreSummary, flags: [String], outcome: ModelOutcome) {
        self.init(model: ModelRef(uid: uid, hotkey: hotkey, repo: repo, revision: revision, commit: commit, block: block),
                  scored_block: scored_block, score: score, flags: flags, outcome: outcome)
    }

    enum CodingKeys: String, CodingKey { case scored_block, score, flags, outcome }

    // Flat, as it always was: the model's fields beside its score.
    public init(from decoder: Decoder) throws {
        model = try ModelRef(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        scored_block = try c.decodeIfPresent(Int.self, forKey: .scored_block)
        score = try c.decode(ScoreSummary.self, forKey: .score)
        flags = try c.decode([String].self, forKey: .flags)
        outcome = try c.decode(ModelOutcome.self, forKey: .outcome)
    }

    public func encode(to encoder: Encoder) throws {
        try model.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(scored_block, forKey: .scored_block)
        try c.encode(score, forKey: .score)
        try c.encode(flags, forKey: .flags)
        try c.encode(outcome, forKey: .outcome)
    }
}

/// The judge's memory across epochs (`state.json`). An empty object `{}` is the empty state.
public struct JudgeState: Codable, Equatable, Sendable {
    public static let currentVersion = 1
    public var version: Int
    public var king: KingRecord?
    /// Every model ever scored, sorted by (repo, hotkey, commit).
    public var models: [ScoredModel]
    /// The policy it was written under (absent: the default policy, `JudgePolicy.defaultSHA256`).
    public var policy_sha256: String? = nil
    /// The kings in crowning order, the latest last (only under a last-kings policy).
    public var kings: [KingRecord]?

    public init(king: KingRecord? = nil, models: [ScoredModel] = []) {
        version = Self.currentVersion; self.king = king; self.models = models
    }

    enum CodingKeys: String, CodingKey { case version, king, models, policy_sha256, kings }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(Int.self, forKey: .version) ?? Self.currentVersion
        guard version == Self.currentVersion else {
            throw DistilError("unsupported state version \(version) (this judge reads version \(Self.currentVersion))")
        }
        king = try c.decodeIfPresent(KingRecord.self, forKey: .king)
        models = try c.decodeIfPresent([ScoredModel].self, forKey: .models) ?? []
        policy_sha256 = try c.decodeIfPresent(String.self, forKey: .policy_sha256)
        kings = try c.decodeIfPresent([KingRecord].self, forKey: .kings)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(version, forKey: .version)
        try c.encode(king, forKey: .king)     // explicit null: "no king yet"
        try c.encode(models, forKey: .models)
        try c.encodeIfPresent(policy_sha256, forKey: .policy_sha256)
        try c.encodeIfPresent(kings, forKey: .kings)
    }

    /// Records `m`, in place of the model's earlier record if it has one.
    mutating func put(_ m: ScoredModel) {
        if let j = models.firstIndex(where: { $0.model.key == m.model.key }) { models[j] = m } else { models.append(m) }
    }

    /// The stored record of a model, if it was ever scored.
    public func scored(_ key: ModelRef.Key) -> ScoredModel? { models.first { $0.model.key == key } }
}

/// One prompt's KL for one model.
public struct PromptScore: Codable, Equatable, Sendable {
    public var prompt_id: String
    public var kl_mean: Double
    public var kl_std: Double
    public var n_tokens: Int
}

/// A model's result in one verdict.
public struct ModelVerdict: Codable, Equatable, Sendable {
    public var uid: Int
    public var hotkey: String?
    public var repo: String
    public var revision: String?
    public var commit: String?
    public var block: Int?
    public var score: ScoreSummary
    /// Why the model cannot get weight, if so: `DISQUALIFIED:<reason>` (check or re-check not ok),
    /// `RECHECK_RETRY` (its re-check failed transiently: not judged this epoch), `NOT_IN_CHECKS`,
    /// `STALE` (the uid's checked model is another one), `TEACHER_IN_DISGUISE` (mean KL ≤ 1e-6),
    /// `COPY_OF:<uid>` (same per-prompt KL as an earlier commitment).
    public var flags: [String]
    public var eligible: Bool
    /// `king` (kept the crown), `new_king`, `dethroned`, `lost`, `no_weight` (flagged), `pending`
    /// (not judged this epoch: its re-check, or the king's check or re-check, was RETRY; not recorded
    /// in the state, so it is planned again).
    public var outcome: ModelOutcome
    /// This model minus the king, prompt by prompt (absent for the king and without a king).
    public var vs_king: PairedComparison?
    public var per_prompt: [PromptScore]
}

/// A model dl-kl could not score, in one verdict (from its scoring-failure record): who (uid,
/// hotkey) and what (repo at commit; the rest of its identity is in its check verdict).
public struct UnscoredModel: Codable, Equatable, Sendable {
    public var uid: Int
    public var hotkey: String?
    public var repo: String
    public var commit: String?
    /// Whose fault: `miner` (the checkpoint's) or `ours` (ours or transient).
    public var fault: ScoringFault
    /// `UNSCORABLE` (the miner's fault: rejected) or `RETRY` (ours: planned again).
    public var reason: ReasonCode
    /// dl-kl's line: what failed.
    public var message: String
    /// `no_weight` (rejected; recorded, never planned again), `pending` (not judged this epoch, not
    /// recorded, planned again), for the king `king` (kept the crown: ours) or `dethroned` (the
    /// miner's fault).
    public var outcome: ModelOutcome
}

/// A scoring-failure record and where it was read ("kl/3.jsonl:1").
public struct SourcedFailure: Sendable {
    public var record: ScoringFailure
    public var place: String
    public init(_ record: ScoringFailure, place: String) { self.record = record; self.place = place }
}

/// One weight entry, as btcli's set-weights takes them.
public struct WeightEntry: Codable, Equatable, Sendable {
    public var uid: Int
    public var weight: Double
}

/// The judge's output (`verdict.json`).
public struct Verdict: Codable, Equatable, Sendable {
    public var format: String
    /// The epoch block (from --block, else the teacher stream's block).
    public var block: Int?
    public var epsilon: Double
    /// The policy judged under (absent: the default policy).
    public var policy_sha256: String? = nil
    public var teacher: TeacherRef?
    /// Prompts every model was scored on (empty continuations dropped), sorted.
    public var prompts: [String]
    public var dropped_prompts: [String]
    public var king_before: KingRecord?
    public var king_after: KingRecord?
    /// The uid that gets weight 1.0 (null: nobody).
    public var winner: Int?
    /// One sentence: why the winner won.
    public var reason: String
    /// Scored models, by uid.
    public var models: [ModelVerdict]
    /// Models whose scoring failed, by uid (absent when none did).
    public var unscored: [UnscoredModel]? = nil
    /// Every uid in the checks, by uid: winner 1.0, others 0.0.
    public var weights: [WeightEntry]
    public var uids: [Int]
    public var values: [Double]
    public var tool: String

    enum CodingKeys: String, CodingKey {
        case format, block, epsilon, policy_sha256, teacher, prompts, dropped_prompts, king_before, king_after, winner, reason,
             models, unscored, weights, uids, values, tool
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(block, forKey: .block)
        try c.encode(epsilon, forKey: .epsilon)
        try c.encodeIfPresent(policy_sha256, forKey: .policy_sha256)
        try c.encode(teacher, forKey: .teacher)
        try c.encode(prompts, forKey: .prompts)
        try c.encode(dropped_prompts, forKey: .dropped_prompts)
        try c.encode(king_before, forKey: .king_before)
        try c.encode(king_after, forKey: .king_after)
        try c.encode(winner, forKey: .winner)
        try c.encode(reason, forKey: .reason)
        try c.encode(models, forKey: .models)
        try c.encodeIfPresent(unscored, forKey: .unscored)
        try c.encode(weights, forKey: .weights)
        try c.encode(uids, forKey: .uids)
        try c.encode(values, forKey: .values)
        try c.encode(tool, forKey: .tool)
    }
}
