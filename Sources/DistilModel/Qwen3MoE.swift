import DistilFormats
import DistilTensors
import Foundation

/// Qwen3-MoE (transformers' modeling_qwen3_moe.py): Qwen3's attention (q/k RMSNorm, no biases) and,
/// in its sparse layers, a mixture of experts without a shared expert (top-k probabilities
/// renormalised only when norm_topk_prob); the other layers (mlp_only_layers, decoder_sparse_step)
/// keep a dense SwiGLU MLP.
///
/// Per layer, under `model.layers.{i}.`:
///     input_layernorm, self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm, post_attention_layernorm,
///     mlp.gate + mlp.experts.{e}.{gate,up,down}_proj (or fused mlp.experts.{gate_up,down}_proj)
///     — or, dense, mlp.{gate,up,down}_proj
enum Qwen3MoE: Architecture {
    static func tensors(_ c: ModelConfig, family: ModelFamily, layout: TensorLayout, _ l: inout TensorList) throws -> ModelTensors {
        guard let s = c.sparse else { throw DistilError("config.json: qwen3_moe needs its experts (num_experts, …)") }
        try l.expect((0..<c.layers).filter(s.isSparse).count * MoETensors.count(s.moe))
        return try ModelTensors.model(c, layout: layout, &l) { i, p, l in
            let (inputNorm, postNorm) = ModelTensors.norms(p, c, &l)
            let attention = Llama.attention(p, c, family: .qwen3Moe, &l)
            return .init(inputNorm: inputNorm, postNorm: postNorm, mixer: .attention(attention),
                         feedForward: s.isSparse(i) ? .experts(MoETensors.declare(p + "mlp.", s.moe, hidden: c.hiddenSize, layout: layout, &l))
                                                    : .mlp(MLPTensors.declare(p + "mlp.", width: c.intermediateSize, hidden: c.hiddenSize, &l)))
        }
    }
}
