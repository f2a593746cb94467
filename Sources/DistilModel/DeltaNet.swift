import DistilFormats
import DistilTensors
import Foundation

/// Qwen3.5's Gated DeltaNet token mixer (transformers' Qwen3_5GatedDeltaNet): a projection to
/// [q | k | v], a causal depthwise conv + SiLU over time, l2-normalised q and k (q scaled by
/// 1/sqrt(dk)), per value head the gated delta rule on a state S [dk x dv]
///     S ← exp(g_t) S;  S ← S + k_t (β_t (v_t − Sᵀ k_t))ᵀ;  o_t = Sᵀ q_t
/// with g_t = −exp(A_log) softplus(a_t + dt_bias) and β_t = sigmoid(b_t), then a per-head RMSNorm
/// (plain weight) times SiLU(z) and the output projection.
///
/// Long runs use the chunked form (chunks of 64 positions, the WY representation: a unit lower
/// triangular solve per chunk, the rest as sgemm); single tokens use the recurrence. Both compute
/// the same function; the tests hold decode against prefill.
struct DeltaNet {
    let qkv: Matrix, z: Matrix, b: Matrix, a: Matrix, out: Matrix
    /// Conv weights transposed to [K][convDim] so the time loop runs along channels.
    let convT: [Float]
    let dtBias: [Float], aLog: [Float]
    /// The per-head RMSNorm of the output (plain weight, not zero-centred).
    let norm: RMSNorm
    let nk: Int, nv: Int, dk: Int, dv: Int, K: Int
    var keyDim: Int { nk * dk }
    var valueDim: Int { nv * dv }
    var convDim: Int { 2 * nk * dk + nv * dv }

    static let chunk = 64
    /// Runs shorter than this use the recurrence.
    static let chunkedFrom = 16

    init(_ t: DeltaNetTensors, _ w: WeightStore, config h: HybridConfig, eps: Double) throws {
        nk = h.linearKeyHeads; nv = h.linearValueHeads; dk = h.linearKeyDim; dv = h.linearValueDim; K = h.convKernel
        let convDim = 2 * nk * dk + nv * dv
        qkv = try w.matrix(t.qkv); z = try w.matrix(t.z); b = try w.matrix(t.b); a = try w.matrix(t.a); out = try w.matrix(t.out)
        let conv = try w.float32(t.conv)
        var tr = [Float](repeating: 0, count: conv.count)
        for ch in 0..<convDim { for j in 0..<K { tr[j * convDim + ch] = conv[ch * K + j] } }
        convT = tr
        dtBias = try w.float32(t.dtBias)
        aLog = try w.float32(t.aLog)
        norm = RMSNorm(weight: try w.float32(t.norm), eps: eps)
    }

    /// What one sequence carries for this layer: the last K-1 conv inputs [(K-1) x convDim] and the
    /// recurrent state [valueHeads x keyDim x valueDim].
    func makeCache() -> LayerCache {
        .deltaNet(conv: FloatBuffer(max(0, K - 1) * convDim), recurrent: FloatBuffer(nv * dk * dv))
    }

