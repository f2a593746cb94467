import DistilFormats
import DistilTensors
import Foundation

/// Qwen3.5's text model (transformers' modeling_qwen3_5.py): layers of Gated DeltaNet linear
/// attention and gated full attention in the pattern `layer_types` gives, zero-centred RMSNorm
/// ((1 + w) * x / rms), a SwiGLU MLP. Both checkpoint layouts: *ForCausalLM (model.*) and
/// *ForConditionalGeneration (model.language_model.*; the vision tower and MTP head are not loaded).
final class HybridTransformer: Network {
    let c: ModelConfig
    let h: HybridConfig
    var config: ModelConfig { c }
    let embed: [Float]
    let lmHead: [Float]?
    let finalNorm: [Float]
    let layers: [HybridLayer]
    let rotaryDim: Int
    let invFreq: [Double]

    struct Attention {
        var q: [Float]          // [heads * headDim * 2, H]: per head [query | gate]
        var k: [Float], v: [Float], o: [Float]
        var qNorm: [Float], kNorm: [Float]
    }

    struct DeltaNet {
        var qkv: [Float]        // [2 * keyDim + valueDim, H]
        var z: [Float]          // [valueDim, H]
        var b: [Float], a: [Float]   // [valueHeads, H]
        var conv: [Float]       // [convDim, K]
        var dtBias: [Float], aLog: [Float]   // [valueHeads]
        var norm: [Float]       // [valueDim per head]
        var out: [Float]        // [H, valueDim]
    }

    /// Routed experts (softmax router, top-k renormalised) plus a sigmoid-gated shared expert.
    struct MoE {
        var router: [Float]             // [E, H]
        var gateUp: [[Float]]           // per expert [2I, H]: gate rows then up rows
        var down: [[Float]]             // per expert [H, I]
        var sharedGate: [Float], sharedUp: [Float], sharedDown: [Float]
        var sharedExpertGate: [Float]   // [1, H]
    }

    struct HybridLayer {
        var attention: Attention?
        var delta: DeltaNet?
        var inputNorm: [Float], postNorm: [Float]
        var gate: [Float], up: [Float], down: [Float]
        var moe: MoE?
    }

    final class State: SequenceState {
        var length = 0
        let capacity: Int
        var k: [[Float]], v: [[Float]]          // attention layers: [capacity x kvHeads*headDim]
        var conv: [[Float]]                      // linear layers: last K-1 inputs [(K-1) x convDim]
        var recurrent: [[Float]]                 // linear layers: [valueHeads x keyDim x valueDim]
        init(_ n: HybridTransformer, capacity: Int) {
            self.capacity = capacity
            let c = n.c, h = n.h
            let convDim = 2 * h.linearKeyHeads * h.linearKeyDim + h.linearValueHeads * h.linearValueDim
            k = h.layerTypes.map { $0 == "full_attention" ? [Float](repeating: 0, count: capacity * c.kvHeads * c.headDim) : [] }
            v = k
            conv = h.layerTypes.map { $0 == "linear_attention" ? [Float](repeating: 0, count: (h.convKernel - 1) * convDim) : [] }
            recurrent = h.layerTypes.map { $0 == "linear_attention" ? [Float](repeating: 0, count: h.linearValueHeads * h.linearKeyDim * h.linearValueDim) : [] }
        }
    }

    func makeState(capacity: Int) -> SequenceState { State(self, capacity: capacity) }

