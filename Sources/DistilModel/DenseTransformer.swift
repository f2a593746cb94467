import DistilFormats
import DistilTensors
import Foundation

/// One decoder layer: attention projections and the MLP in their stored dtype, norms and biases in f32.
struct DenseLayer {
    var inputNorm: [Float]
    var postNorm: [Float]
    var q: Matrix, k: Matrix, v: Matrix, o: Matrix
    var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
    var qNorm: [Float]?, kNorm: [Float]?
    /// A SwiGLU MLP, or (Qwen3-MoE's sparse layers) a mixture of experts.
    var mlp: (gate: Matrix, up: Matrix, down: Matrix)?
    var moe: MoEBlock?
}

/// Key/value cache of one sequence: per layer [capacity x kvHeads*headDim].
final class KVCache: SequenceState {
    let k: [FloatBuffer]
    let v: [FloatBuffer]
    var length = 0
    let capacity: Int
    init(layers: Int, capacity: Int, width: Int) {
        self.capacity = capacity
        k = (0..<layers).map { _ in FloatBuffer(capacity * width) }
        v = (0..<layers).map { _ in FloatBuffer(capacity * width) }
    }
}

/// The Llama-family decoder (Llama with its rope-scaling variants, Qwen2 with q/k/v biases, Qwen3
/// with per-head q/k RMSNorm, Qwen3-MoE with sparse layers): pre-norm attention with rotary positions
/// (rotate-half), grouped-query heads, a SwiGLU MLP or a mixture of experts.
final class DenseTransformer: Network {
    var config: ModelConfig { c }
    func makeState(capacity: Int) -> SequenceState { KVCache(layers: c.layers, capacity: capacity, width: c.kvHeads * c.headDim) }

    let c: ModelConfig
    let cx: Compute
    let store: WeightStore
    let embed: Matrix           // [vocab x hidden]
    let head: Matrix            // lm_head, or the embedding when tied
    let finalNorm: [Float]
    let layers: [DenseLayer]
    let rotary: Rotary
    let maxLength: Int?

