import DistilFormats
import DistilTensors
import Foundation

/// Qwen3.5's text model (transformers' modeling_qwen3_5.py / modeling_qwen3_5_moe.py): layers of
/// Gated DeltaNet linear attention and gated full attention in the pattern `layer_types` gives,
/// zero-centred RMSNorm ((1 + w) * x / rms), a SwiGLU MLP (qwen3_5) or a mixture of experts with a
/// gated shared expert (qwen3_5_moe). Both checkpoint layouts: *ForCausalLM (model.*) and
/// *ForConditionalGeneration (model.language_model.*; the vision tower and MTP head are not loaded).
final class HybridTransformer: Network {
    let c: ModelConfig
    let h: HybridConfig
    let cx: Compute
    let store: WeightStore
    var config: ModelConfig { c }
    let embed: Matrix
    let head: Matrix
    let finalNorm: [Float]
    let layers: [HybridLayer]
    let rotary: Rotary
    let rotaryDim: Int

    /// Gated full attention: q_proj gives per head [query | gate].
    struct Attention {
        var q: Matrix, k: Matrix, v: Matrix, o: Matrix
        var qNorm: [Float], kNorm: [Float]
    }

    struct HybridLayer {
        var attention: Attention?
        var delta: DeltaNet?
        var inputNorm: [Float], postNorm: [Float]
        var mlp: (gate: Matrix, up: Matrix, down: Matrix)?
        var moe: MoEBlock?
    }

    final class State: SequenceState {
        var length = 0
        let capacity: Int
        let k: [FloatBuffer], v: [FloatBuffer]  // attention layers: [capacity x kvHeads*headDim]
        let conv: [FloatBuffer]                  // linear layers: last K-1 inputs [(K-1) x convDim]
        let recurrent: [FloatBuffer]             // linear layers: [valueHeads x keyDim x valueDim]
        init(_ n: HybridTransformer, capacity: Int) {
            self.capacity = capacity
            let c = n.c, h = n.h
            let convDim = 2 * h.linearKeyHeads * h.linearKeyDim + h.linearValueHeads * h.linearValueDim
            k = h.layerTypes.map { FloatBuffer($0 == "full_attention" ? capacity * c.kvHeads * c.headDim : 0) }
            v = h.layerTypes.map { FloatBuffer($0 == "full_attention" ? capacity * c.kvHeads * c.headDim : 0) }
            conv = h.layerTypes.map { FloatBuffer($0 == "linear_attention" ? max(0, h.convKernel - 1) * convDim : 0) }
            recurrent = h.layerTypes.map { FloatBuffer($0 == "linear_attention" ? h.linearValueHeads * h.linearKeyDim * h.linearValueDim : 0) }
        }
    }

    func makeState(capacity: Int) -> SequenceState { State(self, capacity: capacity) }

    init(config c: ModelConfig, weights w: WeightStore, compute: Compute) throws {
        self.c = c
        h = c.hybrid!
        cx = compute
        store = w
        let prefix = w.has("model.language_model.embed_tokens.weight") ? "model.language_model." : "model."
        let H = c.hiddenSize, hd = c.headDim, I = c.intermediateSize
        (embed, head, finalNorm) = try Ops.loadEnds(w, c, prefix: prefix)
        var ls: [HybridLayer] = []
        for i in 0..<c.layers {
            let p = "\(prefix)layers.\(i)."
            var layer = HybridLayer(attention: nil, delta: nil,
                                    inputNorm: try w.float32(p + "input_layernorm.weight", shape: [H]),
                                    postNorm: try w.float32(p + "post_attention_layernorm.weight", shape: [H]),
                                    mlp: nil, moe: nil)
            if let m = h.moe {
                layer.moe = try MoEBlock(w, prefix: p + "mlp.", config: m, hidden: H)
            } else {
                layer.mlp = (try w.matrix(p + "mlp.gate_proj.weight", shape: [I, H]),
                             try w.matrix(p + "mlp.up_proj.weight", shape: [I, H]),
                             try w.matrix(p + "mlp.down_proj.weight", shape: [H, I]))
            }
            if h.layerTypes[i] == "full_attention" {
                layer.attention = Attention(
                    q: try w.matrix(p + "self_attn.q_proj.weight", shape: [c.heads * hd * 2, H]),
                    k: try w.matrix(p + "self_attn.k_proj.weight", shape: [c.kvHeads * hd, H]),
                    v: try w.matrix(p + "self_attn.v_proj.weight", shape: [c.kvHeads * hd, H]),
                    o: try w.matrix(p + "self_attn.o_proj.weight", shape: [H, c.heads * hd]),
                    qNorm: try w.float32(p + "self_attn.q_norm.weight", shape: [hd]),
                    kNorm: try w.float32(p + "self_attn.k_norm.weight", shape: [hd]))
            } else {
                layer.delta = try DeltaNet(w, prefix: p + "linear_attn.", config: h, hidden: H)
            }
            ls.append(layer)
        }
        layers = ls
        rotaryDim = Int(Double(hd) * h.partialRotaryFactor) / 2 * 2
        rotary = Rotary(config: c, dim: rotaryDim)
    }

