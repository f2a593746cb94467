import DistilFormats
import Foundation

/// The fields of config.json the engine needs, read from the top level or from `text_config`
/// (multimodal checkpoints), with every size bounded before anything is allocated.
public struct ModelConfig: Sendable {
    public var architecture: String
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool?
    public var attentionBias: Bool
    /// Qwen3.5 hybrid fields (nil for the dense Llama family).
    public var hybrid: HybridConfig?
    /// Qwen3-MoE's sparse layers (nil for every other architecture).
    public var sparse: SparseConfig?
    /// Rotary scaling (Llama's variants); `.none` for plain rotary.
    public var ropeScaling: RopeScaling = .none
    public var maxPositionEmbeddings: Int?

    /// The experts of the sparse layers (Qwen3-MoE) or of every layer (Qwen3.5-MoE); nil: dense.
    public var moe: MoEConfig? { hybrid?.moe ?? sparse?.moe }

    /// The architecture family of `modelType` (nil: not one the engine runs).
    public var family: ModelFamily? { ModelFamily(modelType: modelType) }

    /// `directory`/config.json, read within `ModelDirectory`'s bound.
    public static func load(directory: String) throws -> ModelConfig {
        try parse(try ModelDirectory(directory).jsonObject("config.json"), path: directory + "/config.json")
    }