    /// The mixer over the rows of `segments` (x: [rows x hidden]), carrying each sequence's conv and
    /// recurrent state of layer `li`.
    func callAsFunction(_ x: [Float], rows T: Int, _ segments: [Segment], layer li: Int, _ cx: Compute) -> [Float] {
        let mixed = cx.linear(x, T, qkv)
        let zz = cx.linear(x, T, z)
        let bb = cx.linear(x, T, b)
        let aa = cx.linear(x, T, a)
        var convOut = [Float](repeating: 0, count: T * convDim)
        var core = [Float](repeating: 0, count: T * valueDim)
        let seqs = segments.map { ($0.row0, $0.rows) }
        let states = segments.map { $0.state.caches[li].deltaNet }
        mixed.withUnsafeBufferPointer { mp in convOut.withUnsafeMutableBufferPointer { cp in core.withUnsafeMutableBufferPointer { op in
            for (si, (r0, n)) in seqs.enumerated() {
                convolve(mp.baseAddress! + r0 * convDim, rows: n, carry: states[si].conv, into: cp.baseAddress! + r0 * convDim, cx)
            }
            let cpp = UnsafePointer(cp.baseAddress!), opp = op.baseAddress!
            cx.forEach(seqs.count * nv) { task in
                let (r0, n) = seqs[task / nv], vh = task % nv
                let S = states[task / nv].recurrent + vh * dk * dv
                var g = [Double](repeating: 0, count: n), beta = [Float](repeating: 0, count: n)
                for t in 0..<n {
                    let av = Double(aa[(r0 + t) * nv + vh]) + Double(dtBias[vh])
                    let softplus = av > 20 ? av : log1p(exp(av))
                    g[t] = -exp(Double(aLog[vh])) * softplus
                    beta[t] = Activation.sigmoid(bb[(r0 + t) * nv + vh])
                }
                let (q, k) = normalisedQK(cpp + r0 * convDim, rows: n, valueHead: vh)
                let v = cpp + r0 * convDim + 2 * keyDim + vh * dv
                let o = opp + r0 * valueDim + vh * dv
                if n >= DeltaNet.chunkedFrom {
                    chunked(q: q, k: k, v: v, ldv: convDim, g: g, beta: beta, rows: n, state: S, out: o, ldo: valueDim)
                } else {
                    recurrentSteps(q: q, k: k, v: v, ldv: convDim, g: g, beta: beta, rows: n, state: S, out: o, ldo: valueDim)
                }
            }
        } } }
        norm.apply(&core, rows: T * nv, cx)
        core.withUnsafeMutableBufferPointer { cb in zz.withUnsafeBufferPointer { zb in
            let cp = cb.baseAddress!, zp = zb.baseAddress!, vd = valueDim
            cx.forRows(T) { r in for i in (r.lowerBound * vd)..<(r.upperBound * vd) { cp[i] *= Activation.silu(zp[i]) } }
        } }
        return cx.linear(core, T, out)
    }

    /// Causal depthwise conv over time + SiLU; the K-1 inputs before the first row come from `carry`
    /// [(K-1) x convDim], which is then replaced by the last K-1 inputs. Blocks of channels run in
    /// parallel (each value is computed the same way whatever the blocks).
    func convolve(_ input: UnsafePointer<Float>, rows T: Int, carry: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>,
                  _ cx: Compute) {
        let C = convDim, K = K
        let block = T >= 16 ? 256 : C
        convT.withUnsafeBufferPointer { w in
            let wp = w.baseAddress!
            cx.forEach((C + block - 1) / block) { bi in
                let c0 = bi * block, c1 = min(C, c0 + block)
                for t in 0..<T {
                    let o = out + t * C
                    for ch in c0..<c1 { o[ch] = 0 }
                    for j in 0..<K {
                        let src = t - (K - 1) + j          // negative: from the carried inputs
                        let s: UnsafePointer<Float> = src >= 0 ? input + src * C : UnsafePointer(carry + (K - 1 + src) * C)
                        let wj = wp + j * C
                        for ch in c0..<c1 { o[ch] += wj[ch] * s[ch] }
                    }
                    for ch in c0..<c1 { o[ch] = Activation.silu(o[ch]) }
                }
            }
        }
        guard K > 1 else { return }
        let keep = K - 1
        let old = [Float](UnsafeBufferPointer(start: carry, count: keep * C))
        old.withUnsafeBufferPointer { ob in
            for r in 0..<keep {
                let src = T - keep + r
                let from: UnsafePointer<Float> = src >= 0 ? input + src * C : ob.baseAddress! + (keep + src) * C
                (carry + r * C).update(from: from, count: C)
            }
        }
    }

    /// q and k of one value head's key head, l2-normalised (x · rsqrt(Σx² + 1e-6)), q also scaled by
    /// 1/sqrt(dk): [rows x dk] each.
    func normalisedQK(_ conv: UnsafePointer<Float>, rows n: Int, valueHead vh: Int) -> ([Float], [Float]) {
        let kh = vh / (nv / nk)
        var q = [Float](repeating: 0, count: n * dk), k = [Float](repeating: 0, count: n * dk)
        let scale = 1.0 / Double(dk).squareRoot()
        for t in 0..<n {
            let qs = conv + t * convDim + kh * dk, ks = conv + t * convDim + keyDim + kh * dk
            var sq = 0.0, sk = 0.0
            for i in 0..<dk { sq += Double(qs[i]) * Double(qs[i]); sk += Double(ks[i]) * Double(ks[i]) }
            let iq = Float(scale / (sq + 1e-6).squareRoot()), ik = Float(1.0 / (sk + 1e-6).squareRoot())
            for i in 0..<dk { q[t * dk + i] = qs[i] * iq; k[t * dk + i] = ks[i] * ik }
        }
        return (q, k)
    }