    init(config c: ModelConfig, weights w: WeightStore, compute: Compute) throws {
        self.c = c
        cx = compute
        store = w
        let prefix = w.has("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        let H = c.hiddenSize, qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim, I = c.intermediateSize
        (embed, head, finalNorm) = try Ops.loadEnds(w, c, prefix: prefix)
        let qkNorm = c.family == .qwen3 || c.family == .qwen3Moe
        var ls: [DenseLayer] = []
        for i in 0..<c.layers {
            let p = "\(prefix)layers.\(i)."
            func opt(_ n: String, _ s: [Int]) throws -> [Float]? { w.has(p + n) ? try w.float32(p + n, shape: s) : nil }
            var layer = DenseLayer(
                inputNorm: try w.float32(p + "input_layernorm.weight", shape: [H]),
                postNorm: try w.float32(p + "post_attention_layernorm.weight", shape: [H]),
                q: try w.matrix(p + "self_attn.q_proj.weight", shape: [qd, H]),
                k: try w.matrix(p + "self_attn.k_proj.weight", shape: [kvd, H]),
                v: try w.matrix(p + "self_attn.v_proj.weight", shape: [kvd, H]),
                o: try w.matrix(p + "self_attn.o_proj.weight", shape: [H, qd]),
                qBias: try opt("self_attn.q_proj.bias", [qd]), kBias: try opt("self_attn.k_proj.bias", [kvd]),
                vBias: try opt("self_attn.v_proj.bias", [kvd]),
                qNorm: qkNorm ? try w.float32(p + "self_attn.q_norm.weight", shape: [c.headDim]) : nil,
                kNorm: qkNorm ? try w.float32(p + "self_attn.k_norm.weight", shape: [c.headDim]) : nil,
                mlp: nil, moe: nil)
            if let s = c.sparse, s.isSparse(i) {
                layer.moe = try MoEBlock(w, prefix: p + "mlp.", config: s.moe, hidden: H)
            } else {
                layer.mlp = (try w.matrix(p + "mlp.gate_proj.weight", shape: [I, H]),
                             try w.matrix(p + "mlp.up_proj.weight", shape: [I, H]),
                             try w.matrix(p + "mlp.down_proj.weight", shape: [H, I]))
            }
            ls.append(layer)
        }
        layers = ls
        rotary = Rotary(config: c, dim: c.headDim)
        maxLength = c.ropeScaling.maxLength(c.maxPositionEmbeddings)
    }

    func checkLength(_ n: Int) throws {
        if let m = maxLength, n > m {
            throw DistilError("a sequence of \(n) tokens exceeds max_position_embeddings \(m), beyond which dynamic rope scaling changes the frequencies; not run", kind: .runtime)
        }
    }

    /// Runs `tokens` at positions state.length ..< +T through every layer, appending their keys and
    /// values to the cache; returns the final-normed hidden states [T x hidden].
    func run(_ tokens: [Int], state: SequenceState) throws -> [Float] {
        let cache = state as! KVCache
        let T = tokens.count, H = c.hiddenSize
        let p0 = cache.length
        guard p0 + T <= cache.capacity else {
            throw DistilError("sequence of \(p0 + T) tokens exceeds the cache of \(cache.capacity)", kind: .runtime)
        }
        try checkLength(p0 + T)
        var x = try Ops.embed(tokens, embed, c)
        for (li, l) in layers.enumerated() {
            var h = x
            Ops.rmsNorm(&h, rows: T, n: H, weight: l.inputNorm, eps: c.rmsNormEps, cx)
            let o = attention(l, h, rows: T, caches: [cache], positions: [p0], layer: li)
            cx.add(&x, o, rows: T, n: H)
            h = x
            Ops.rmsNorm(&h, rows: T, n: H, weight: l.postNorm, eps: c.rmsNormEps, cx)
            let d = mlp(l, h, T)
            cx.add(&x, d, rows: T, n: H)
        }
        cache.length = p0 + T
        Ops.rmsNorm(&x, rows: T, n: H, weight: finalNorm, eps: c.rmsNormEps, cx)
        return x
    }

    /// One token for each of B sequences: projections and the MLP run once for the B rows, attention
    /// per sequence over its own cache.
    func step(_ tokens: [Int], states: [SequenceState]) throws -> [Float] {
        let caches = states.map { $0 as! KVCache }
        let B = tokens.count, H = c.hiddenSize
        for s in caches {
            guard s.length + 1 <= s.capacity else {
                throw DistilError("sequence of \(s.length + 1) tokens exceeds the cache of \(s.capacity)", kind: .runtime)
            }
            try checkLength(s.length + 1)
        }
        var x = try Ops.embed(tokens, embed, c)
        let positions = caches.map(\.length)
        for (li, l) in layers.enumerated() {
            var h = x
            Ops.rmsNorm(&h, rows: B, n: H, weight: l.inputNorm, eps: c.rmsNormEps, cx)
            let o = attention(l, h, rows: B, caches: caches, positions: positions, layer: li)
            for i in 0..<(B * H) { x[i] += o[i] }
            h = x
            Ops.rmsNorm(&h, rows: B, n: H, weight: l.postNorm, eps: c.rmsNormEps, cx)
            let d = mlp(l, h, B)
            for i in 0..<(B * H) { x[i] += d[i] }
        }
        for s in caches { s.length += 1 }
        Ops.rmsNorm(&x, rows: B, n: H, weight: finalNorm, eps: c.rmsNormEps, cx)
        return x
    }

    /// Attention of `rows` rows: one sequence of `rows` tokens (caches.count == 1), or one token of
    /// each of `rows` sequences (a decode step).
    func attention(_ l: DenseLayer, _ h: [Float], rows T: Int, caches: [KVCache], positions: [Int], layer li: Int) -> [Float] {
        let hd = c.headDim, nH = c.heads, nKV = c.kvHeads
        var q = cx.linear(h, T, l.q, bias: l.qBias)
        var k = cx.linear(h, T, l.k, bias: l.kBias)
        let v = cx.linear(h, T, l.v, bias: l.vBias)
        if let qn = l.qNorm { Ops.rmsNorm(&q, rows: T * nH, n: hd, weight: qn, eps: c.rmsNormEps, cx) }
        if let kn = l.kNorm { Ops.rmsNorm(&k, rows: T * nKV, n: hd, weight: kn, eps: c.rmsNormEps, cx) }
        let seqs: [AttentionSequence] = caches.count == 1
            ? [AttentionSequence(keys: caches[0].k[li].pointer, values: caches[0].v[li].pointer, row0: 0, rows: T, position: positions[0])]
            : caches.enumerated().map { AttentionSequence(keys: $1.k[li].pointer, values: $1.v[li].pointer, row0: $0, rows: 1, position: positions[$0]) }
        let attn = Ops.attend(q: &q, k: &k, v: v, rows: T, sequences: seqs, rotary: rotary, heads: nH, kvHeads: nKV, headDim: hd, cx)
        return cx.linear(attn, T, l.o)
    }

    func mlp(_ l: DenseLayer, _ h: [Float], _ T: Int) -> [Float] {
        if let m = l.moe { return m.run(h, T, hidden: c.hiddenSize, cx) }
        let m = l.mlp!
        return cx.swiglu(h, T, gate: m.gate, up: m.up, down: m.down)
    }

    func logits(_ hidden: [Float], from: Int, rows: Int, into out: UnsafeMutablePointer<Float>) {
        hidden.withUnsafeBufferPointer { hp in
            cx.matmul(hp.baseAddress! + from * c.hiddenSize, rows: rows, head, into: out, ldy: c.vocabSize)
        }
    }
}

/// What the engine needs of an architecture.
protocol Network: AnyObject {
    var config: ModelConfig { get }
    func makeState(capacity: Int) -> SequenceState
    /// Runs tokens at positions state.length ..< +T, updating the state; returns the final-normed hidden [T x H].
    func run(_ tokens: [Int], state: SequenceState) throws -> [Float]
    /// LM-head logits [rows x vocab] of `rows` hidden states from row `from`.
    func logits(_ hidden: [Float], from: Int, rows: Int, into out: UnsafeMutablePointer<Float>)
    /// One new token for each of several sequences; returns the final-normed hidden [B x H].
    func step(_ tokens: [Int], states: [SequenceState]) throws -> [Float]
}

/// One sequence's part of an attention call: its cache [capacity x kvHeads*headDim] for keys and
/// values, its rows in the call, and the position of the first.
struct AttentionSequence {
    var keys: UnsafeMutablePointer<Float>
    var values: UnsafeMutablePointer<Float>
    var row0: Int
    var rows: Int
    var position: Int
}

/// A sequence's decoding state (KV cache, recurrent state).
protocol SequenceState: AnyObject {
    var length: Int { get }
}

/// Rotary position embedding (rotate-half) on the first `dim` dimensions of each head, with the
/// config's scaling; the angle position x inv_freq is formed in f64.
struct Rotary {
    let invFreq: [Double]
    let factor: Double

