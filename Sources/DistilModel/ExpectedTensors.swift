import DistilFormats
import Foundation

/// The text model's tensors as the config alone implies them, name → shape: what dl-check compares a
/// checkpoint's safetensors headers against before any compute is spent, so a config that lies about
/// the model's size or shapes is rejected rather than found out mid-epoch.
///
/// The list is the architecture's own declaration (`ModelTensors`, written once in Llama.swift,
/// Qwen3MoE.swift, Qwen35.swift and the layer files), the same tree the loader reads the weights
/// through; the shapes are transformers' (ExpectedTensorsTests holds them against checkpoints
/// written by save_pretrained for every architecture and layout).
///
/// - Layout: `model.*` (*ForCausalLM) or `model.language_model.*` (*ForConditionalGeneration), picked
///   by the prefix the checkpoint's names use; MoE experts one by one or fused, per layer, by the names.
/// - `lm_head.weight` is expected iff the embeddings are untied: `tie_word_embeddings` false, or absent
///   (transformers' default is false for every architecture listed here).
/// - Outside the text model a checkpoint may carry only the vision tower (`model.visual.*`) and the
///   multi-token-prediction head (`mtp.*`): counted by dl-check, never cross-checked. Every other
///   tensor is the text model's and must be one of the expected ones.
public struct ExpectedTensors: Sendable {
    /// Tensors under these prefixes are outside the text model (vision tower, MTP head).
    public static let auxiliaryPrefixes = ["model.visual.", "mtp."]
    /// A config implying more tensors than this is refused before anything is listed (no supported
    /// checkpoint comes near: Qwen3.5-35B-A3B stored per expert has about 31,000).
    public static let maxTensors = 1 << 20

    /// "model." or "model.language_model.".
    public let prefix: String
    /// Whether `lm_head.weight` is expected (untied embeddings).
    public let lmHead: Bool
    /// The number of tensors the config implies.
    public var count: Int { specs.count }
    /// The implied parameter count of the text model (`lm_head` included when untied).
    public let parameters: Int64

    let config: ModelConfig
    /// The architecture's declaration, flattened in the loaders' order.
    let specs: [TensorSpec]

    /// `names`: the checkpoint's tensor names, from which the layout (prefix, fused experts) is read.
    /// Throws for an unknown model_type or a config missing what its architecture needs.
    public init<S: Sequence>(config c: ModelConfig, names: S) throws where S.Element == String {
        let layout = TensorLayout(names: names)
        config = c
        specs = try ModelTensors.declare(config: c, layout: layout).1
        prefix = layout.prefix
        lmHead = c.tieWordEmbeddings != true
        parameters = specs.reduce(Int64(0)) { $0.addingSaturating(ExpectedTensors.elements($1.shape)) }
    }

    /// Calls `body` with every expected tensor, in the loaders' order: the embedding, each layer
    /// (norms, attention or DeltaNet, MLP or experts), the final norm, the LM head.
    public func forEach(_ body: (_ name: String, _ shape: [Int]) -> Void) {
        for s in specs { body(s.name, s.shape) }
    }

    /// Every expected tensor, name → shape.
    public var shapes: [String: [Int]] {
        var out: [String: [Int]] = [:]
        out.reserveCapacity(count)
        forEach { out[$0] = $1 }
        return out
    }

    /// Whether a tensor is outside the text model (vision tower, MTP head).
    public static func isAuxiliary(_ name: String) -> Bool { auxiliaryPrefixes.contains { name.hasPrefix($0) } }

    /// Whether a tensor belongs to the text model, i.e. must be one of the expected tensors.
    public static func isTextTensor(_ name: String) -> Bool { !isAuxiliary(name) }

