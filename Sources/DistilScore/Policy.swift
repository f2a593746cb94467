import DistilFormats
import Foundation

/// The rules of the competition as data (`dl-judge --policy FILE`, docs/FORMATS.md "Judge policy"):
/// the epoch's shape (prompts, continuation length, sampling, the limits a model must meet) and
/// the judge's decisions (how a challenger dethrones the king, who gets the weight).
///
/// The default is the README's rules. A policy is identified by the SHA-256 of its canonical bytes
/// (every field written, sorted keys, no spaces), so a file that states only some fields and one
/// that states all of them with the same values are the same policy. The verdict and the state
/// record that hash, except under the default policy, whose verdicts and states keep the bytes
/// they always had: no `policy_sha256` means the default (`JudgePolicy.defaultSHA256`).
public struct JudgePolicy: Codable, Equatable, Sendable {
    public static let format = "distil-policy/1"

    /// How a challenger takes the crown.
    public enum Dethrone: Equatable, Sendable {
        /// Mean KL < (1 − epsilon) × the king's, on the same prompts.
        case epsilon(Double)
        /// A one-sided paired t-test on the per-prompt KL: the challenger's mean is below
        /// (1 − margin) × the king's with p < alpha, over at least `minPrompts` prompts.
        case pairedT(alpha: Double, minPrompts: Int, margin: Double)
    }

    /// Who gets the weight.
    public enum Weights: Equatable, Sendable {
        /// The king gets 1.0.
        case winnerTakesAll
        /// Split evenly over the king and the kings before it, up to `kings` of them, each still
        /// registered with a passing check this epoch.
        case lastKings(Int)
    }

    public var prompts = 40
    public var maxNewTokens = 512
    /// 0 is greedy.
    public var temperature = 0.0
    public var maxParams: Int64 = 5_300_000_000
    public var vocabSize = 248_320
    public var dethrone = Dethrone.epsilon(0.01)
    public var weights = Weights.winnerTakesAll

    public init() {}

    /// The README's rules.
    public static let `default` = JudgePolicy()
    public static let defaultSHA256 = JudgePolicy.default.sha256

    /// The relative margin that also decides copies (two models whose per-prompt KL vectors are
    /// nearly parallel are copies when their means are this close): the epsilon rule's epsilon,
    /// a paired test's margin when it has one, else 1%.
    public var epsilon: Double {
        switch dethrone {
        case .epsilon(let e): return e
        case .pairedT(_, _, let margin): return margin > 0 ? margin : 0.01
        }
    }

    /// The epoch's shape as NAME=VALUE pairs (`dl-judge policy --fields`, read by pipelines/epoch.sh).
    public var shapeFields: [(String, String)] {
        [("prompts", "\(prompts)"), ("max_new_tokens", "\(maxNewTokens)"), ("temperature", "\(temperature)"),
         ("max_params", "\(maxParams)"), ("vocab_size", "\(vocabSize)")]
    }

    /// The canonical bytes: every field, sorted keys, compact.
    public var canonicalBytes: [UInt8] { (try? encodeJSON(self)) ?? [] }
    public var sha256: String { Hashing.sha256Hex(canonicalBytes) }
    public var isDefault: Bool { self == .default }

    /// Reads a policy file: unknown fields are refused (a misspelt rule must not fall back to a
    /// default silently), absent ones take the default's value.
    public static func load(path: String) throws -> JudgePolicy {
        let bytes = try readFile(path, limit: 1 << 20)
        let p: JudgePolicy
        do { p = try JSONDecoder().decode(JudgePolicy.self, from: Data(bytes)) } catch let e as DistilError {
            throw DistilError.input(path, e.message)
        } catch let DecodingError.dataCorrupted(c) {
            throw DistilError.input(path, "not a policy: \(c.debugDescription)")
        } catch let DecodingError.typeMismatch(_, c), let DecodingError.valueNotFound(_, c) {
            throw DistilError.input(path, "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)")
        } catch {
            throw DistilError.input(path, "not a policy: \(error)")
        }
        try p.validate(path)
        return p
    }

    func validate(_ name: String) throws {
        func bad(_ what: String) -> DistilError { DistilError.input(name, what) }
        guard (1...100_000).contains(prompts) else { throw bad("prompts must be in 1...100000") }
        guard (0...32768).contains(maxNewTokens) else { throw bad("max_new_tokens must be in 0...32768") }
        guard temperature >= 0, temperature.isFinite else { throw bad("temperature must be >= 0") }
        guard maxParams > 0, vocabSize > 0 else { throw bad("max_params and vocab_size must be positive") }
        switch dethrone {
        case .epsilon(let e): guard e >= 0, e < 1 else { throw bad("dethrone.epsilon must be in [0, 1)") }
        case .pairedT(let a, let n, let m):
            guard a > 0, a < 1 else { throw bad("dethrone.alpha must be in (0, 1)") }
            guard n >= 2 else { throw bad("dethrone.min_prompts must be >= 2") }
            guard m >= 0, m < 1 else { throw bad("dethrone.margin must be in [0, 1)") }
        }
        if case .lastKings(let k) = weights, !(1...256).contains(k) { throw bad("weights.kings must be in 1...256") }
    }

