import DistilFormats
import DistilTensors
import Foundation

/// A pre-norm decoder stack, the one forward pass of every architecture: the embedding, per layer
/// x += mixer(norm(x)) and x += feedForward(norm(x)), the final norm, the LM head. The architecture
/// files (Llama.swift, Qwen3MoE.swift, Qwen35.swift) declare which mixer, feed-forward block and
/// norms each layer has; this type runs them.
final class Transformer {
    /// The token mixer of a layer.
    enum Mixer {
        case attention(Attention)
        case deltaNet(DeltaNet)

        var name: String {
            switch self { case .attention: return "attention"; case .deltaNet: return "deltanet" }
        }
    }
    /// The feed-forward block of a layer.
    enum FeedForward {
        case mlp(MLP)
        case experts(MoEBlock)
    }
    struct Layer {
        var inputNorm: RMSNorm
        var mixer: Mixer
        var postNorm: RMSNorm
        var feedForward: FeedForward
    }

    let config: ModelConfig
    let cx: Compute
    /// Keeps the mapped weights alive.
    let store: WeightStore
    let embed: Matrix           // [vocab x hidden]
    let head: Matrix            // lm_head, or the embedding when tied
    let finalNorm: RMSNorm
    let layers: [Layer]
    /// Whether the last forward was a decode step (one row per sequence): `logits` then runs as it did.
    private var lastForwardDecoded = false
    /// Dynamic NTK rope scaling changes the frequencies beyond this length: longer sequences are refused.
    let maxLength: Int?

    /// Loads the declared tensors. `zeroCentered`: every RMSNorm is (1 + w) · x / rms (Qwen3.5);
    /// `rotaryDim`: the rotated dimensions of each head (partial rotary).
    init(config c: ModelConfig, tensors t: ModelTensors, weights w: WeightStore, compute: Compute,
         zeroCentered: Bool = false, rotaryDim: Int? = nil) throws {
        config = c
        cx = compute
        store = w
        embed = try w.matrix(t.embed)
        head = try t.head.map(w.matrix) ?? embed
        func norm(_ s: TensorSpec) throws -> RMSNorm { RMSNorm(weight: try w.float32(s), eps: c.rmsNormEps, zeroCentered: zeroCentered) }
        finalNorm = try norm(t.norm)
        let rotary = Rotary(config: c, dim: rotaryDim ?? c.headDim)
        layers = try t.layers.map { l in
            let mixer: Mixer
            switch l.mixer {
            case .attention(let a): mixer = .attention(try Attention(a, w, c, rotary: rotary, zeroCentered: zeroCentered))
            case .deltaNet(let d): mixer = .deltaNet(try DeltaNet(d, w, config: c.hybrid!, eps: c.rmsNormEps))
            }
            let ff: FeedForward
            switch l.feedForward {
            case .mlp(let m): ff = .mlp(try MLP(m, w))
            case .experts(let e): ff = .experts(try MoEBlock(e, w, config: c.moe!, hidden: c.hiddenSize))
            }
            return Layer(inputNorm: try norm(l.inputNorm), mixer: mixer, postNorm: try norm(l.postNorm), feedForward: ff)
        }
        maxLength = c.ropeScaling.maxLength(c.maxPositionEmbeddings)
    }

    /// A fresh state for one sequence of up to `capacity` positions.
    func makeState(capacity: Int) -> SequenceState {
        SequenceState(capacity: capacity, caches: layers.map { l in
            switch l.mixer {
            case .attention(let a): return a.makeCache(capacity: capacity)
            case .deltaNet(let d): return d.makeCache()
            }
        })
    }

    /// Runs the segments' tokens (tokens[row0 ..< row0+rows] of each) through every layer at their
    /// sequences' next positions, then advances each sequence's length; returns the final-normed
    /// hidden states [tokens x hidden].
    func forward(_ tokens: [Int], _ segments: [Segment]) throws -> [Float] {
        for s in segments {
            guard s.position + s.rows <= s.state.capacity else {
                throw DistilError("sequence of \(s.position + s.rows) tokens exceeds its decoding state of \(s.state.capacity)", kind: .runtime)
            }
            if let m = maxLength, s.position + s.rows > m {
                throw DistilError("a sequence of \(s.position + s.rows) tokens exceeds max_position_embeddings \(m), beyond which dynamic rope scaling changes the frequencies; not run", kind: .runtime)
            }
        }
        let T = tokens.count, H = config.hiddenSize
        let decoding = segments.allSatisfy { $0.rows == 1 }
        let phase = decoding ? "step" : "prefill"
        Profile.phase = phase
        let cx = decoding ? self.cx.decoding : self.cx
        lastForwardDecoded = decoding
        var x = try Profile.time("\(phase) embedding") { try embedding(tokens) }
        for (li, l) in layers.enumerated() {
            var h = x
            let mixed: [Float] = Profile.time("\(phase) \(l.mixer.name)") {
                l.inputNorm.apply(&h, rows: T, cx)
                switch l.mixer {
                case .attention(let a): return a(h, rows: T, segments, layer: li, cx)
                case .deltaNet(let d): return d(h, rows: T, segments, layer: li, cx)
                }
            }
            cx.add(&x, mixed, rows: T, n: H)
            h = x
            let fed: [Float] = Profile.time("\(phase) feed-forward") {
                l.postNorm.apply(&h, rows: T, cx)
                switch l.feedForward {
                case .mlp(let m): return m(h, T, cx)
                case .experts(let e): return e(h, T, hidden: H, cx)
                }
            }
            cx.add(&x, fed, rows: T, n: H)
        }
        for s in segments { s.state.length += s.rows }
        finalNorm.apply(&x, rows: T, cx)
        return x
    }

    /// One sequence's tokens (a prefill, or its next token).
    func forward(_ tokens: [Int], state: SequenceState) throws -> [Float] {
        try forward(tokens, [Segment(state: state, row0: 0, rows: tokens.count)])
    }

    /// One new token for each of several sequences (a decode step): the projections, MLPs and
    /// experts run once over all the rows; attention and DeltaNet per sequence on its own state.
    func forward(_ tokens: [Int], states: [SequenceState]) throws -> [Float] {
        try forward(tokens, states.enumerated().map { Segment(state: $1, row0: $0, rows: 1) })
    }

    /// Embedding rows of `tokens` (converted from the stored dtype), each id checked.
    func embedding(_ tokens: [Int]) throws -> [Float] {
        let H = config.hiddenSize, V = config.vocabSize
        var x = [Float](repeating: 0, count: tokens.count * H)
        try x.withUnsafeMutableBufferPointer { xp in
            for (r, t) in tokens.enumerated() {
                guard t >= 0 && t < V else { throw DistilError.input("tokens", "token id \(t) outside the vocabulary (\(V))") }
                embed.convert(rows: t, count: 1, into: xp.baseAddress! + r * H)
            }
        }
        return x
    }

    /// LM-head logits [rows x vocab] of `rows` hidden states from row `from`. After a decode step's
    /// forward (the hidden states are its rows), the head runs the step's products (`Compute.decoding`).
    func logits(_ hidden: [Float], from: Int, rows: Int, into out: UnsafeMutablePointer<Float>) {
        let cx = lastForwardDecoded ? self.cx.decoding : self.cx
        Profile.time("\(Profile.phase) lm head") { hidden.withUnsafeBufferPointer { hp in
            cx.matmul(hp.baseAddress! + from * config.hiddenSize, rows: rows, head, into: out, ldy: config.vocabSize)
        } }
    }
}
