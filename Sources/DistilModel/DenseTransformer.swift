import DistilFormats
import DistilTensors
import Foundation

/// One decoder layer's weights (f32, row-major [out x in]).
struct DenseLayer {
    var inputNorm: [Float]
    var postNorm: [Float]
    var q: [Float], k: [Float], v: [Float], o: [Float]
    var qBias: [Float]?, kBias: [Float]?, vBias: [Float]?
    var qNorm: [Float]?, kNorm: [Float]?
    var gate: [Float], up: [Float], down: [Float]
}

/// Key/value cache of one sequence: per layer [capacity x kvHeads*headDim].
final class KVCache: SequenceState {
    var k: [[Float]]
    var v: [[Float]]
    var length = 0
    let capacity: Int
    init(layers: Int, capacity: Int, width: Int) {
        self.capacity = capacity
        k = Array(repeating: [Float](repeating: 0, count: capacity * width), count: layers)
        v = Array(repeating: [Float](repeating: 0, count: capacity * width), count: layers)
    }
}

/// The Llama-family decoder (Llama, Qwen2 with q/k/v biases, Qwen3 with per-head q/k RMSNorm):
/// pre-norm attention with rotary positions (rotate-half), grouped-query heads, SwiGLU MLP.
final class DenseTransformer: Network {
    var config: ModelConfig { c }
    func makeState(capacity: Int) -> SequenceState { KVCache(layers: c.layers, capacity: capacity, width: c.kvHeads * c.headDim) }
    func run(_ tokens: [Int], state: SequenceState) throws -> [Float] { try run(tokens, cache: state as! KVCache) }

    let c: ModelConfig
    let embed: [Float]          // [vocab x hidden]
    let lmHead: [Float]?        // nil: tied to embed
    let finalNorm: [Float]
    let layers: [DenseLayer]
    let invFreq: [Double]

