import DistilFormats
import DistilTensors
import Foundation

/// A sparse mixture-of-experts block: a softmax router, the top-k experts per row (probabilities
/// renormalised over the k when `normTopK`), SwiGLU experts, and optionally a shared expert behind a
/// sigmoid gate (Qwen3.5-MoE; Qwen3-MoE has none).
struct MoEBlock {
    let config: MoEConfig
    let router: Matrix                 // [E, H]
    /// Per expert: gate and up projections ([I, H] each) and down [H, I].
    let gate: [Matrix], up: [Matrix], down: [Matrix]
    let shared: (gate: Matrix, up: Matrix, down: Matrix, expertGate: Matrix)?

    /// Experts fused (experts.gate_up_proj [E, 2I, H], experts.down_proj [E, H, I]) or stored one by
    /// one (experts.{e}.gate_proj / up_proj / down_proj): exactly one of the two layouts.
    init(_ w: WeightStore, prefix p: String, config m: MoEConfig, hidden H: Int) throws {
        config = m
        let E = m.experts, I = m.intermediate
        var g: [Matrix] = [], u: [Matrix] = [], d: [Matrix] = []
        if w.has(p + "experts.gate_up_proj") {
            if w.has(p + "experts.0.gate_proj.weight") {
                throw DistilError.input(w.directory, "\(p)experts holds both fused and per-expert weights")
            }
            let gu = try w.matrix(p + "experts.gate_up_proj", shape: [E, 2 * I, H], rows: E * 2 * I, cols: H)
            let dn = try w.matrix(p + "experts.down_proj", shape: [E, H, I], rows: E * H, cols: I)
            for e in 0..<E {
                g.append(gu.rows(e * 2 * I, I)); u.append(gu.rows(e * 2 * I + I, I)); d.append(dn.rows(e * H, H))
            }
        } else {
            for e in 0..<E {
                let q = p + "experts.\(e)."
                g.append(try w.matrix(q + "gate_proj.weight", shape: [I, H]))
                u.append(try w.matrix(q + "up_proj.weight", shape: [I, H]))
                d.append(try w.matrix(q + "down_proj.weight", shape: [H, I]))
            }
        }
        gate = g; up = u; down = d
        router = try w.matrix(p + "gate.weight", shape: [E, H])
        if m.sharedIntermediate > 0 {
            let S = m.sharedIntermediate
            shared = (try w.matrix(p + "shared_expert.gate_proj.weight", shape: [S, H]),
                      try w.matrix(p + "shared_expert.up_proj.weight", shape: [S, H]),
                      try w.matrix(p + "shared_expert.down_proj.weight", shape: [H, S]),
                      try w.matrix(p + "shared_expert_gate.weight", shape: [1, H]))
        } else {
            shared = nil
        }
    }

    /// The block over T rows [T x H]. Each expert runs once over all the rows routed to it, so its
    /// weights are read once per call (once per decode step for a whole batch).
    func run(_ x: [Float], _ T: Int, hidden H: Int, _ cx: Compute) -> [Float] {
        let E = config.experts, K = config.topK
        let logits = cx.linear(x, T, router)
        // Routing in f64: softmax, the k largest (lowest index first on ties), optional renormalisation.
        var choice = [(expert: Int, weight: Float)](repeating: (0, 0), count: T * K)
        cx.forEach(T) { r in
            var probs = [Double](repeating: 0, count: E)
            var mx = -Double.infinity
            for e in 0..<E { mx = max(mx, Double(logits[r * E + e])) }
            var sum = 0.0
            for e in 0..<E { probs[e] = exp(Double(logits[r * E + e]) - mx); sum += probs[e] }
            var top: [Int] = []
            top.reserveCapacity(K)
            var taken = [Bool](repeating: false, count: E)
            for _ in 0..<K {
                var best = -1
                for e in 0..<E where !taken[e] && (best < 0 || probs[e] > probs[best]) { best = e }
                taken[best] = true
                top.append(best)
            }
            let norm = config.normTopK ? top.reduce(0.0) { $0 + probs[$1] } : sum
            choice.withUnsafeMutableBufferPointer { c in
                for (k, e) in top.enumerated() { c[r * K + k] = (e, Float(probs[e] / norm)) }
            }
        }
        var routed: [[(row: Int, weight: Float)]] = Array(repeating: [], count: E)
        for r in 0..<T { for k in 0..<K { let c = choice[r * K + k]; routed[c.expert].append((r, c.weight)) } }
        var out = [Float](repeating: 0, count: T * H)
        for e in 0..<E where !routed[e].isEmpty {
            let rows = routed[e], n = rows.count
            var xs = [Float](repeating: 0, count: n * H)
            for (k, rw) in rows.enumerated() { for j in 0..<H { xs[k * H + j] = x[rw.row * H + j] } }
            let y = cx.swiglu(xs, n, gate: gate[e], up: up[e], down: down[e])
            for (k, rw) in rows.enumerated() { for j in 0..<H { out[rw.row * H + j] += y[k * H + j] * rw.weight } }
        }
        if let s = shared {
            let y = cx.swiglu(x, T, gate: s.gate, up: s.up, down: s.down)
            let g = cx.linear(x, T, s.expertGate)
            for r in 0..<T { let a = Ops.sigmoid(g[r]); for j in 0..<H { out[r * H + j] += a * y[r * H + j] } }
        }
        return out
    }
}