    /// The recurrence, one position at a time, in two passes over the state per position (it is
    /// the decode path's largest memory stream: valueHeads x 128 x 128 floats per layer and sequence):
    ///     mem = e^g (Sᵀk);  δ = β (v − mem);  S ← e^g S + k δᵀ and o = Sᵀq in the same pass.
    func recurrentSteps(q: [Float], k: [Float], v: UnsafePointer<Float>, ldv: Int, g: [Double], beta: [Float], rows n: Int,
                        state S: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldo: Int) {
        let dk = dk, dv = dv
        let delta = UnsafeMutablePointer<Float>.allocate(capacity: dv)
        defer { delta.deallocate() }
        q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in
            for t in 0..<n {
                let decay = Float(exp(g[t])), b = beta[t]
                let kt = kb.baseAddress! + t * dk, qt = qb.baseAddress! + t * dk
                delta.update(repeating: 0, count: dv)
                for i in 0..<dk { let ki = kt[i], row = S + i * dv; for j in 0..<dv { delta[j] += row[j] * ki } }
                let vt = v + t * ldv
                for j in 0..<dv { delta[j] = (vt[j] - decay * delta[j]) * b }
                let o = out + t * ldo
                o.update(repeating: 0, count: dv)
                for i in 0..<dk {
                    let ki = kt[i], qi = qt[i], row = S + i * dv
                    for j in 0..<dv { let s = decay * row[j] + ki * delta[j]; row[j] = s; o[j] += s * qi }
                }
            }
        } }
    }

    /// The chunked form. Within a chunk of n positions with cumulative log-decays G (G_i = Σ_{s≤i} g_s)
    /// and the state S₀ at its start, the delta-rule updates u_i = β_i (v_i − (e^{G_i} S₀ + Σ_{s<i}
    /// e^{G_i−G_s} k_s u_sᵀ)ᵀ k_i) solve (I + A) U = β V − diag(β e^G) K S₀ with A_is = β_i e^{G_i−G_s}
    /// k_i·k_s (s < i); then O = diag(e^G) Q S₀ + (QKᵀ ⊙ e^{G_i−G_s}, s ≤ i) U and
    /// S = e^{G_n} S₀ + (e^{G_n−G_s} K)ᵀ U. Every exponent is ≤ 0 (g ≤ 0): nothing overflows.
    func chunked(q: [Float], k: [Float], v: UnsafePointer<Float>, ldv: Int, g: [Double], beta: [Float], rows total: Int,
                 state S: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldo: Int) {
        let C = DeltaNet.chunk, W = dv + dk
        let rhs = UnsafeMutablePointer<Float>.allocate(capacity: C * W)
        let A = UnsafeMutablePointer<Float>.allocate(capacity: C * C)
        let P = UnsafeMutablePointer<Float>.allocate(capacity: C * C)
        let qs = UnsafeMutablePointer<Float>.allocate(capacity: C * dk)
        let kd = UnsafeMutablePointer<Float>.allocate(capacity: C * dk)
        defer { rhs.deallocate(); A.deallocate(); P.deallocate(); qs.deallocate(); kd.deallocate() }
        var G = [Double](repeating: 0, count: C)
        q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in
            var t0 = 0
            while t0 < total {
                let n = min(C, total - t0)
                let Q = qb.baseAddress! + t0 * dk, Kc = kb.baseAddress! + t0 * dk
                var acc = 0.0
                for i in 0..<n { acc += g[t0 + i]; G[i] = acc }
                // A = strictly lower β_i e^{G_i−G_s} k_i·k_s; P = lower (with diagonal) e^{G_i−G_s} q_i·k_s.
                BLAS.gemmNT(m: n, n: n, k: dk, a: Kc, lda: dk, b: Kc, ldb: dk, c: A, ldc: n)
                BLAS.gemmNT(m: n, n: n, k: dk, a: Q, lda: dk, b: Kc, ldb: dk, c: P, ldc: n)
                for i in 0..<n {
                    let bi = beta[t0 + i]
                    for s in 0..<n {
                        if s <= i {
                            let d = Float(exp(G[i] - G[s]))
                            P[i * n + s] *= d
                            A[i * n + s] = s < i ? A[i * n + s] * d * bi : 0
                        } else {
                            P[i * n + s] = 0; A[i * n + s] = 0
                        }
                    }
                }
                // Right-hand sides [β v | β e^G k], solved in place: [U₀ | Wk].
                for i in 0..<n {
                    let bi = beta[t0 + i], e = Float(exp(G[i])) * bi
                    let r = rhs + i * W, vi = v + (t0 + i) * ldv, ki = Kc + i * dk
                    for j in 0..<dv { r[j] = vi[j] * bi }
                    for j in 0..<dk { r[dv + j] = ki[j] * e }
                }
                BLAS.solveUnitLower(m: n, n: W, l: A, ldl: n, b: rhs, ldb: W)
                // U = U₀ − Wk S₀ (in the first dv columns of rhs).
                BLAS.gemmNN(m: n, n: dv, k: dk, a: rhs + dv, lda: W, b: S, ldb: dv, c: rhs, ldc: W, alpha: -1, beta: 1)
                // O = (e^G ⊙ Q) S₀ + P U.
                for i in 0..<n { let e = Float(exp(G[i])); for j in 0..<dk { qs[i * dk + j] = Q[i * dk + j] * e } }
                let o = out + t0 * ldo
                BLAS.gemmNN(m: n, n: dv, k: dk, a: qs, lda: dk, b: S, ldb: dv, c: o, ldc: ldo)
                BLAS.gemmNN(m: n, n: dv, k: n, a: P, lda: n, b: rhs, ldb: W, c: o, ldc: ldo, beta: 1)
                // S = e^{G_n} S₀ + (e^{G_n−G_s} K)ᵀ U.
                let last = G[n - 1]
                for s in 0..<n { let e = Float(exp(last - G[s])); for j in 0..<dk { kd[s * dk + j] = Kc[s * dk + j] * e } }
                let decay = Float(exp(last))
                for i in 0..<(dk * dv) { S[i] *= decay }
                BLAS.gemmTN(m: dk, n: dv, k: n, a: kd, lda: dk, b: rhs, ldb: W, c: S, ldc: dv, beta: 1)
                t0 += n
            }
        } }
    }
}