    init(config c: ModelConfig, weights w: WeightStore) throws {
        self.c = c
        let prefix = w.has("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        let H = c.hiddenSize, qd = c.heads * c.headDim, kvd = c.kvHeads * c.headDim, I = c.intermediateSize
        (embed, lmHead, finalNorm) = try Ops.loadEnds(w, c, prefix: prefix)
        var ls: [DenseLayer] = []
        for i in 0..<c.layers {
            let p = "\(prefix)layers.\(i)."
            func opt(_ n: String, _ s: [Int]) throws -> [Float]? { w.has(p + n) ? try w.float32(p + n, shape: s) : nil }
            ls.append(DenseLayer(
                inputNorm: try w.float32(p + "input_layernorm.weight", shape: [H]),
                postNorm: try w.float32(p + "post_attention_layernorm.weight", shape: [H]),
                q: try w.float32(p + "self_attn.q_proj.weight", shape: [qd, H]),
                k: try w.float32(p + "self_attn.k_proj.weight", shape: [kvd, H]),
                v: try w.float32(p + "self_attn.v_proj.weight", shape: [kvd, H]),
                o: try w.float32(p + "self_attn.o_proj.weight", shape: [H, qd]),
                qBias: try opt("self_attn.q_proj.bias", [qd]), kBias: try opt("self_attn.k_proj.bias", [kvd]),
                vBias: try opt("self_attn.v_proj.bias", [kvd]),
                qNorm: c.modelType == "qwen3" ? try w.float32(p + "self_attn.q_norm.weight", shape: [c.headDim]) : nil,
                kNorm: c.modelType == "qwen3" ? try w.float32(p + "self_attn.k_norm.weight", shape: [c.headDim]) : nil,
                gate: try w.float32(p + "mlp.gate_proj.weight", shape: [I, H]),
                up: try w.float32(p + "mlp.up_proj.weight", shape: [I, H]),
                down: try w.float32(p + "mlp.down_proj.weight", shape: [H, I])))
        }
        layers = ls
        let half = c.headDim / 2
        invFreq = (0..<half).map { 1.0 / pow(c.ropeTheta, Double(2 * $0) / Double(c.headDim)) }
    }

    var head: [Float] { lmHead ?? embed }

    func linear(_ x: [Float], _ t: Int, _ w: [Float], out: Int, inDim: Int, bias: [Float]? = nil) -> [Float] {
        Ops.linear(x, t, w, out: out, inDim: inDim, bias: bias)
    }

    func rmsNorm(_ x: inout [Float], rows: Int, n: Int, weight: [Float]) {
        Ops.rmsNorm(&x, rows: rows, n: n, weight: weight, eps: c.rmsNormEps)
    }

    /// Rotary embedding (rotate-half) on `heads` heads of each row, row r at position positions[r].
    func rope(_ x: inout [Float], rows: Int, heads: Int, positions: Int) {
        let hd = c.headDim, half = hd / 2
        var cosT = [Float](repeating: 0, count: half), sinT = [Float](repeating: 0, count: half)
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                let pos = Double(positions + r)
                for i in 0..<half { let a = pos * invFreq[i]; cosT[i] = Float(cos(a)); sinT[i] = Float(sin(a)) }
                for h in 0..<heads {
                    let b = (r * heads + h) * hd
                    for i in 0..<half {
                        let x1 = p[b + i], x2 = p[b + i + half]
                        p[b + i] = x1 * cosT[i] - x2 * sinT[i]
                        p[b + i + half] = x2 * cosT[i] + x1 * sinT[i]
                    }
                }
            }
        }
    }

    /// Runs `tokens` at positions cache.length ..< cache.length+T through every layer, appending
    /// their keys/values to the cache; returns the final-normed hidden states [T x hidden].
    func run(_ tokens: [Int], cache: KVCache) throws -> [Float] {
        let T = tokens.count, H = c.hiddenSize, hd = c.headDim
        let nH = c.heads, nKV = c.kvHeads, qd = nH * hd, kvd = nKV * hd, I = c.intermediateSize
        let p0 = cache.length
        guard p0 + T <= cache.capacity else {
            throw DistilError("sequence of \(p0 + T) tokens exceeds the cache of \(cache.capacity)", kind: .runtime)
        }
        var x = [Float](repeating: 0, count: T * H)
        for (r, t) in tokens.enumerated() {
            guard t >= 0 && t < c.vocabSize else { throw DistilError.input("tokens", "token id \(t) outside the vocabulary (\(c.vocabSize))") }
            for j in 0..<H { x[r * H + j] = embed[t * H + j] }
        }
        let L = p0 + T
        for (li, l) in layers.enumerated() {
            var h = x
            rmsNorm(&h, rows: T, n: H, weight: l.inputNorm)
            var q = linear(h, T, l.q, out: qd, inDim: H, bias: l.qBias)
            var k = linear(h, T, l.k, out: kvd, inDim: H, bias: l.kBias)
            let v = linear(h, T, l.v, out: kvd, inDim: H, bias: l.vBias)
            if let qn = l.qNorm { rmsNorm(&q, rows: T * nH, n: hd, weight: qn) }
            if let kn = l.kNorm { rmsNorm(&k, rows: T * nKV, n: hd, weight: kn) }
            rope(&q, rows: T, heads: nH, positions: p0)
            rope(&k, rows: T, heads: nKV, positions: p0)
            cache.k[li].withUnsafeMutableBufferPointer { kc in k.withUnsafeBufferPointer { kp in
                (kc.baseAddress! + p0 * kvd).update(from: kp.baseAddress!, count: T * kvd) } }
            cache.v[li].withUnsafeMutableBufferPointer { vc in v.withUnsafeBufferPointer { vp in
                (vc.baseAddress! + p0 * kvd).update(from: vp.baseAddress!, count: T * kvd) } }
            let attn = Ops.causalAttention(q: q, kCache: cache.k[li], vCache: cache.v[li], t: T, p0: p0,
                                           heads: nH, kvHeads: nKV, headDim: hd)
            let o = linear(attn, T, l.o, out: H, inDim: qd)
            for i in 0..<(T * H) { x[i] += o[i] }
            h = x
            rmsNorm(&h, rows: T, n: H, weight: l.postNorm)
            let g = linear(h, T, l.gate, out: I, inDim: H)
            var u = linear(h, T, l.up, out: I, inDim: H)
            for i in 0..<(T * I) { let a = g[i]; u[i] *= a / (1 + exp(-a)) }
            let d = linear(u, T, l.down, out: H, inDim: I)
            for i in 0..<(T * H) { x[i] += d[i] }
        }
        cache.length = L
        rmsNorm(&x, rows: T, n: H, weight: finalNorm)
        return x
    }

    /// Logits [rows x vocab] for `rows` hidden states starting at row `from` of `hidden`.
    func logits(_ hidden: [Float], from: Int, rows: Int, into out: UnsafeMutablePointer<Float>) {
        let H = c.hiddenSize
        hidden.withUnsafeBufferPointer { hp in head.withUnsafeBufferPointer { wp in
            BLAS.gemmNT(m: rows, n: c.vocabSize, k: H, a: hp.baseAddress! + from * H, lda: H, b: wp.baseAddress!, ldb: H, c: out, ldc: c.vocabSize)
        } }
    }
}

/// What the engine needs of an architecture.
protocol Network: AnyObject {
    var config: ModelConfig { get }
    func makeState(capacity: Int) -> SequenceState
    /// Runs tokens at positions state.length ..< +T, updating the state; returns the final-normed hidden [T x H].
    func run(_ tokens: [Int], state: SequenceState) throws -> [Float]
    func logits(_ hidden: [Float], from: Int, rows: Int, into out: UnsafeMutablePointer<Float>)
    /// One new token for each of several sequences; returns the final-normed hidden [B x H].
    func step(_ tokens: [Int], states: [SequenceState]) throws -> [Float]
}

extension Network {
    /// Sequence by sequence (architectures without a batched step).
    func step(_ tokens: [Int], states: [SequenceState]) throws -> [Float] {
        var out: [Float] = []
        for (t, s) in zip(tokens, states) { out += try run([t], state: s) }
        return out
    }
}

/// A sequence's decoding state (KV cache, recurrent state).
protocol SequenceState: AnyObject {
    var length: Int { get }
}