    init(config c: ModelConfig, weights w: WeightStore) throws {
        self.c = c
        h = c.hybrid!
        let prefix = w.has("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        let H = c.hiddenSize, hd = c.headDim, I = c.intermediateSize
        (embed, lmHead, finalNorm) = try Ops.loadEnds(w, c, prefix: prefix)
        let keyDim = h.linearKeyHeads * h.linearKeyDim, valueDim = h.linearValueHeads * h.linearValueDim
        let convDim = 2 * keyDim + valueDim
        var ls: [HybridLayer] = []
        for i in 0..<c.layers {
            let p = "\(prefix)layers.\(i)."
            var layer = HybridLayer(attention: nil, delta: nil,
                                    inputNorm: try w.float32(p + "input_layernorm.weight", shape: [H]),
                                    postNorm: try w.float32(p + "post_attention_layernorm.weight", shape: [H]),
                                    gate: [], up: [], down: [], moe: nil)
            if let m = c.hybrid!.moe {
                layer.moe = try HybridTransformer.loadMoE(w, p + "mlp.", m, H)
            } else {
                layer.gate = try w.float32(p + "mlp.gate_proj.weight", shape: [I, H])
                layer.up = try w.float32(p + "mlp.up_proj.weight", shape: [I, H])
                layer.down = try w.float32(p + "mlp.down_proj.weight", shape: [H, I])
            }
            if h.layerTypes[i] == "full_attention" {
                layer.attention = Attention(
                    q: try w.float32(p + "self_attn.q_proj.weight", shape: [c.heads * hd * 2, H]),
                    k: try w.float32(p + "self_attn.k_proj.weight", shape: [c.kvHeads * hd, H]),
                    v: try w.float32(p + "self_attn.v_proj.weight", shape: [c.kvHeads * hd, H]),
                    o: try w.float32(p + "self_attn.o_proj.weight", shape: [H, c.heads * hd]),
                    qNorm: try w.float32(p + "self_attn.q_norm.weight", shape: [hd]),
                    kNorm: try w.float32(p + "self_attn.k_norm.weight", shape: [hd]))
            } else {
                let q = p + "linear_attn."
                layer.delta = DeltaNet(
                    qkv: try w.float32(q + "in_proj_qkv.weight", shape: [convDim, H]),
                    z: try w.float32(q + "in_proj_z.weight", shape: [valueDim, H]),
                    b: try w.float32(q + "in_proj_b.weight", shape: [h.linearValueHeads, H]),
                    a: try w.float32(q + "in_proj_a.weight", shape: [h.linearValueHeads, H]),
                    conv: try w.float32(q + "conv1d.weight", shape: [convDim, 1, h.convKernel]),
                    dtBias: try w.float32(q + "dt_bias", shape: [h.linearValueHeads]),
                    aLog: try w.float32(q + "A_log", shape: [h.linearValueHeads]),
                    norm: try w.float32(q + "norm.weight", shape: [h.linearValueDim]),
                    out: try w.float32(q + "out_proj.weight", shape: [H, valueDim]))
            }
            ls.append(layer)
        }
        layers = ls
        let rd = Int(Double(hd) * c.hybrid!.partialRotaryFactor) / 2 * 2
        rotaryDim = rd
        let theta = c.ropeTheta
        invFreq = (0..<(rd / 2)).map { 1.0 / pow(theta, Double(2 * $0) / Double(rd)) }
    }

    /// One token for each of B sequences: token mixing (attention, DeltaNet) runs per sequence on its
    /// own state; the MLP or MoE runs once for the B rows, so each expert's weights are read once per
    /// step for the whole batch.
    func step(_ tokens: [Int], states sts: [SequenceState]) throws -> [Float] {
        let states = sts.map { $0 as! State }
        let B = tokens.count, H = c.hiddenSize, I = c.intermediateSize
        for s in states where s.length + 1 > s.capacity {
            throw DistilError("sequence of \(s.length + 1) tokens exceeds the state's \(s.capacity)", kind: .runtime)
        }
        var x = [Float](repeating: 0, count: B * H)
        for (r, t) in tokens.enumerated() {
            guard t >= 0 && t < c.vocabSize else { throw DistilError.input("tokens", "token id \(t) outside the vocabulary (\(c.vocabSize))") }
            for j in 0..<H { x[r * H + j] = embed[t * H + j] }
        }
        for (li, l) in layers.enumerated() {
            var hcur = x
            Ops.rmsNorm(&hcur, rows: B, n: H, weight: l.inputNorm, eps: c.rmsNormEps, zeroCentered: true)
            for b in 0..<B {
                let row = Array(hcur[(b * H)..<((b + 1) * H)])
                let mix = l.attention != nil ? attention(l.attention!, row, 1, states[b], li) : deltaNet(l.delta!, row, 1, states[b], li)
                for j in 0..<H { x[b * H + j] += mix[j] }
            }
            hcur = x
            Ops.rmsNorm(&hcur, rows: B, n: H, weight: l.postNorm, eps: c.rmsNormEps, zeroCentered: true)
            let d = l.moe.map { mixture($0, hcur, B) } ?? Ops.swiglu(hcur, B, gate: l.gate, up: l.up, down: l.down, hidden: H, inter: I)
            for i in 0..<(B * H) { x[i] += d[i] }
        }
        for s in states { s.length += 1 }
        Ops.rmsNorm(&x, rows: B, n: H, weight: finalNorm, eps: c.rmsNormEps, zeroCentered: true)
        return x
    }

    func run(_ tokens: [Int], state st: SequenceState) throws -> [Float] {
        let state = st as! State
        let T = tokens.count, H = c.hiddenSize, I = c.intermediateSize
        guard state.length + T <= state.capacity else {
            throw DistilError("sequence of \(state.length + T) tokens exceeds the state's \(state.capacity)", kind: .runtime)
        }
        var x = [Float](repeating: 0, count: T * H)
        for (r, t) in tokens.enumerated() {
            guard t >= 0 && t < c.vocabSize else { throw DistilError.input("tokens", "token id \(t) outside the vocabulary (\(c.vocabSize))") }
            for j in 0..<H { x[r * H + j] = embed[t * H + j] }
        }
        for (li, l) in layers.enumerated() {
            var hcur = x
            Ops.rmsNorm(&hcur, rows: T, n: H, weight: l.inputNorm, eps: c.rmsNormEps, zeroCentered: true)
            let mix = l.attention != nil ? attention(l.attention!, hcur, T, state, li) : deltaNet(l.delta!, hcur, T, state, li)
            for i in 0..<(T * H) { x[i] += mix[i] }
            hcur = x
            Ops.rmsNorm(&hcur, rows: T, n: H, weight: l.postNorm, eps: c.rmsNormEps, zeroCentered: true)
            let d: [Float]
            if let moe = l.moe {
                d = mixture(moe, hcur, T)
            } else {
                d = Ops.swiglu(hcur, T, gate: l.gate, up: l.up, down: l.down, hidden: H, inter: I)
            }
            for i in 0..<(T * H) { x[i] += d[i] }
        }
        state.length += T
        Ops.rmsNorm(&x, rows: T, n: H, weight: finalNorm, eps: c.rmsNormEps, zeroCentered: true)
        return x
    }

    /// Gated full attention: q/k RMSNorm (zero-centred), partial rotary, GQA, sigmoid output gate.
    func attention(_ a: Attention, _ x: [Float], _ T: Int, _ state: State, _ li: Int) -> [Float] {
        let H = c.hiddenSize, hd = c.headDim, nH = c.heads, nKV = c.kvHeads, qd = nH * hd, kvd = nKV * hd
        let p0 = state.length
        let qg = Ops.linear(x, T, a.q, out: 2 * qd, inDim: H)
        var q = [Float](repeating: 0, count: T * qd), gate = [Float](repeating: 0, count: T * qd)
        for r in 0..<T {
            for head in 0..<nH {
                for j in 0..<hd {
                    q[(r * nH + head) * hd + j] = qg[r * 2 * qd + head * 2 * hd + j]
                    gate[(r * nH + head) * hd + j] = qg[r * 2 * qd + head * 2 * hd + hd + j]
                }
            }
        }
        var k = Ops.linear(x, T, a.k, out: kvd, inDim: H)
        let v = Ops.linear(x, T, a.v, out: kvd, inDim: H)
        Ops.rmsNorm(&q, rows: T * nH, n: hd, weight: a.qNorm, eps: c.rmsNormEps, zeroCentered: true)
        Ops.rmsNorm(&k, rows: T * nKV, n: hd, weight: a.kNorm, eps: c.rmsNormEps, zeroCentered: true)
        rope(&q, rows: T, heads: nH, p0: p0)
        rope(&k, rows: T, heads: nKV, p0: p0)
        for i in 0..<(T * kvd) { state.k[li][p0 * kvd + i] = k[i]; state.v[li][p0 * kvd + i] = v[i] }
        var attn = Ops.causalAttention(q: q, kCache: state.k[li], vCache: state.v[li], t: T, p0: p0,
                                       heads: nH, kvHeads: nKV, headDim: hd)
        for i in 0..<(T * qd) { attn[i] *= Ops.sigmoid(gate[i]) }
        return Ops.linear(attn, T, a.o, out: H, inDim: qd)
    }

    /// Rotate-half rotary on the first rotaryDim dims of each head; the rest pass through.
    func rope(_ x: inout [Float], rows: Int, heads: Int, p0: Int) {
        let hd = c.headDim, half = rotaryDim / 2
        for r in 0..<rows {
            let pos = Double(p0 + r)
            for i in 0..<half {
                let ang = pos * invFreq[i]
                let cs = Float(cos(ang)), sn = Float(sin(ang))
                for head in 0..<heads {
                    let b = (r * heads + head) * hd
                    let x1 = x[b + i], x2 = x[b + i + half]
                    x[b + i] = x1 * cs - x2 * sn
                    x[b + i + half] = x2 * cs + x1 * sn
                }
            }
        }
    }

    /// Gated DeltaNet, recurrent form (the same function as transformers' chunked prefill):
    /// depthwise causal conv + SiLU over [q | k | v], l2-normalised q and k, q scaled by 1/sqrt(dk),
    /// per value head S <- S * exp(g); S <- S + k (beta (v - S^T k))^T; out = S^T q; then a gated
    /// RMSNorm (plain weight) times SiLU(z), and the output projection.
    func deltaNet(_ d: DeltaNet, _ x: [Float], _ T: Int, _ state: State, _ li: Int) -> [Float] {
        let H = c.hiddenSize, nk = h.linearKeyHeads, nv = h.linearValueHeads, dk = h.linearKeyDim, dv = h.linearValueDim
        let keyDim = nk * dk, valueDim = nv * dv, convDim = 2 * keyDim + valueDim, K = h.convKernel
        let mixed = Ops.linear(x, T, d.qkv, out: convDim, inDim: H)
        let z = Ops.linear(x, T, d.z, out: valueDim, inDim: H)
        let b = Ops.linear(x, T, d.b, out: nv, inDim: H)
        let a = Ops.linear(x, T, d.a, out: nv, inDim: H)
        // Causal depthwise conv over time, with the last K-1 inputs carried in the state.
        var conv = [Float](repeating: 0, count: T * convDim)
        for t in 0..<T {
            for ch in 0..<convDim {
                var s: Float = 0
                for j in 0..<K {
                    let src = t - (K - 1) + j   // time index; negative reaches into the carried state
                    let v: Float = src >= 0 ? mixed[src * convDim + ch] : state.conv[li][(K - 1 + src) * convDim + ch]
                    s += d.conv[ch * K + j] * v
                }
                conv[t * convDim + ch] = Ops.silu(s)
            }
        }
        if K > 1 {   // keep the last K-1 inputs
            var carry = state.conv[li]
            for r in 0..<(K - 1) {
                let src = T - (K - 1) + r
                for ch in 0..<convDim {
                    carry[r * convDim + ch] = src >= 0 ? mixed[src * convDim + ch] : state.conv[li][(K - 1 + src) * convDim + ch]
                }
            }
            state.conv[li] = carry
        }
        var core = [Float](repeating: 0, count: T * valueDim)
        let ratio = nv / nk
        let qScale = Float(1.0 / Double(dk).squareRoot())
        var qv = [Float](repeating: 0, count: dk), kv = [Float](repeating: 0, count: dk), mem = [Float](repeating: 0, count: dv)
        state.recurrent[li].withUnsafeMutableBufferPointer { S in
            for t in 0..<T {
                for vh in 0..<nv {
                    let kh = vh / ratio
                    // l2norm(x) = x * rsqrt(sum(x^2) + 1e-6)
                    var sq = 0.0, sk = 0.0
                    for i in 0..<dk {
                        qv[i] = conv[t * convDim + kh * dk + i]; kv[i] = conv[t * convDim + keyDim + kh * dk + i]
                        sq += Double(qv[i]) * Double(qv[i]); sk += Double(kv[i]) * Double(kv[i])
                    }
                    let iq = Float(1.0 / (sq + 1e-6).squareRoot()) * qScale, ik = Float(1.0 / (sk + 1e-6).squareRoot())
                    for i in 0..<dk { qv[i] *= iq; kv[i] *= ik }
                    let aa = Double(a[t * nv + vh]) + Double(d.dtBias[vh])
                    let softplus = aa > 20 ? aa : log1p(exp(aa))
                    let decay = Float(exp(-exp(Double(d.aLog[vh])) * softplus))
                    let beta = Ops.sigmoid(b[t * nv + vh])
                    let base = vh * dk * dv
                    for i in 0..<(dk * dv) { S[base + i] *= decay }
                    for j in 0..<dv { mem[j] = 0 }
                    for i in 0..<dk { let ki = kv[i]; for j in 0..<dv { mem[j] += S[base + i * dv + j] * ki } }
                    for j in 0..<dv { mem[j] = (conv[t * convDim + 2 * keyDim + vh * dv + j] - mem[j]) * beta }
                    for i in 0..<dk { let ki = kv[i]; for j in 0..<dv { S[base + i * dv + j] += ki * mem[j] } }
                    for j in 0..<dv {
                        var o: Float = 0
                        for i in 0..<dk { o += S[base + i * dv + j] * qv[i] }
                        core[t * valueDim + vh * dv + j] = o
                    }
                }
            }
        }
        // Gated RMSNorm per value head (plain weight), times SiLU(z).
        Ops.rmsNorm(&core, rows: T * nv, n: dv, weight: d.norm, eps: c.rmsNormEps)
        for i in 0..<(T * valueDim) { core[i] *= Ops.silu(z[i]) }
        return Ops.linear(core, T, d.out, out: H, inDim: valueDim)
    }

    /// Experts fused (experts.gate_up_proj [E, 2I, H], experts.down_proj [E, H, I]) or stored per expert
    /// (experts.{e}.gate_proj / up_proj / down_proj).
    static func loadMoE(_ w: WeightStore, _ p: String, _ m: MoEConfig, _ H: Int) throws -> MoE {
        let E = m.experts, I = m.intermediate
        var gateUp: [[Float]] = [], down: [[Float]] = []
        if w.has(p + "experts.gate_up_proj") {
            let gu = try w.float32(p + "experts.gate_up_proj", shape: [E, 2 * I, H])
            let dn = try w.float32(p + "experts.down_proj", shape: [E, H, I])
            for e in 0..<E {
                gateUp.append(Array(gu[(e * 2 * I * H)..<((e + 1) * 2 * I * H)]))
                down.append(Array(dn[(e * H * I)..<((e + 1) * H * I)]))
            }
        } else {
            for e in 0..<E {
                let q = p + "experts.\(e)."
                gateUp.append(try w.float32(q + "gate_proj.weight", shape: [I, H]) + w.float32(q + "up_proj.weight", shape: [I, H]))
                down.append(try w.float32(q + "down_proj.weight", shape: [H, I]))
            }
        }
        let S = m.sharedIntermediate
        return MoE(router: try w.float32(p + "gate.weight", shape: [E, H]), gateUp: gateUp, down: down,
                   sharedGate: try w.float32(p + "shared_expert.gate_proj.weight", shape: [S, H]),
                   sharedUp: try w.float32(p + "shared_expert.up_proj.weight", shape: [S, H]),
                   sharedDown: try w.float32(p + "shared_expert.down_proj.weight", shape: [H, S]),
                   sharedExpertGate: try w.float32(p + "shared_expert_gate.weight", shape: [1, H]))
    }

    /// The sparse MoE block over T rows: each expert's weights are used once for all the rows routed to it.
    func mixture(_ m: MoE, _ x: [Float], _ T: Int) -> [Float] {
        let H = c.hiddenSize, cfg = c.hybrid!.moe!, E = cfg.experts, I = cfg.intermediate
        let logits = Ops.linear(x, T, m.router, out: E, inDim: H)
        var routed: [[(row: Int, weight: Float)]] = Array(repeating: [], count: E)
        for r in 0..<T {
            var mx = -Float.infinity
            for e in 0..<E { mx = max(mx, logits[r * E + e]) }
            var probs = [Double](repeating: 0, count: E)
            var sum = 0.0
            for e in 0..<E { probs[e] = exp(Double(logits[r * E + e] - mx)); sum += probs[e] }
            for e in 0..<E { probs[e] /= sum }
            let top = (0..<E).sorted { probs[$0] != probs[$1] ? probs[$0] > probs[$1] : $0 < $1 }.prefix(cfg.topK)
            let norm = top.reduce(0.0) { $0 + probs[$1] }
            for e in top { routed[e].append((r, Float(probs[e] / norm))) }
        }
        var out = [Float](repeating: 0, count: T * H)
        for e in 0..<E where !routed[e].isEmpty {
            let rows = routed[e]
            var xs = [Float](repeating: 0, count: rows.count * H)
            for (k, rw) in rows.enumerated() { for j in 0..<H { xs[k * H + j] = x[rw.row * H + j] } }
            let gu = Ops.linear(xs, rows.count, m.gateUp[e], out: 2 * I, inDim: H)
            var act = [Float](repeating: 0, count: rows.count * I)
            for k in 0..<rows.count { for j in 0..<I { act[k * I + j] = Ops.silu(gu[k * 2 * I + j]) * gu[k * 2 * I + I + j] } }
            let y = Ops.linear(act, rows.count, m.down[e], out: H, inDim: I)
            for (k, rw) in rows.enumerated() { for j in 0..<H { out[rw.row * H + j] += y[k * H + j] * rw.weight } }
        }
        let shared = Ops.swiglu(x, T, gate: m.sharedGate, up: m.sharedUp, down: m.sharedDown, hidden: H, inter: cfg.sharedIntermediate)
        let g = Ops.linear(x, T, m.sharedExpertGate, out: 1, inDim: H)
        for r in 0..<T { let s = Ops.sigmoid(g[r]); for j in 0..<H { out[r * H + j] += s * shared[r * H + j] } }
        return out
    }

    func logits(_ hidden: [Float], from: Int, rows: Int, into out: UnsafeMutablePointer<Float>) {
        let H = c.hiddenSize
        (lmHead ?? embed).withUnsafeBufferPointer { wp in hidden.withUnsafeBufferPointer { hp in
            BLAS.gemmNT(m: rows, n: c.vocabSize, k: H, a: hp.baseAddress! + from * H, lda: H, b: wp.baseAddress!, ldb: H, c: out, ldc: c.vocabSize)
        } }
    }
}