    init(config c: ModelConfig, dim: Int) {
        (invFreq, factor) = c.ropeScaling.frequencies(dim: dim, theta: c.ropeTheta)
    }

    func apply(_ x: inout [Float], row0: Int, rows: Int, heads: Int, headDim hd: Int, position p0: Int) {
        let half = invFreq.count
        var cosT = [Float](repeating: 0, count: half), sinT = [Float](repeating: 0, count: half)
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let pos = Double(p0 + r)
                for i in 0..<half { let a = pos * invFreq[i]; cosT[i] = Float(cos(a) * factor); sinT[i] = Float(sin(a) * factor) }
                for h in 0..<heads {
                    let b = ((row0 + r) * heads + h) * hd
                    for i in 0..<half {
                        let x1 = p[b + i], x2 = p[b + i + half]
                        p[b + i] = x1 * cosT[i] - x2 * sinT[i]
                        p[b + i + half] = x2 * cosT[i] + x1 * sinT[i]
                    }
                }
            }
        }
    }
}

/// Shared building blocks.
enum Ops {
    /// Embedding rows of `tokens` (converted from the stored dtype), each id checked.
    static func embed(_ tokens: [Int], _ e: Matrix, _ c: ModelConfig) throws -> [Float] {
        let H = c.hiddenSize
        var x = [Float](repeating: 0, count: tokens.count * H)
        try x.withUnsafeMutableBufferPointer { xp in
            for (r, t) in tokens.enumerated() {
                guard t >= 0 && t < c.vocabSize else { throw DistilError.input("tokens", "token id \(t) outside the vocabulary (\(c.vocabSize))") }
                e.convert(rows: t, count: 1, into: xp.baseAddress! + r * H)
            }
        }
        return x
    }

    /// RMSNorm over rows of width n: w * x / sqrt(mean(x^2) + eps), or (1 + w) * ... when zero-centred.
    static func rmsNorm(_ x: inout [Float], rows: Int, n: Int, weight: [Float], eps: Double, zeroCentered: Bool = false, _ cx: Compute) {
        x.withUnsafeMutableBufferPointer { p in
            weight.withUnsafeBufferPointer { w in
                cx.forRows(rows) { range in for r in range {
                    let row = p.baseAddress! + r * n
                    var ss = 0.0
                    for j in 0..<n { let v = Double(row[j]); ss += v * v }
                    let inv = Float(1.0 / (ss / Double(n) + eps).squareRoot())
                    if zeroCentered {
                        for j in 0..<n { row[j] = (1 + w[j]) * (row[j] * inv) }
                    } else {
                        for j in 0..<n { row[j] = w[j] * (row[j] * inv) }
                    }
                } }
            }
        }
    }

