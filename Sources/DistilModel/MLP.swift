import DistilTensors
import Foundation

/// The tensors of a SwiGLU MLP (gate_proj, up_proj [width x hidden], down_proj [hidden x width]).
struct MLPTensors {
    var gate: TensorSpec, up: TensorSpec, down: TensorSpec

    static func declare(_ p: String, width: Int, hidden H: Int, _ l: inout TensorList) -> MLPTensors {
        MLPTensors(gate: l.add(p + "gate_proj.weight", [width, H]), up: l.add(p + "up_proj.weight", [width, H]),
                   down: l.add(p + "down_proj.weight", [H, width]))
    }
}

/// down(silu(gate(x)) · up(x)): the dense layers' MLP, and each expert of a mixture.
struct MLP {
    let gate: Matrix, up: Matrix, down: Matrix

    init(_ t: MLPTensors, _ w: WeightStore) throws {
        gate = try w.matrix(t.gate); up = try w.matrix(t.up); down = try w.matrix(t.down)
    }

    init(gate: Matrix, up: Matrix, down: Matrix) {
        self.gate = gate; self.up = up; self.down = down
    }

    /// The MLP over T rows [T x hidden].
    func callAsFunction(_ x: [Float], _ T: Int, _ cx: Compute) -> [Float] {
        let g = cx.linear(x, T, gate)
        var u = cx.linear(x, T, up)
        let width = gate.rows
        u.withUnsafeMutableBufferPointer { up in g.withUnsafeBufferPointer { gp in
            cx.forRows(T) { r in
                for j in (r.lowerBound * width)..<(r.upperBound * width) { up[j] *= Activation.silu(gp[j]) }
            }
        } }
        return cx.linear(u, T, down)
    }
}

/// The activations, in f32.
enum Activation {
    @inline(__always) static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
}