    func run(_ tokens: [Int], state st: SequenceState) throws -> [Float] {
        let state = st as! State
        guard state.length + tokens.count <= state.capacity else {
            throw DistilError("sequence of \(state.length + tokens.count) tokens exceeds the state's \(state.capacity)", kind: .runtime)
        }
        let x = try forward(tokens, [state])
        state.length += tokens.count
        return x
    }

    /// One token for each of B sequences: projections, the MLP and the experts run once for the B
    /// rows (each expert's weights read once per step for the whole batch); attention and DeltaNet
    /// run per sequence on its own state.
    func step(_ tokens: [Int], states sts: [SequenceState]) throws -> [Float] {
        let states = sts.map { $0 as! State }
        for s in states where s.length + 1 > s.capacity {
            throw DistilError("sequence of \(s.length + 1) tokens exceeds the state's \(s.capacity)", kind: .runtime)
        }
        let x = try forward(tokens, states)
        for s in states { s.length += 1 }
        return x
    }

    /// The layers over T rows: one sequence of T tokens (states.count == 1) or one token of each of
    /// T sequences. Lengths are advanced by the caller.
    func forward(_ tokens: [Int], _ states: [State]) throws -> [Float] {
        let T = tokens.count, H = c.hiddenSize
        var x = try Ops.embed(tokens, embed, c)
        for (li, l) in layers.enumerated() {
            var hcur = x
            Ops.rmsNorm(&hcur, rows: T, n: H, weight: l.inputNorm, eps: c.rmsNormEps, zeroCentered: true, cx)
            let mix: [Float]
            if let a = l.attention {
                mix = attention(a, hcur, rows: T, states, li)
            } else {
                mix = l.delta!.run(hcur, rows: T, conv: states.map { $0.conv[li].pointer },
                                   recurrent: states.map { $0.recurrent[li].pointer }, eps: c.rmsNormEps, cx)
            }
            cx.add(&x, mix, rows: T, n: H)
            hcur = x
            Ops.rmsNorm(&hcur, rows: T, n: H, weight: l.postNorm, eps: c.rmsNormEps, zeroCentered: true, cx)
            let d = l.moe.map { $0.run(hcur, T, hidden: H, cx) } ?? cx.swiglu(hcur, T, gate: l.mlp!.gate, up: l.mlp!.up, down: l.mlp!.down)
            cx.add(&x, d, rows: T, n: H)
        }
        Ops.rmsNorm(&x, rows: T, n: H, weight: finalNorm, eps: c.rmsNormEps, zeroCentered: true, cx)
        return x
    }

    /// Gated full attention: q/k RMSNorm (zero-centred), partial rotary, GQA, sigmoid output gate.
    func attention(_ a: Attention, _ x: [Float], rows T: Int, _ states: [State], _ li: Int) -> [Float] {
        let hd = c.headDim, nH = c.heads, nKV = c.kvHeads, qd = nH * hd
        let qg = cx.linear(x, T, a.q)
        var q = [Float](repeating: 0, count: T * qd), gate = [Float](repeating: 0, count: T * qd)
        q.withUnsafeMutableBufferPointer { qb in gate.withUnsafeMutableBufferPointer { gb in qg.withUnsafeBufferPointer { src in
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
        var k = cx.linear(x, T, a.k)
        let v = cx.linear(x, T, a.v)
        Ops.rmsNorm(&q, rows: T * nH, n: hd, weight: a.qNorm, eps: c.rmsNormEps, zeroCentered: true, cx)
        Ops.rmsNorm(&k, rows: T * nKV, n: hd, weight: a.kNorm, eps: c.rmsNormEps, zeroCentered: true, cx)
        let seqs: [AttentionSequence] = states.count == 1
            ? [AttentionSequence(keys: states[0].k[li].pointer, values: states[0].v[li].pointer, row0: 0, rows: T, position: states[0].length)]
            : states.enumerated().map { AttentionSequence(keys: $1.k[li].pointer, values: $1.v[li].pointer, row0: $0, rows: 1, position: $1.length) }
        var attn = Ops.attend(q: &q, k: &k, v: v, rows: T, sequences: seqs, rotary: rotary, heads: nH, kvHeads: nKV, headDim: hd, cx)
        attn.withUnsafeMutableBufferPointer { ab in gate.withUnsafeBufferPointer { gb in
            let ap = ab.baseAddress!, gp = gb.baseAddress!
            cx.forRows(T) { r in for i in (r.lowerBound * qd)..<(r.upperBound * qd) { ap[i] *= Ops.sigmoid(gp[i]) } }
        } }
        return cx.linear(attn, T, a.o)
    }

    func logits(_ hidden: [Float], from: Int, rows: Int, into out: UnsafeMutablePointer<Float>) {
        hidden.withUnsafeBufferPointer { hp in
            cx.matmul(hp.baseAddress! + from * c.hiddenSize, rows: rows, head, into: out, ldy: c.vocabSize)
        }
    }
}

/// A zero-initialised f32 buffer with a stable address (decoding state handed to kernels).
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }
    deinit { pointer.deallocate() }
}
