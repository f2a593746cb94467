import DistilFormats
import DistilTensors
import Foundation

/// Qwen3.5's text model (transformers' modeling_qwen3_5.py / modeling_qwen3_5_moe.py), the teacher's
/// architecture: layers of Gated DeltaNet linear attention and gated full attention in the pattern
/// `layer_types` gives, every RMSNorm zero-centred ((1 + w) · x / rms), a SwiGLU MLP (qwen3_5) or a
/// mixture of experts with a gated shared expert in every layer (qwen3_5_moe). The attention's
/// q_proj yields [query | gate] per head (a sigmoid output gate), q and k are RMS-normed, and rotary
/// covers the first partial_rotary_factor of each head.
///
/// Both checkpoint layouts: *ForCausalLM (`model.*`) and *ForConditionalGeneration
/// (`model.language_model.*`); the vision tower (`model.visual.*`) and the multi-token-prediction
/// head (`mtp.*`) are not declared, so never read.
///
/// Per layer, under `{prefix}layers.{i}.`:
///     input_layernorm, post_attention_layernorm,
///     self_attn.{q,k,v,o}_proj + self_attn.{q,k}_norm   (full_attention)
///     or linear_attn.{in_proj_qkv,in_proj_z,in_proj_b,in_proj_a,conv1d,dt_bias,A_log,norm,out_proj}   (linear_attention)
///     mlp.{gate,up,down}_proj, or mlp.gate + experts + mlp.shared_expert.* + mlp.shared_expert_gate
enum Qwen35: Architecture {
    static func tensors(_ c: ModelConfig, family: ModelFamily, layout: TensorLayout, _ l: inout TensorList) throws -> ModelTensors {
        guard let h = c.hybrid, h.layerTypes.count == c.layers else {
            throw DistilError("config.json: \(c.modelType) needs layer_types with one entry per layer")
        }
        let moe = family == .qwen35Moe ? h.moe : nil
        if family == .qwen35Moe, moe == nil { throw DistilError("config.json: \(c.modelType) needs its experts (num_experts, …)") }
        if let m = moe { try l.expect(c.layers * MoETensors.count(m)) }
        return try ModelTensors.model(c, layout: layout, &l) { i, p, l in
            let (inputNorm, postNorm) = ModelTensors.norms(p, c, &l)
            let mixer: ModelTensors.LayerTensors.Mixer = h.layerTypes[i] == "full_attention"
                ? .attention(AttentionTensors.declare(p, c, gated: true, biases: c.attentionBias ? .all : .none, qkNorm: true, &l))
                : .deltaNet(DeltaNetTensors.declare(p, h, hidden: c.hiddenSize, &l))
            return .init(inputNorm: inputNorm, postNorm: postNorm, mixer: mixer,
                         feedForward: moe.map { .experts(MoETensors.declare(p + "mlp.", $0, hidden: c.hiddenSize, layout: layout, &l)) }
                            ?? .mlp(MLPTensors.declare(p + "mlp.", width: c.intermediateSize, hidden: c.hiddenSize, &l)))
        }
    }

    static func load(_ c: ModelConfig, _ t: ModelTensors, _ w: WeightStore, _ cx: Compute) throws -> Transformer {
        try Transformer(config: c, tensors: t, weights: w, compute: cx, zeroCentered: true,
                        rotaryDim: Int(Double(c.headDim) * c.hybrid!.partialRotaryFactor) / 2 * 2)
    }
}
