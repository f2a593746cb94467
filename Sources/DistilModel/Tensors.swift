import DistilFormats
import DistilTensors
import Foundation

/// A tensor an architecture reads: its name in the checkpoint and the shape the config implies.
///
/// Each architecture file declares its tensors once, as a tree of these (`ModelTensors`): the
/// loader reads the weights through that tree, and dl-check's `ExpectedTensors` compares the same
/// tree, flattened in declaration order, with the checkpoint's headers. A name is written in one
/// place only.
public struct TensorSpec: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
}

/// How a checkpoint's names lay its text model out, read from the names alone.
struct TensorLayout {
    /// "model." (*ForCausalLM) or "model.language_model." (*ForConditionalGeneration).
    let prefix: String
    /// MLP prefixes ("…layers.i.mlp.") whose experts are stored fused (experts.gate_up_proj).
    let fusedExperts: Set<String>

    init<S: Sequence>(names: S) where S.Element == String {
        var conditional = false
        var fused = Set<String>()
        for n in names {
            if n.hasPrefix("model.language_model.") { conditional = true }
            if n.hasSuffix(".experts.gate_up_proj") { fused.insert(String(n.dropLast("experts.gate_up_proj".count))) }
        }
        prefix = conditional ? "model.language_model." : "model."
        fusedExperts = fused
    }
}

/// Collects the declared tensors in declaration order, and bounds how many a config may imply
/// before their names are built.
struct TensorList {
    private(set) var specs: [TensorSpec] = []

    /// Declares a tensor; returns it for the architecture's tree.
    mutating func add(_ name: String, _ shape: [Int]) -> TensorSpec {
        let s = TensorSpec(name: name, shape: shape)
        specs.append(s)
        return s
    }

    /// Refuses a config that is about to imply more than `ExpectedTensors.maxTensors` tensors
    /// (`more` of them still to be declared), before any of their names is built.
    func expect(_ more: Int) throws {
        let (total, overflow) = specs.count.addingReportingOverflow(more)
        if overflow || total > ExpectedTensors.maxTensors {
            throw DistilError("config.json: the config implies more than \(ExpectedTensors.maxTensors) tensors")
        }
    }
}

/// The whole text model's tensors: the embedding, the layers, the final norm and the LM head (nil:
/// tied to the embedding).
struct ModelTensors {
    var embed: TensorSpec
    var layers: [LayerTensors]
    var norm: TensorSpec
    var head: TensorSpec?

    /// One decoder layer: the token mixer (attention or DeltaNet) and the feed-forward block (a
    /// SwiGLU MLP or experts), each behind its RMSNorm.
    struct LayerTensors {
        enum Mixer { case attention(AttentionTensors), deltaNet(DeltaNetTensors) }
        enum FeedForward { case mlp(MLPTensors), experts(MoETensors) }
        var inputNorm: TensorSpec
        var postNorm: TensorSpec
        var mixer: Mixer
        var feedForward: FeedForward
    }

    /// The tensors of the config's architecture (the family's file declares them), in the loaders'
    /// order, and the list they make.
    static func declare(config c: ModelConfig, layout: TensorLayout) throws -> (ModelTensors, [TensorSpec]) {
        guard let family = c.family else {
            throw DistilError("config.json: no tensor list for model_type \(c.modelType) (\(c.architecture))")
        }
        var list = TensorList()
        let t = try family.architecture.tensors(c, family: family, layout: layout, &list)
        try list.expect(0)
        return (t, list.specs)
    }

    /// The layer list around `layer`: the embedding first; the final norm and (untied) the LM head
    /// last. Embeddings are tied only when tie_word_embeddings is true: absent, it is false for every
    /// architecture here (as in transformers).
    static func model(_ c: ModelConfig, layout: TensorLayout, _ l: inout TensorList,
                      layer: (_ index: Int, _ prefix: String, _ list: inout TensorList) throws -> LayerTensors) throws -> ModelTensors {
        let P = layout.prefix, H = c.hiddenSize
        let embed = l.add(P + "embed_tokens.weight", [c.vocabSize, H])
        var layers: [LayerTensors] = []
        for i in 0..<c.layers {
            try l.expect(1)
            layers.append(try layer(i, "\(P)layers.\(i).", &l))
        }
        let norm = l.add(P + "norm.weight", [H])
        let head = c.tieWordEmbeddings == true ? nil : l.add("lm_head.weight", [c.vocabSize, H])
        return ModelTensors(embed: embed, layers: layers, norm: norm, head: head)
    }

    /// A layer's two norms (declared before its mixer and feed-forward block).
    static func norms(_ p: String, _ c: ModelConfig, _ l: inout TensorList) -> (TensorSpec, TensorSpec) {
        (l.add(p + "input_layernorm.weight", [c.hiddenSize]), l.add(p + "post_attention_layernorm.weight", [c.hiddenSize]))
    }
}

/// What an architecture file provides: its tensors, declared once, and how the decoder stack runs
/// them (norm style, rotary width).
protocol Architecture {
    static func tensors(_ c: ModelConfig, family: ModelFamily, layout: TensorLayout, _ l: inout TensorList) throws -> ModelTensors
    static func load(_ c: ModelConfig, _ t: ModelTensors, _ w: WeightStore, _ cx: Compute) throws -> Transformer
}

extension Architecture {
    static func load(_ c: ModelConfig, _ t: ModelTensors, _ w: WeightStore, _ cx: Compute) throws -> Transformer {
        try Transformer(config: c, tensors: t, weights: w, compute: cx)
    }
}

extension ModelFamily {
    /// The file that declares and loads the family (the one switch over families in the engine).
    var architecture: Architecture.Type {
        switch self {
        case .llama, .qwen2, .qwen3: return Llama.self
        case .qwen3Moe: return Qwen3MoE.self
        case .qwen35, .qwen35Moe: return Qwen35.self
        }
    }
}

extension WeightStore {
    /// A declared tensor as a 2-D view [product of all but the last dimension x the last], in its
    /// stored dtype (a fused [E, 2I, H] expert tensor is [E * 2I, H]).
    func matrix(_ s: TensorSpec) throws -> Matrix {
        try matrix(s.name, shape: s.shape, rows: s.shape.dropLast().reduce(1, *), cols: s.shape.last ?? 1)
    }

    /// A declared tensor copied into f32.
    func float32(_ s: TensorSpec) throws -> [Float] { try float32(s.name, shape: s.shape) }
}