/// Shared building blocks.
enum Ops {
    /// Y[T x out] = X[T x in] W^T (+ bias).
    static func linear(_ x: [Float], _ t: Int, _ w: [Float], out: Int, inDim: Int, bias: [Float]? = nil) -> [Float] {
        var y = [Float](repeating: 0, count: t * out)
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in y.withUnsafeMutableBufferPointer { yp in
            BLAS.gemmNT(m: t, n: out, k: inDim, a: xp.baseAddress!, lda: inDim, b: wp.baseAddress!, ldb: inDim, c: yp.baseAddress!, ldc: out)
        } } }
        if let bias { for r in 0..<t { for j in 0..<out { y[r * out + j] += bias[j] } } }
        return y
    }

    /// RMSNorm over rows of width n: w * x / sqrt(mean(x^2) + eps), or (1 + w) * ... when zero-centred.
    static func rmsNorm(_ x: inout [Float], rows: Int, n: Int, weight: [Float], eps: Double, zeroCentered: Bool = false) {
        x.withUnsafeMutableBufferPointer { p in
            for r in 0..<rows {
                var ss = 0.0
                for j in 0..<n { let v = Double(p[r * n + j]); ss += v * v }
                let inv = Float(1.0 / (ss / Double(n) + eps).squareRoot())
                if zeroCentered {
                    for j in 0..<n { p[r * n + j] = (1 + weight[j]) * (p[r * n + j] * inv) }
                } else {
                    for j in 0..<n { p[r * n + j] = weight[j] * (p[r * n + j] * inv) }
                }
            }
        }
    }

    /// down(silu(gate(x)) * up(x)) over T rows.
    static func swiglu(_ x: [Float], _ t: Int, gate: [Float], up: [Float], down: [Float], hidden: Int, inter: Int) -> [Float] {
        let g = linear(x, t, gate, out: inter, inDim: hidden)
        var u = linear(x, t, up, out: inter, inDim: hidden)
        for i in 0..<(t * inter) { u[i] *= silu(g[i]) }
        return linear(u, t, down, out: hidden, inDim: inter)
    }

    /// The embedding, the LM head (nil when tied to the embedding) and the final norm. Untied
    /// embeddings without an lm_head.weight are an error, never a silent tie.
    static func loadEnds(_ w: WeightStore, _ c: ModelConfig, prefix: String) throws -> ([Float], [Float]?, [Float]) {
        let H = c.hiddenSize
        let embed = try w.float32(prefix + "embed_tokens.weight", shape: [c.vocabSize, H])
        var head: [Float]? = nil
        if w.has("lm_head.weight") && c.tieWordEmbeddings != true {
            head = try w.float32("lm_head.weight", shape: [c.vocabSize, H])
        } else if c.tieWordEmbeddings == false {
            throw DistilError.input(w.directory, "missing lm_head.weight with untied embeddings")
        }
        return (embed, head, try w.float32(prefix + "norm.weight", shape: [H]))
    }

    /// Causal grouped-query attention of T new rows (positions p0 ..< p0+T) over the cached keys and
    /// values [0, p0+T): per head S = scale * Q K^T (sgemm), a causal softmax (sums in f64), O = S V.
    static func causalAttention(q: [Float], kCache: [Float], vCache: [Float], t T: Int, p0: Int,
                                heads nH: Int, kvHeads nKV: Int, headDim hd: Int) -> [Float] {
        let qd = nH * hd, kvd = nKV * hd, L = p0 + T, group = nH / nKV
        let scale = Float(1.0 / Double(hd).squareRoot())
        var attn = [Float](repeating: 0, count: T * qd)
        var scores = [Float](repeating: 0, count: T * L)
        kCache.withUnsafeBufferPointer { kc in vCache.withUnsafeBufferPointer { vc in
            q.withUnsafeBufferPointer { qp in attn.withUnsafeMutableBufferPointer { ap in scores.withUnsafeMutableBufferPointer { sp in
                for head in 0..<nH {
                    let kvh = head / group
                    BLAS.gemmNT(m: T, n: L, k: hd, a: qp.baseAddress! + head * hd, lda: qd, b: kc.baseAddress! + kvh * hd, ldb: kvd,
                                c: sp.baseAddress!, ldc: L, alpha: scale)
                    for r in 0..<T {
                        let row = sp.baseAddress! + r * L
                        let visible = p0 + r + 1
                        var m = -Float.infinity
                        for j in 0..<visible { m = max(m, row[j]) }
                        var sum = 0.0
                        for j in 0..<visible { let e = exp(row[j] - m); row[j] = e; sum += Double(e) }
                        let inv = Float(1.0 / sum)
                        for j in 0..<visible { row[j] *= inv }
                        for j in visible..<L { row[j] = 0 }
                    }
                    BLAS.gemmNN(m: T, n: hd, k: L, a: sp.baseAddress!, lda: L, b: vc.baseAddress! + kvh * hd, ldb: kvd,
                                c: ap.baseAddress! + head * hd, ldc: qd)
                }
            } } }
        } }
        return attn
    }

    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
}
