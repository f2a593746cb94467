import DistilFormats
import Foundation

/// The text model's tensors as the config alone implies them, name → shape: what dl-check compares a
/// checkpoint's safetensors headers against before any compute is spent, so a config that lies about
/// the model's size or shapes is rejected rather than found out mid-epoch.
///
/// The shapes are transformers' (modeling_llama.py, modeling_qwen2.py, modeling_qwen3.py,
/// modeling_qwen3_moe.py, modeling_qwen3_5.py, modeling_qwen3_5_moe.py), which are also the ones the
/// engine's loaders read; ExpectedTensorsTests holds them against checkpoints written by
/// transformers' save_pretrained for every architecture and layout.
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

    typealias Family = ModelFamily

    /// "model." or "model.language_model.".
    public let prefix: String
    /// Whether `lm_head.weight` is expected (untied embeddings).
    public let lmHead: Bool
    /// The number of tensors the config implies.
    public let count: Int
    /// The implied parameter count of the text model (`lm_head` included when untied).
    public let parameters: Int64

    let config: ModelConfig
    let family: Family
    /// Layer prefixes ("…layers.i.mlp.") whose experts are stored fused.
    let fusedExperts: Set<String>

    /// `names`: the checkpoint's tensor names, from which the layout (prefix, fused experts) is read.
    /// Throws for an unknown model_type or a config missing what its architecture needs.
    public init<S: Sequence>(config c: ModelConfig, names: S) throws where S.Element == String {
        guard let f = c.family else {
            throw DistilError("config.json: no tensor list for model_type \(c.modelType) (\(c.architecture))")
        }
        family = f
        switch family {
        case .qwen35, .qwen35Moe:
            guard let h = c.hybrid, h.layerTypes.count == c.layers else {
                throw DistilError("config.json: \(c.modelType) needs layer_types with one entry per layer")
            }
            if family == .qwen35Moe, h.moe == nil { throw DistilError("config.json: \(c.modelType) needs its experts (num_experts, …)") }
        case .qwen3Moe:
            guard c.sparse != nil else { throw DistilError("config.json: qwen3_moe needs its experts (num_experts, …)") }
        case .llama, .qwen2, .qwen3:
            break
        }
        config = c
        var conditional = false
        var fused = Set<String>()
        for n in names {
            if n.hasPrefix("model.language_model.") { conditional = true }
            if n.hasSuffix(".experts.gate_up_proj") { fused.insert(String(n.dropLast("experts.gate_up_proj".count))) }
        }
        prefix = conditional ? "model.language_model." : "model."
        fusedExperts = fused
        lmHead = c.tieWordEmbeddings != true
        var n = 0
        var p: Int64 = 0
        var tooMany = false
        ExpectedTensors.walk(config: c, family: family, prefix: prefix, lmHead: lmHead, fused: fused) { _, shape in
            n += 1
            p = p.addingSaturating(ExpectedTensors.elements(shape))
            if n > ExpectedTensors.maxTensors { tooMany = true; return false }
            return true
        }
        if tooMany { throw DistilError("config.json: the config implies more than \(ExpectedTensors.maxTensors) tensors") }
        count = n
        parameters = p
    }

    /// Calls `body` with every expected tensor, in the loaders' order: the embedding, each layer
    /// (norms, attention or DeltaNet, MLP or experts), the final norm, the LM head.
    public func forEach(_ body: (_ name: String, _ shape: [Int]) -> Void) {
        withoutActuallyEscaping(body) { body in
            ExpectedTensors.walk(config: config, family: family, prefix: prefix, lmHead: lmHead, fused: fusedExperts) {
                body($0(), $1); return true
            }
        }
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
        var found: TensorDisagreement?
        var matched = 0
        ExpectedTensors.walk(config: config, family: family, prefix: prefix, lmHead: lmHead, fused: fusedExperts) { name, shape in
            let n = name()
            guard let s = actual[n] else {
                found = TensorDisagreement(kind: .missing, tensor: n, expected: shape, actual: nil, unexplained: 0,
                                           impliedParameters: parameters, heldParameters: held, untied: config.tieWordEmbeddings)
                return false
            }
            if s != shape {
                found = TensorDisagreement(kind: .shape, tensor: n, expected: shape, actual: s, unexplained: 0,
                                           impliedParameters: parameters, heldParameters: held, untied: config.tieWordEmbeddings)
                return false
            }
            matched += 1
            return true
        }
        if let found { return found }
        guard textCount > matched else { return nil }
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

    // MARK: the tensor list

    /// Emits (name, shape) for every expected tensor; the name is built only when asked for. Stops
    /// when `emit` returns false.
    static func walk(config c: ModelConfig, family: Family, prefix P: String, lmHead: Bool, fused: Set<String>,
                     _ emit: @escaping (_ name: () -> String, _ shape: [Int]) -> Bool) {
        let H = c.hiddenSize, V = c.vocabSize, hd = c.headDim
        let qd = c.heads * hd, kvd = c.kvHeads * hd, I = c.intermediateSize
        var going = true
        func e(_ name: @autoclosure () -> String, _ shape: [Int]) {
            if going { going = emit(name, shape) }
        }
        /// q/k/v/o projections; `gated`: q_proj also yields the output gate (Qwen3.5), twice the rows.
        func attention(_ p: String, gated: Bool, qkNorm: Bool) {
            let q = gated ? 2 * qd : qd
            e(p + "self_attn.q_proj.weight", [q, H])
            e(p + "self_attn.k_proj.weight", [kvd, H])
            e(p + "self_attn.v_proj.weight", [kvd, H])
            e(p + "self_attn.o_proj.weight", [H, qd])
            switch family {
            case .qwen2:   // q/k/v biases always, o_proj without
                e(p + "self_attn.q_proj.bias", [qd]); e(p + "self_attn.k_proj.bias", [kvd]); e(p + "self_attn.v_proj.bias", [kvd])
            default:       // attention_bias: a bias on all four
                if c.attentionBias {
                    e(p + "self_attn.q_proj.bias", [q]); e(p + "self_attn.k_proj.bias", [kvd])
                    e(p + "self_attn.v_proj.bias", [kvd]); e(p + "self_attn.o_proj.bias", [H])
                }
            }
            if qkNorm {
                e(p + "self_attn.q_norm.weight", [hd])
                e(p + "self_attn.k_norm.weight", [hd])
            }
        }
        func mlp(_ p: String, _ width: Int) {
            e(p + "gate_proj.weight", [width, H]); e(p + "up_proj.weight", [width, H]); e(p + "down_proj.weight", [H, width])
        }
        /// Router, experts (fused or one by one) and, for Qwen3.5-MoE, the gated shared expert.
        func experts(_ p: String, _ m: MoEConfig, shared: Bool) {
            let E = m.experts, Ie = m.intermediate
            e(p + "gate.weight", [E, H])
            if fused.contains(p) {
                e(p + "experts.gate_up_proj", [E, 2 * Ie, H])
                e(p + "experts.down_proj", [E, H, Ie])
            } else {
                for x in 0..<E where going { mlp(p + "experts.\(x).", Ie) }
            }
            if shared {
                mlp(p + "shared_expert.", m.sharedIntermediate)
                e(p + "shared_expert_gate.weight", [1, H])
            }
        }
        /// Gated DeltaNet (linear attention).
        func deltaNet(_ p: String, _ h: HybridConfig) {
            let keyDim = h.linearKeyHeads * h.linearKeyDim, valueDim = h.linearValueHeads * h.linearValueDim
            let convDim = 2 * keyDim + valueDim
            e(p + "linear_attn.in_proj_qkv.weight", [convDim, H])
            e(p + "linear_attn.in_proj_z.weight", [valueDim, H])
            e(p + "linear_attn.in_proj_b.weight", [h.linearValueHeads, H])
            e(p + "linear_attn.in_proj_a.weight", [h.linearValueHeads, H])
            e(p + "linear_attn.conv1d.weight", [convDim, 1, h.convKernel])   // depthwise, no bias
            e(p + "linear_attn.dt_bias", [h.linearValueHeads])
            e(p + "linear_attn.A_log", [h.linearValueHeads])
            e(p + "linear_attn.norm.weight", [h.linearValueDim])
            e(p + "linear_attn.out_proj.weight", [H, valueDim])
        }

        e(P + "embed_tokens.weight", [V, H])
        for i in 0..<c.layers where going {
            let p = "\(P)layers.\(i)."
            e(p + "input_layernorm.weight", [H])
            e(p + "post_attention_layernorm.weight", [H])
            switch family {
            case .llama:
                attention(p, gated: false, qkNorm: false); mlp(p + "mlp.", I)
            case .qwen2:
                attention(p, gated: false, qkNorm: false); mlp(p + "mlp.", I)
            case .qwen3:
                attention(p, gated: false, qkNorm: true); mlp(p + "mlp.", I)
            case .qwen3Moe:
                attention(p, gated: false, qkNorm: true)
                if let s = c.sparse, s.isSparse(i) { experts(p + "mlp.", s.moe, shared: false) } else { mlp(p + "mlp.", I) }
            case .qwen35, .qwen35Moe:
                let h = c.hybrid!   // checked in init
                if h.layerTypes[i] == "full_attention" { attention(p, gated: true, qkNorm: true) } else { deltaNet(p, h) }
                if family == .qwen35Moe, let m = h.moe { experts(p + "mlp.", m, shared: true) } else { mlp(p + "mlp.", I) }
            }
        }
        e(P + "norm.weight", [H])
        if lmHead { e("lm_head.weight", [V, H]) }
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
