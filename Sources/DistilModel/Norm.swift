import Foundation

/// RMSNorm over rows of width weight.count: w · x / sqrt(mean(x²) + eps), or (1 + w) · x / ... when
/// zero-centred (Qwen3.5). The sum of squares is taken in f64.
struct RMSNorm {
    let weight: [Float]
    let eps: Double
    var zeroCentered = false

    /// Normalises `rows` rows of x in place.
    func apply(_ x: inout [Float], rows: Int, _ cx: Compute) {
        let n = weight.count, eps = eps, zeroCentered = zeroCentered
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
}
