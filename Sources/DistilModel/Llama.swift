import DistilFormats
import DistilTensors
import Foundation

/// The Llama-family dense decoder (transformers' modeling_llama.py, modeling_qwen2.py,
/// modeling_qwen3.py): pre-norm attention with rotary positions (rotate-half, Llama's scaling
/// variants), grouped-query heads and a SwiGLU MLP in every layer.
///
/// - Llama: plain projections.
/// - Qwen2: biases on q, k and v (not o).
/// - Qwen3: per-head RMSNorm of queries and keys before the rotation.
///
/// Per layer, under `model.layers.{i}.`:
///     input_layernorm, self_attn.{q,k,v,o}_proj (+ biases, q_norm/k_norm), post_attention_layernorm,
///     mlp.{gate,up,down}_proj
enum Llama: Architecture {
    static func tensors(_ c: ModelConfig, family: ModelFamily, layout: TensorLayout, _ l: inout TensorList) throws -> ModelTensors {
        try ModelTensors.model(c, layout: layout, &l) { _, p, l in
            let (inputNorm, postNorm) = ModelTensors.norms(p, c, &l)
            return .init(inputNorm: inputNorm, postNorm: postNorm,
                         mixer: .attention(attention(p, c, family: family, &l)),
                         feedForward: .mlp(MLPTensors.declare(p + "mlp.", width: c.intermediateSize, hidden: c.hiddenSize, &l)))
        }
    }

    /// The attention block of the family (also Qwen3-MoE's, which is Qwen3's).
    static func attention(_ p: String, _ c: ModelConfig, family: ModelFamily, _ l: inout TensorList) -> AttentionTensors {
        let biases: AttentionTensors.Biases = family == .qwen2 ? .qkv : c.attentionBias ? .all : .none
        return AttentionTensors.declare(p, c, gated: false, biases: biases, qkNorm: family == .qwen3 || family == .qwen3Moe, &l)
    }
}