    // MARK: coding

    enum Keys: String, CodingKey, CaseIterable {
        case format, prompts, max_new_tokens, temperature, max_params, vocab_size, dethrone, weights
    }
    enum RuleKeys: String, CodingKey, CaseIterable { case rule, epsilon, alpha, min_prompts, margin, kings }

    public init(from decoder: Decoder) throws {
        let d = JudgePolicy.default
        let all = try decoder.container(keyedBy: AnyKey.self)
        for k in all.allKeys where Keys(rawValue: k.stringValue) == nil { throw DistilError("unknown field '\(k.stringValue)'") }
        let c = try decoder.container(keyedBy: Keys.self)
        let format = try c.decodeIfPresent(String.self, forKey: .format) ?? JudgePolicy.format
        guard format == JudgePolicy.format else { throw DistilError("format '\(format)' is not \(JudgePolicy.format)") }
        prompts = try c.decodeIfPresent(Int.self, forKey: .prompts) ?? d.prompts
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .max_new_tokens) ?? d.maxNewTokens
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? d.temperature
        maxParams = try c.decodeIfPresent(Int64.self, forKey: .max_params) ?? d.maxParams
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocab_size) ?? d.vocabSize
        if c.contains(.dethrone) {
            let r = try c.nestedContainer(keyedBy: RuleKeys.self, forKey: .dethrone)
            let keys = try c.nestedContainer(keyedBy: AnyKey.self, forKey: .dethrone)
            switch try r.decode(String.self, forKey: .rule) {
            case "epsilon":
                try JudgePolicy.onlyKnown(keys, "dethrone", allowed: ["rule", "epsilon"])
                dethrone = .epsilon(try r.decodeIfPresent(Double.self, forKey: .epsilon) ?? 0.01)
            case "paired_t":
                try JudgePolicy.onlyKnown(keys, "dethrone", allowed: ["rule", "alpha", "min_prompts", "margin"])
                dethrone = .pairedT(alpha: try r.decodeIfPresent(Double.self, forKey: .alpha) ?? 0.05,
                                    minPrompts: try r.decodeIfPresent(Int.self, forKey: .min_prompts) ?? 20,
                                    margin: try r.decodeIfPresent(Double.self, forKey: .margin) ?? 0)
            case let other: throw DistilError("dethrone.rule '\(other)' is not epsilon or paired_t")
            }
        }
        if c.contains(.weights) {
            let r = try c.nestedContainer(keyedBy: RuleKeys.self, forKey: .weights)
            switch try r.decode(String.self, forKey: .rule) {
            case "winner_takes_all":
                try JudgePolicy.onlyKnown(try c.nestedContainer(keyedBy: AnyKey.self, forKey: .weights), "weights", allowed: ["rule"])
                weights = .winnerTakesAll
            case "last_kings":
                try JudgePolicy.onlyKnown(try c.nestedContainer(keyedBy: AnyKey.self, forKey: .weights), "weights", allowed: ["rule", "kings"])
                weights = .lastKings(try r.decode(Int.self, forKey: .kings))
            case let other: throw DistilError("weights.rule '\(other)' is not winner_takes_all or last_kings")
            }
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func onlyKnown(_ c: KeyedDecodingContainer<AnyKey>, _ what: String, allowed: Set<String>) throws {
        for k in c.allKeys where !allowed.contains(k.stringValue) { throw DistilError("\(what): unknown field '\(k.stringValue)'") }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(JudgePolicy.format, forKey: .format)
        try c.encode(prompts, forKey: .prompts)
        try c.encode(maxNewTokens, forKey: .max_new_tokens)
        try c.encode(temperature, forKey: .temperature)
        try c.encode(maxParams, forKey: .max_params)
        try c.encode(vocabSize, forKey: .vocab_size)
        var r = c.nestedContainer(keyedBy: RuleKeys.self, forKey: .dethrone)
        switch dethrone {
        case .epsilon(let e):
            try r.encode("epsilon", forKey: .rule)
            try r.encode(e, forKey: .epsilon)
        case .pairedT(let a, let n, let m):
            try r.encode("paired_t", forKey: .rule)
            try r.encode(a, forKey: .alpha)
            try r.encode(n, forKey: .min_prompts)
            try r.encode(m, forKey: .margin)
        }
        var w = c.nestedContainer(keyedBy: RuleKeys.self, forKey: .weights)
        switch weights {
        case .winnerTakesAll: try w.encode("winner_takes_all", forKey: .rule)
        case .lastKings(let k):
            try w.encode("last_kings", forKey: .rule)
            try w.encode(k, forKey: .kings)
        }
    }
}