    /// Compares a checkpoint's tensors (name → shape; auxiliary ones are ignored) with the expected
    /// ones: nil when they agree exactly, else the first disagreement in the loaders' order (a missing
    /// tensor, another shape), or else the tensors the config does not explain.
    public func disagreement(with actual: [String: [Int]]) -> TensorDisagreement? {
        var held: Int64 = 0
        var textCount = 0
        for (name, shape) in actual where ExpectedTensors.isTextTensor(name) {
            held = held.addingSaturating(ExpectedTensors.elements(shape))
            textCount += 1
        }
        for spec in specs {
            guard let s = actual[spec.name] else {
                return TensorDisagreement(kind: .missing, tensor: spec.name, expected: spec.shape, actual: nil, unexplained: 0,
                                          impliedParameters: parameters, heldParameters: held, untied: config.tieWordEmbeddings)
            }
            if s != spec.shape {
                return TensorDisagreement(kind: .shape, tensor: spec.name, expected: spec.shape, actual: s, unexplained: 0,
                                          impliedParameters: parameters, heldParameters: held, untied: config.tieWordEmbeddings)
            }
        }
        guard textCount > specs.count else { return nil }
        // Every expected tensor is present, so the expected set is no larger than the checkpoint's.
        let expected = shapes
        let extra = actual.keys.filter { ExpectedTensors.isTextTensor($0) && expected[$0] == nil }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard let first = extra.first else { return nil }
        return TensorDisagreement(kind: .unexplained, tensor: first, expected: nil, actual: actual[first], unexplained: extra.count,
                                  impliedParameters: parameters, heldParameters: held, untied: config.tieWordEmbeddings)
    }

    static func elements(_ shape: [Int]) -> Int64 {
        var n: Int64 = 1
        for d in shape { n = n.multipliedSaturating(Int64(d)) }
        return n
    }
}

/// How a checkpoint's tensors disagree with its config.
public struct TensorDisagreement: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A tensor the config implies is absent.
        case missing
        /// A tensor has another shape than the config implies.
        case shape
        /// Text-model tensors the config does not explain (a hidden layer, a spare matrix).
        case unexplained
    }
    public var kind: Kind
    /// The tensor named in the message (for `unexplained`, the first in bytewise order).
    public var tensor: String
    public var expected: [Int]?
    public var actual: [Int]?
    /// How many tensors the config does not explain (`unexplained` only).
    public var unexplained: Int
    /// The text model's parameters as the config implies them, and as the headers hold them.
    public var impliedParameters: Int64
    public var heldParameters: Int64
    /// The config's tie_word_embeddings (nil: absent), for the message of a missing lm_head.
    public var untied: Bool?

    public init(kind: Kind, tensor: String, expected: [Int]?, actual: [Int]?, unexplained: Int,
                impliedParameters: Int64, heldParameters: Int64, untied: Bool?) {
        self.kind = kind; self.tensor = tensor; self.expected = expected; self.actual = actual; self.unexplained = unexplained
        self.impliedParameters = impliedParameters; self.heldParameters = heldParameters; self.untied = untied
    }

    /// One line with the figures, e.g. "model.layers.0.mlp.up_proj.weight has shape [128, 64], the
    /// config implies [64, 64]; the config implies 1.2M text-model parameters, the headers hold 1.3M".
    public var message: String {
        var s: String
        switch kind {
        case .missing where tensor == "lm_head.weight":
            s = "no lm_head.weight while the embeddings are untied (tie_word_embeddings "
                + (untied == nil ? "absent: transformers' default is false)" : "is false)")
        case .missing:
            s = "missing tensor \(tensor) \(fmt(expected)), which the config implies"
        case .shape:
            s = "\(tensor) has shape \(fmt(actual)), the config implies \(fmt(expected))"
        case .unexplained:
            s = "\(unexplained) tensor(s) the config does not explain, e.g. \(tensor) \(fmt(actual))"
        }
        if impliedParameters != heldParameters {
            s += "; the config implies \(impliedParameters) text-model parameters, the headers hold \(heldParameters)"
        }
        return s
    }

    func fmt(_ s: [Int]?) -> String { s.map { "[" + $0.map(String.init).joined(separator: ", ") + "]" } ?? "[]" }
}

fileprivate extension Int64 {
    func addingSaturating(_ o: Int64) -> Int64 {
        let (r, v) = addingReportingOverflow(o)
        return v ? .max : r
    }
    func multipliedSaturating(_ o: Int64) -> Int64 {
        let (r, v) = multipliedReportingOverflow(by: o)
        return v ? (self < 0) != (o < 0) ? .min : .max : r
    }
}