    /// A config.json already parsed into `top`; errors name `path`.
    public static func parse(_ top: [String: Any], path: String) throws -> ModelConfig {
        var c = top
        if let text = top["text_config"] as? [String: Any] { for (k, v) in text { c[k] = v } }
        let arch = (top["architectures"] as? [String])?.first ?? "unknown"
        let mtype = (c["model_type"] as? String) ?? (top["model_type"] as? String) ?? "unknown"
        guard let family = ModelFamily(modelType: mtype) else {
            throw DistilError.input(path, "unsupported architecture \(arch) (model_type \(mtype)); the engine runs \(ModelFamily.classNames.joined(separator: ", "))")
        }
        let scaling = try RopeScaling.parse(c, path: path, architecture: arch)
        // Biases the loaders do not read (Llama's attention_bias puts one on o_proj too; mlp_bias) are refused, never ignored.
        if family != .qwen2, (c["attention_bias"] as? NSNumber)?.boolValue == true {
            throw DistilError.input(path, "unsupported architecture \(arch): attention_bias is only run for qwen2 (q/k/v biases)")
        }
        if (c["mlp_bias"] as? NSNumber)?.boolValue == true {
            throw DistilError.input(path, "unsupported architecture \(arch): mlp_bias is not implemented")
        }
        if (c["use_sliding_window"] as? NSNumber)?.boolValue == true {
            throw DistilError.input(path, "unsupported architecture \(arch): sliding-window attention (use_sliding_window) is not implemented")
        }
        if c["quantization_config"] != nil { throw DistilError.input(path, "quantized checkpoints are not run") }
        // Every figure the engine uses is checked here, so dl-check (which parses with this) refuses
        // by name what the engine would refuse or could not compute: an integer must be one (4.5 heads
        // is not truncated to 4), a real number finite and in range.
        func int(_ k: String, _ range: ClosedRange<Int>, default d: Int? = nil) throws -> Int {
            guard let v = c[k] else {
                if let d { return d }
                throw DistilError.input(path, "missing \(k)")
            }
            guard let i = integer(v), range.contains(i) else {
                throw DistilError.input(path, "\(k) = \(v) is not an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return i
        }
        func real(_ k: String, in c: [String: Any], _ ok: (Double) -> Bool, _ rule: String, default d: Double) throws -> Double {
            guard let v = c[k] else { return d }
            guard !isBool(v), let x = (v as? NSNumber)?.doubleValue, x.isFinite, ok(x) else {
                throw DistilError.input(path, "\(k) = \(v) is not a number \(rule)")
            }
            return x
        }
        let hidden = try int("hidden_size", 1...65_536)
        let heads = try int("num_attention_heads", 1...1024)
        let kv = try int("num_key_value_heads", 1...1024, default: heads)
        guard heads % kv == 0 else { throw DistilError.input(path, "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kv)") }
        if c["head_dim"] == nil, hidden % heads != 0 {
            throw DistilError.input(path, "hidden_size \(hidden) is not a multiple of num_attention_heads \(heads) (and no head_dim)")
        }
        let headDim = try int("head_dim", 1...1024, default: hidden / heads)
        // rope_theta below 1 inverts the frequencies' order; far above 1e12 they vanish.
        var theta = try real("rope_theta", in: c, { $0 > 1 && $0 <= 1e12 }, "in (1, 1e12]", default: 10_000)
        if let rp = c["rope_parameters"] as? [String: Any] { theta = try real("rope_theta", in: rp, { $0 > 1 && $0 <= 1e12 }, "in (1, 1e12]", default: theta) }
        let maxPos: Int? = c["max_position_embeddings"] == nil ? nil : try int("max_position_embeddings", 1...(1 << 24))
        let eps = try real("rms_norm_eps", in: c, { $0 > 0 && $0 < 1 }, "in (0, 1)", default: 1e-6)
        if case .dynamic = scaling, maxPos == nil {
            throw DistilError.input(path, "unsupported architecture \(arch): dynamic rope scaling without max_position_embeddings")
        }
        var hybrid: HybridConfig?
        if family == .qwen35 || family == .qwen35Moe {
            guard let types = c["layer_types"] as? [String], types.count == integer(c["num_hidden_layers"] as Any) else {
                throw DistilError.input(path, "layer_types must list one type per layer")
            }
            for t in types where t != "linear_attention" && t != "full_attention" {
                throw DistilError.input(path, "unsupported layer type \(t)")
            }
            let rp = (c["rope_parameters"] as? [String: Any]) ?? [:]
            let factor = try real("partial_rotary_factor", in: rp, { $0 > 0 && $0 <= 1 }, "in (0, 1]",
                                  default: try real("partial_rotary_factor", in: c, { $0 > 0 && $0 <= 1 }, "in (0, 1]", default: 1))
            guard Int(Double(headDim) * factor) / 2 * 2 >= 2 else {
                throw DistilError.input(path, "partial_rotary_factor \(factor) rotates fewer than 2 of the head's \(headDim) dimensions")
            }
            hybrid = HybridConfig(
                layerTypes: types,
                linearKeyHeads: try int("linear_num_key_heads", 1...1024), linearValueHeads: try int("linear_num_value_heads", 1...1024),
                linearKeyDim: try int("linear_key_head_dim", 1...4096), linearValueDim: try int("linear_value_head_dim", 1...4096),
                convKernel: try int("linear_conv_kernel_dim", 1...64), partialRotaryFactor: factor,
                moe: family == .qwen35Moe ? MoEConfig(
                    experts: try int("num_experts", 1...4096), topK: try int("num_experts_per_tok", 1...64),
                    intermediate: try int("moe_intermediate_size", 1...1_048_576),
                    sharedIntermediate: try int("shared_expert_intermediate_size", 1...1_048_576)) : nil)
            if let m = hybrid!.moe, m.topK > m.experts {
                throw DistilError.input(path, "num_experts_per_tok \(m.topK) exceeds num_experts \(m.experts)")
            }
            guard hybrid!.linearValueHeads % hybrid!.linearKeyHeads == 0 else {
                throw DistilError.input(path, "linear_num_value_heads is not a multiple of linear_num_key_heads")
            }
        }
        var sparse: SparseConfig?
        if family == .qwen3Moe {
            let layers = try int("num_hidden_layers", 1...1024)
            var only: [Int] = []
            for v in c["mlp_only_layers"] as? [Any] ?? [] {
                guard let i = integer(v), (0..<layers).contains(i) else {
                    throw DistilError.input(path, "mlp_only_layers names \(v), not a layer in 0..<\(layers)")
                }
                only.append(i)
            }
            sparse = SparseConfig(
                moe: MoEConfig(experts: try int(c["num_experts"] != nil ? "num_experts" : "num_local_experts", 1...4096), topK: try int("num_experts_per_tok", 1...64),
                               intermediate: try int("moe_intermediate_size", 1...1_048_576), sharedIntermediate: 0,
                               normTopK: (c["norm_topk_prob"] as? NSNumber)?.boolValue ?? false),
                decoderSparseStep: try int("decoder_sparse_step", 1...1024, default: 1), mlpOnlyLayers: Set(only), layers: layers)
            if sparse!.moe.topK > sparse!.moe.experts {
                throw DistilError.input(path, "num_experts_per_tok \(sparse!.moe.topK) exceeds num_experts \(sparse!.moe.experts)")
            }
        }
        return ModelConfig(
            architecture: arch, modelType: mtype,
            vocabSize: try int("vocab_size", 1...4_000_000), hiddenSize: hidden,
            layers: try int("num_hidden_layers", 1...1024), heads: heads, kvHeads: kv, headDim: headDim,
            intermediateSize: try int("intermediate_size", 1...1_048_576, default: family == .qwen35Moe ? 1 : nil),
            rmsNormEps: eps,
            ropeTheta: theta, tieWordEmbeddings: (c["tie_word_embeddings"] as? NSNumber)?.boolValue,
            attentionBias: family == .qwen2 || ((c["attention_bias"] as? NSNumber)?.boolValue ?? false),
            hybrid: hybrid, sparse: sparse, ropeScaling: scaling, maxPositionEmbeddings: maxPos)
    }
}

/// A JSON number that is an integer (1, 1.0, 1e2), not a fraction, a boolean or beyond ±2^53.
func integer(_ v: Any) -> Int? {
    guard !isBool(v), let d = (v as? NSNumber)?.doubleValue, d.isFinite, d == d.rounded(), abs(d) <= 9_007_199_254_740_992 else { return nil }
    return Int(d)
}

/// JSON true/false arrive as a boolean NSNumber, which `as? NSNumber` also accepts.
func isBool(_ v: Any) -> Bool { String(describing: type(of: v)).contains("Bool") }

/// The architectures the engine runs, by config.json's `model_type`: the one list that loading, the
/// layer builders and dl-check's expected tensors all go by.
public enum ModelFamily: Sendable, CaseIterable {
    /// Llama (with its rope-scaling variants), Qwen2 (q/k/v biases), Qwen3 (q/k norms), Qwen3-MoE.
    case llama, qwen2, qwen3, qwen3Moe
    /// Qwen3.5 dense and MoE (the teacher): Gated DeltaNet and gated attention layers.
    case qwen35, qwen35Moe

    /// model_type → family and the transformers class of that model_type.
    static let byModelType: [String: (family: ModelFamily, className: String)] = [
        "llama": (.llama, "LlamaForCausalLM"), "qwen2": (.qwen2, "Qwen2ForCausalLM"), "qwen3": (.qwen3, "Qwen3ForCausalLM"),
        "qwen3_moe": (.qwen3Moe, "Qwen3MoeForCausalLM"),
        "qwen3_5": (.qwen35, "Qwen3_5ForCausalLM"), "qwen3_5_text": (.qwen35, "Qwen3_5ForConditionalGeneration"),
        "qwen3_5_moe": (.qwen35Moe, "Qwen3_5MoeForCausalLM"), "qwen3_5_moe_text": (.qwen35Moe, "Qwen3_5MoeForConditionalGeneration"),
    ]

    /// The transformers classes the engine runs, sorted (for messages).
    static var classNames: [String] { byModelType.values.map(\.className).sorted() }

    public init?(modelType: String) {
        guard let f = ModelFamily.byModelType[modelType]?.family else { return nil }
        self = f
    }
}

/// The Qwen3.5 text model's extra configuration.
public struct HybridConfig: Sendable {
    public var layerTypes: [String]
    public var linearKeyHeads: Int
    public var linearValueHeads: Int
    public var linearKeyDim: Int
    public var linearValueDim: Int
    public var convKernel: Int
    public var partialRotaryFactor: Double
    /// Mixture of experts in every layer (qwen3_5_moe); nil: a dense MLP.
    public var moe: MoEConfig?
}

public struct MoEConfig: Sendable {
    public var experts: Int
    public var topK: Int
    public var intermediate: Int
    /// The shared expert's width (Qwen3.5-MoE); 0: no shared expert (Qwen3-MoE).
    public var sharedIntermediate: Int
    /// Whether the top-k router probabilities are renormalised to sum to 1 (always, in Qwen3.5-MoE).
    public var normTopK: Bool = true
}

/// Qwen3-MoE: which layers are sparse (`decoder_sparse_step`, `mlp_only_layers`) and their experts.
public struct SparseConfig: Sendable {
    public var moe: MoEConfig
    public var decoderSparseStep: Int
    public var mlpOnlyLayers: Set<Int>
    public var layers: Int
    /// transformers' rule: a layer is sparse unless listed in mlp_only_layers, when (i + 1) % step == 0.
    public func isSparse(_ layer: Int) -> Bool { !mlpOnlyLayers.contains(layer) && (layer + 1) % decoderSparseStep == 0 }
}
