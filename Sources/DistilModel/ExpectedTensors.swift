import DistilFormats
import Foundation

/// The tensors of the text model the engine loads, name → shape, derived from the config alone: what
/// dl-check compares a checkpoint's safetensors headers against before any compute is spent, so a
/// config that lies about the model's size or shapes is rejected rather than found out mid-epoch.
/// Mirrors the loaders (DenseTransformer, HybridTransformer, MoEBlock); tested against checkpoints
/// saved by transformers for every architecture.
public struct ExpectedTensors: Sendable {
    /// "model." (*ForCausalLM) or "model.language_model." (*ForConditionalGeneration).
    public let prefix: String
    public let shapes: [String: [Int]]
    /// lm_head.weight may be present or absent (tie_word_embeddings not given).
    public let optionalHead: Bool

    /// The implied parameter count of the text model (lm_head counted when `withHead`).
    public func parameters(withHead: Bool) -> Int64 {
        var n: Int64 = 0
        for (name, s) in shapes where name != "lm_head.weight" || withHead {
            n += s.reduce(Int64(1)) { $0 * Int64($1) }
        }
        if optionalHead && withHead, shapes["lm_head.weight"] == nil, let e = shapes[prefix + "embed_tokens.weight"] {
            n += e.reduce(Int64(1)) { $0 * Int64($1) }
        }
        return n
    }

    /// Whether a tensor belongs to the text model of a checkpoint with this prefix (the vision tower
    /// `model.visual.*` and the MTP head `mtp.*` do not; they are counted, not cross-checked).
    public func isTextTensor(_ name: String) -> Bool {
        name == "lm_head.weight" || (name.hasPrefix(prefix) && !name.hasPrefix("model.visual."))
    }

    /// `names`: the checkpoint's tensor names (the layout — prefix, fused experts — is read from them).
    public init(config c: ModelConfig, names: Set<String>) {
        let P = names.contains("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        prefix = P
        let H = c.hiddenSize, V = c.vocabSize, hd = c.headDim, qd = c.heads * hd, kvd = c.kvHeads * hd, I = c.intermediateSize
        var t: [String: [Int]] = [P + "embed_tokens.weight": [V, H], P + "norm.weight": [H]]
        switch c.tieWordEmbeddings {
        case .some(false): t["lm_head.weight"] = [V, H]
        case .some(true): break
        case .none: if names.contains("lm_head.weight") { t["lm_head.weight"] = [V, H] }
        }
        optionalHead = c.tieWordEmbeddings == nil

        func moe(_ p: String, _ m: MoEConfig) {
            t[p + "gate.weight"] = [m.experts, H]
            if names.contains(p + "experts.gate_up_proj") {
                t[p + "experts.gate_up_proj"] = [m.experts, 2 * m.intermediate, H]
                t[p + "experts.down_proj"] = [m.experts, H, m.intermediate]
            } else {
                for e in 0..<m.experts {
                    t[p + "experts.\(e).gate_proj.weight"] = [m.intermediate, H]
                    t[p + "experts.\(e).up_proj.weight"] = [m.intermediate, H]
                    t[p + "experts.\(e).down_proj.weight"] = [H, m.intermediate]
                }
            }
            if m.sharedIntermediate > 0 {
                let S = m.sharedIntermediate
                t[p + "shared_expert.gate_proj.weight"] = [S, H]
                t[p + "shared_expert.up_proj.weight"] = [S, H]
                t[p + "shared_expert.down_proj.weight"] = [H, S]
                t[p + "shared_expert_gate.weight"] = [1, H]
            }
        }
        func mlp(_ p: String) {
            t[p + "gate_proj.weight"] = [I, H]; t[p + "up_proj.weight"] = [I, H]; t[p + "down_proj.weight"] = [H, I]
        }

        for i in 0..<c.layers {
            let p = "\(P)layers.\(i)."
            t[p + "input_layernorm.weight"] = [H]
            t[p + "post_attention_layernorm.weight"] = [H]
            if let h = c.hybrid {
                if let m = h.moe { moe(p + "mlp.", m) } else { mlp(p + "mlp.") }
                if h.layerTypes[i] == "full_attention" {
                    t[p + "self_attn.q_proj.weight"] = [2 * qd, H]
                    t[p + "self_attn.k_proj.weight"] = [kvd, H]
                    t[p + "self_attn.v_proj.weight"] = [kvd, H]
                    t[p + "self_attn.o_proj.weight"] = [H, qd]
                    t[p + "self_attn.q_norm.weight"] = [hd]
                    t[p + "self_attn.k_norm.weight"] = [hd]
                } else {
                    let q = p + "linear_attn.", keyDim = h.linearKeyHeads * h.linearKeyDim
                    let valueDim = h.linearValueHeads * h.linearValueDim, convDim = 2 * keyDim + valueDim
                    t[q + "in_proj_qkv.weight"] = [convDim, H]
                    t[q + "in_proj_z.weight"] = [valueDim, H]
                    t[q + "in_proj_b.weight"] = [h.linearValueHeads, H]
                    t[q + "in_proj_a.weight"] = [h.linearValueHeads, H]
                    t[q + "conv1d.weight"] = [convDim, 1, h.convKernel]
                    t[q + "dt_bias"] = [h.linearValueHeads]
                    t[q + "A_log"] = [h.linearValueHeads]
                    t[q + "norm.weight"] = [h.linearValueDim]
                    t[q + "out_proj.weight"] = [H, valueDim]
                }
            } else {
                t[p + "self_attn.q_proj.weight"] = [qd, H]
                t[p + "self_attn.k_proj.weight"] = [kvd, H]
                t[p + "self_attn.v_proj.weight"] = [kvd, H]
                t[p + "self_attn.o_proj.weight"] = [H, qd]
                if c.attentionBias {   // Qwen2: q/k/v biases (the only biased attention the engine runs)
                    t[p + "self_attn.q_proj.bias"] = [qd]
                    t[p + "self_attn.k_proj.bias"] = [kvd]
                    t[p + "self_attn.v_proj.bias"] = [kvd]
                }
                if c.modelType == "qwen3" || c.modelType == "qwen3_moe" {
                    t[p + "self_attn.q_norm.weight"] = [hd]
                    t[p + "self_attn.k_norm.weight"] = [hd]
                }
                if let s = c.sparse, s.isSparse(i) { moe(p + "mlp.", s.moe) } else { mlp(p + "mlp.") }
            }
        }
        shapes = t
    }

    /// Compares a checkpoint's text-model tensors with the expected ones: nil when they agree, else
    /// what disagrees first (a missing tensor, a shape, a tensor the config does not explain).
    public func disagreement(with actual: [String: [Int]]) -> String? {
        for name in shapes.keys.sorted() {
            guard let s = actual[name] else { return "missing tensor \(name), which the config implies" }
            if s != shapes[name]! { return "\(name) has shape \(s), the config implies \(shapes[name]!)" }
        }
        let extra = actual.keys.filter { isTextTensor($0) && shapes[$0] == nil }.sorted()
        if let first = extra.first {
            var held: Int64 = 0
            for (n, s) in actual where isTextTensor(n) { held += s.reduce(Int64(1)) { $0 * Int64($1) } }
            return "the config implies \(parameters(withHead: true)) text-model parameters, the headers hold \(held): "
                + "\(extra.count) tensor(s) the config does not explain, e.g. \(first)"
        }
        return nil
    }
}
