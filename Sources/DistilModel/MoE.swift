import DistilFormats
import DistilTensors
import Foundation

/// The tensors of a mixture of experts under `…mlp.`: the router (gate.weight), the experts stored
/// one by one (experts.{e}.gate_proj / up_proj / down_proj, as save_pretrained writes them) or fused
/// (experts.gate_up_proj [E, 2I, H], experts.down_proj [E, H, I], as they sit in memory; the
/// checkpoint's names decide, per layer), and optionally a shared expert behind a sigmoid gate.
struct MoETensors {
    enum Experts { case separate([MLPTensors]), fused(gateUp: TensorSpec, down: TensorSpec) }
    var router: TensorSpec
    var experts: Experts
    var shared: (mlp: MLPTensors, gate: TensorSpec)?

    static func declare(_ p: String, _ m: MoEConfig, hidden H: Int, layout: TensorLayout, _ l: inout TensorList) -> MoETensors {
        let E = m.experts, I = m.intermediate
        let router = l.add(p + "gate.weight", [E, H])
        let experts: Experts = layout.fusedExperts.contains(p)
            ? .fused(gateUp: l.add(p + "experts.gate_up_proj", [E, 2 * I, H]), down: l.add(p + "experts.down_proj", [E, H, I]))
            : .separate((0..<E).map { MLPTensors.declare(p + "experts.\($0).", width: I, hidden: H, &l) })
        var shared: (MLPTensors, TensorSpec)?
        if m.sharedIntermediate > 0 {
            shared = (MLPTensors.declare(p + "shared_expert.", width: m.sharedIntermediate, hidden: H, &l),
                      l.add(p + "shared_expert_gate.weight", [1, H]))
        }
        return MoETensors(router: router, experts: experts, shared: shared)
    }

    /// How many tensors a layer of these experts declares at most (to bound a config before the names are built).
    static func count(_ m: MoEConfig) -> Int { 1 + 3 * m.experts + 4 }
}

/// A sparse mixture-of-experts block: a softmax router, the top-k experts per row (probabilities
/// renormalised over the k when `normTopK`), SwiGLU experts, and optionally a shared expert behind a
/// sigmoid gate (Qwen3.5-MoE; Qwen3-MoE has none).
struct MoEBlock {
    let config: MoEConfig
    let router: Matrix                 // [E, H]
    let experts: [MLP]
    let shared: (mlp: MLP, gate: Matrix)?

    init(_ t: MoETensors, _ w: WeightStore, config m: MoEConfig, hidden H: Int) throws {
        config = m
        let E = m.experts, I = m.intermediate
        switch t.experts {
        case .fused(let gateUp, let down):
            let gu = try w.matrix(gateUp), dn = try w.matrix(down)
            if w.has(gateUp.name.dropLast("gate_up_proj".count) + "0.gate_proj.weight") {
                throw DistilError.input(w.directory, "\(gateUp.name.dropLast("experts.gate_up_proj".count))experts holds both fused and per-expert weights")
            }
            experts = (0..<E).map { e in MLP(gate: gu.rows(e * 2 * I, I), up: gu.rows(e * 2 * I + I, I), down: dn.rows(e * H, H)) }
        case .separate(let list):
            experts = try list.map { try MLP($0, w) }
        }
        router = try w.matrix(t.router)
        shared = try t.shared.map { (try MLP($0.mlp, w), try w.matrix($0.gate)) }
    }

    /// The most rows of experts' inputs and outputs held at once (waves of experts): 2 x 16 MiB at H = 2048.
    static let waveRows = 2048

    /// The block over T rows [T x H]. Each expert runs once over all the rows routed to it, so its
    /// weights are read once per call (once per decode step for a whole batch).
    func callAsFunction(_ x: [Float], _ T: Int, hidden H: Int, _ cx: Compute) -> [Float] {
        let E = config.experts, K = config.topK
        let phase = Profile.phase
        let logits = Profile.time("\(phase) moe router") { cx.linear(x, T, router) }
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
        Profile.time("\(phase) moe experts") {
            // Experts run in parallel, each whole on one thread (its products single-threaded: the
            // same bits as split over threads, and no hand-off per product for the 1-2 rows an expert
            // gets in a decode step); each writes its own buffer, and the weighted sums go into `out`
            // in expert order as before. Waves of at most `waveRows` rows bound those buffers.
            let active = (0..<E).filter { !routed[$0].isEmpty }
            var first = 0
            while first < active.count {
                var last = first, rowsInWave = 0
                while last < active.count && (last == first || rowsInWave + routed[active[last]].count <= MoEBlock.waveRows) {
                    rowsInWave += routed[active[last]].count; last += 1
                }
                let wave = Array(active[first..<last])
                var ys = [[Float]](repeating: [], count: wave.count)
                let serial = cx.serial
                ys.withUnsafeMutableBufferPointer { yb in
                    let yp = yb.baseAddress!
                    cx.forEachDynamic(wave.count) { i in
                        let rows = routed[wave[i]], n = rows.count
                        var xs = [Float](repeating: 0, count: n * H)
                        xs.withUnsafeMutableBufferPointer { xb in x.withUnsafeBufferPointer { xp in
                            for (k, rw) in rows.enumerated() { (xb.baseAddress! + k * H).update(from: xp.baseAddress! + rw.row * H, count: H) }
                        } }
                        (yp + i).initialize(to: experts[wave[i]](xs, n, serial))
                    }
                }
                for (i, e) in wave.enumerated() {
                    let y = ys[i]
                    for (k, rw) in routed[e].enumerated() { for j in 0..<H { out[rw.row * H + j] += y[k * H + j] * rw.weight } }
                }
                first = last
            }
        }
        if let s = shared { Profile.time("\(phase) moe shared") {
            let y = s.mlp(x, T, cx)
            let g = cx.linear(x, T, s.gate)
            for r in 0..<T { let a = Activation.sigmoid(g[r]); for j in 0..<H { out[r * H + j] += a * y[r * H + j] } }
        } }
        return out
    }
}
