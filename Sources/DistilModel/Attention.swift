import DistilFormats
import DistilTensors
import Foundation

/// The tensors of a self-attention block.
struct AttentionTensors {
    var q: TensorSpec, k: TensorSpec, v: TensorSpec, o: TensorSpec
    var qBias: TensorSpec?, kBias: TensorSpec?, vBias: TensorSpec?, oBias: TensorSpec?
    var qNorm: TensorSpec?, kNorm: TensorSpec?
    /// q_proj also yields a per-head output gate: [query | gate] per head, twice the rows (Qwen3.5).
    var gated: Bool

    /// q/k/v/o projections under `p`self_attn.; `biases`: "qkv" (Qwen2: q, k and v, not o) or "all"
    /// (attention_bias); `qkNorm`: per-head RMSNorm of queries and keys (Qwen3, Qwen3.5).
    static func declare(_ p: String, _ c: ModelConfig, gated: Bool, biases: Biases, qkNorm: Bool, _ l: inout TensorList) -> AttentionTensors {
        let H = c.hiddenSize, hd = c.headDim, qd = c.heads * hd, kvd = c.kvHeads * hd
        let a = p + "self_attn."
        let q = gated ? 2 * qd : qd
        var t = AttentionTensors(q: l.add(a + "q_proj.weight", [q, H]), k: l.add(a + "k_proj.weight", [kvd, H]),
                                 v: l.add(a + "v_proj.weight", [kvd, H]), o: l.add(a + "o_proj.weight", [H, qd]), gated: gated)
        switch biases {
        case .none: break
        case .qkv:
            t.qBias = l.add(a + "q_proj.bias", [qd]); t.kBias = l.add(a + "k_proj.bias", [kvd]); t.vBias = l.add(a + "v_proj.bias", [kvd])
        case .all:
            t.qBias = l.add(a + "q_proj.bias", [q]); t.kBias = l.add(a + "k_proj.bias", [kvd])
            t.vBias = l.add(a + "v_proj.bias", [kvd]); t.oBias = l.add(a + "o_proj.bias", [H])
        }
        if qkNorm {
            t.qNorm = l.add(a + "q_norm.weight", [hd])
            t.kNorm = l.add(a + "k_norm.weight", [hd])
        }
        return t
    }

    enum Biases { case none, qkv, all }
}

/// Causal grouped-query self-attention with rotary positions: optional q/k/v(/o) biases, optional
/// per-head q/k RMSNorm, optionally (Qwen3.5) a sigmoid output gate that q_proj yields beside the
/// queries and rotary on only the first dimensions of each head.
struct Attention {
    let q: Matrix, k: Matrix, v: Matrix, o: Matrix
    let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?, oBias: [Float]?
    let qNorm: RMSNorm?, kNorm: RMSNorm?
    let gated: Bool
    let heads: Int, kvHeads: Int, headDim: Int
    let rotary: Rotary

    /// `zeroCentered`: the q/k norms are (1 + w) · x / rms (Qwen3.5).
    init(_ t: AttentionTensors, _ w: WeightStore, _ c: ModelConfig, rotary: Rotary, zeroCentered: Bool) throws {
        q = try w.matrix(t.q); k = try w.matrix(t.k); v = try w.matrix(t.v); o = try w.matrix(t.o)
        qBias = try t.qBias.map(w.float32); kBias = try t.kBias.map(w.float32)
        vBias = try t.vBias.map(w.float32); oBias = try t.oBias.map(w.float32)
        qNorm = try t.qNorm.map { RMSNorm(weight: try w.float32($0), eps: c.rmsNormEps, zeroCentered: zeroCentered) }
        kNorm = try t.kNorm.map { RMSNorm(weight: try w.float32($0), eps: c.rmsNormEps, zeroCentered: zeroCentered) }
        gated = t.gated
        heads = c.heads; kvHeads = c.kvHeads; headDim = c.headDim
        self.rotary = rotary
    }

    /// The keys and values one sequence caches for this layer: [capacity x kvHeads*headDim] each.
    func makeCache(capacity: Int) -> LayerCache {
        .attention(keys: FloatBuffer(capacity * kvHeads * headDim), values: FloatBuffer(capacity * kvHeads * headDim))
    }

    /// The block over the rows of `segments` ([rows x hidden] in, [rows x hidden] out), appending
    /// each sequence's keys and values to its cache of layer `li`.
    func callAsFunction(_ x: [Float], rows T: Int, _ segments: [Segment], layer li: Int, _ cx: Compute) -> [Float] {
        let hd = headDim, nH = heads, nKV = kvHeads, qd = nH * hd
        let projected = cx.linear(x, T, q, bias: qBias)
        var query: [Float], gate: [Float] = []
        if gated {
            // Per head [query | gate] → two [rows x heads*headDim] arrays.
            query = [Float](repeating: 0, count: T * qd); gate = [Float](repeating: 0, count: T * qd)
            query.withUnsafeMutableBufferPointer { qb in gate.withUnsafeMutableBufferPointer { gb in projected.withUnsafeBufferPointer { src in
                let qp = qb.baseAddress!, gp = gb.baseAddress!, s = src.baseAddress!
                cx.forRows(T) { rows in
                    for r in rows {
                        for head in 0..<nH {
                            (qp + (r * nH + head) * hd).update(from: s + r * 2 * qd + head * 2 * hd, count: hd)
                            (gp + (r * nH + head) * hd).update(from: s + r * 2 * qd + head * 2 * hd + hd, count: hd)
                        }
                    }
                }
            } } }
        } else {
            query = projected
        }
        var key = cx.linear(x, T, k, bias: kBias)
        let value = cx.linear(x, T, v, bias: vBias)
        qNorm?.apply(&query, rows: T * nH, cx)
        kNorm?.apply(&key, rows: T * nKV, cx)
        let seqs = segments.map { s in
            let (keys, values) = s.state.caches[li].attention
            return AttentionSequence(keys: keys, values: values, row0: s.row0, rows: s.rows, position: s.position)
        }
        var attn = Attention.attend(q: &query, k: &key, v: value, rows: T, sequences: seqs, rotary: rotary,
                                    heads: nH, kvHeads: nKV, headDim: hd, cx)
        if gated {
            attn.withUnsafeMutableBufferPointer { ab in gate.withUnsafeBufferPointer { gb in
                let ap = ab.baseAddress!, gp = gb.baseAddress!
                cx.forRows(T) { r in for i in (r.lowerBound * qd)..<(r.upperBound * qd) { ap[i] *= Activation.sigmoid(gp[i]) } }
            } }
        }
        return cx.linear(attn, T, o, bias: oBias)
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