    /// The embedding, the LM head (the embedding itself when tied) and the final norm. Embeddings are
    /// tied only when tie_word_embeddings is true: absent, it is false for every architecture here (as
    /// in transformers), and untied embeddings without an lm_head.weight are an error, never a silent tie.
    static func loadEnds(_ w: WeightStore, _ c: ModelConfig, prefix: String) throws -> (Matrix, Matrix, [Float]) {
        let H = c.hiddenSize
        let embed = try w.matrix(prefix + "embed_tokens.weight", shape: [c.vocabSize, H])
        var head = embed
        if c.tieWordEmbeddings != true {
            guard w.has("lm_head.weight") else {
                throw DistilError.input(w.directory, "missing lm_head.weight with untied embeddings (tie_word_embeddings is \(c.tieWordEmbeddings == false ? "false" : "not set: false"))")
            }
            head = try w.matrix("lm_head.weight", shape: [c.vocabSize, H])
        }
        return (embed, head, try w.float32(prefix + "norm.weight", shape: [H]))
    }

    /// Rotates each sequence's new queries and keys at its positions, appends its keys and values to
    /// its cache, and attends over the cache: [rows x heads*headDim].
    static func attend(q: inout [Float], k: inout [Float], v: [Float], rows T: Int, sequences: [AttentionSequence], rotary: Rotary,
                       heads nH: Int, kvHeads nKV: Int, headDim hd: Int, _ cx: Compute) -> [Float] {
        let qd = nH * hd, kvd = nKV * hd
        var attn = [Float](repeating: 0, count: T * qd)
        for s in sequences {
            rotary.apply(&q, row0: s.row0, rows: s.rows, heads: nH, headDim: hd, position: s.position)
            rotary.apply(&k, row0: s.row0, rows: s.rows, heads: nKV, headDim: hd, position: s.position)
            k.withUnsafeBufferPointer { (s.keys + s.position * kvd).update(from: $0.baseAddress! + s.row0 * kvd, count: s.rows * kvd) }
            v.withUnsafeBufferPointer { (s.values + s.position * kvd).update(from: $0.baseAddress! + s.row0 * kvd, count: s.rows * kvd) }
            q.withUnsafeBufferPointer { qp in attn.withUnsafeMutableBufferPointer { ap in
                causalAttention(q: qp.baseAddress! + s.row0 * qd, keys: s.keys, values: s.values, out: ap.baseAddress! + s.row0 * qd,
                                rows: s.rows, p0: s.position, heads: nH, kvHeads: nKV, headDim: hd, cx)
            } }
        }
        return attn
    }

    /// Query rows per block of causal attention: bounds the score buffer to block x length floats.
    static let attentionBlock = 128

    /// Causal grouped-query attention of `rows` new rows (positions p0 ..< p0+rows) over the cached
    /// keys and values [0, p0+rows) ([length x kvHeads*headDim]): per head S = scale Q Kᵀ (sgemm), a
    /// causal softmax (sums in f64), O = S V. Heads run in parallel, queries in blocks.
    static func causalAttention(q: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                out: UnsafeMutablePointer<Float>, rows T: Int, p0: Int,
                                heads nH: Int, kvHeads nKV: Int, headDim hd: Int, _ cx: Compute) {
        let qd = nH * hd, kvd = nKV * hd, group = nH / nKV
        let scale = Float(1.0 / Double(hd).squareRoot())
        let B = attentionBlock
        let blocks = (T + B - 1) / B
        cx.forEach(nH * blocks) { task in
            let head = task / blocks, b0 = (task % blocks) * B, n = min(B, T - b0)
            let kvh = head / group
            let L = p0 + b0 + n          // keys visible to the block's last row
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: n * L)
            defer { scores.deallocate() }
            BLAS.gemmNT(m: n, n: L, k: hd, a: q + b0 * qd + head * hd, lda: qd, b: keys + kvh * hd, ldb: kvd,
                               c: scores, ldc: L, alpha: scale)
            for r in 0..<n {
                let row = scores + r * L
                let visible = p0 + b0 + r + 1
                var m = -Float.infinity
                for j in 0..<visible { m = max(m, row[j]) }
                var sum = 0.0
                for j in 0..<visible { let e = exp(row[j] - m); row[j] = e; sum += Double(e) }
                let inv = Float(1.0 / sum)
                for j in 0..<visible { row[j] *= inv }
                for j in visible..<L { row[j] = 0 }
            }
            BLAS.gemmNN(m: n, n: hd, k: L, a: scores, lda: L, b: values + kvh * hd, ldb: kvd,
                               c: out + b0 * qd + head * hd, ldc: qd)
        }
    }

    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
}