/// The tensors of a Gated DeltaNet mixer (under `…linear_attn.`).
struct DeltaNetTensors {
    var qkv: TensorSpec, z: TensorSpec, b: TensorSpec, a: TensorSpec
    /// Depthwise, no bias: [convDim, 1, kernel].
    var conv: TensorSpec
    var dtBias: TensorSpec, aLog: TensorSpec, norm: TensorSpec, out: TensorSpec

    static func declare(_ p: String, _ h: HybridConfig, hidden H: Int, _ l: inout TensorList) -> DeltaNetTensors {
        let keyDim = h.linearKeyHeads * h.linearKeyDim, valueDim = h.linearValueHeads * h.linearValueDim
        let convDim = 2 * keyDim + valueDim, q = p + "linear_attn."
        return DeltaNetTensors(
            qkv: l.add(q + "in_proj_qkv.weight", [convDim, H]), z: l.add(q + "in_proj_z.weight", [valueDim, H]),
            b: l.add(q + "in_proj_b.weight", [h.linearValueHeads, H]), a: l.add(q + "in_proj_a.weight", [h.linearValueHeads, H]),
            conv: l.add(q + "conv1d.weight", [convDim, 1, h.convKernel]), dtBias: l.add(q + "dt_bias", [h.linearValueHeads]),
            aLog: l.add(q + "A_log", [h.linearValueHeads]), norm: l.add(q + "norm.weight", [h.linearValueDim]),
            out: l.add(q + "out_proj.weight", [H, valueDim]))
    }
}

