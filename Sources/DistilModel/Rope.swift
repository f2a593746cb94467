import DistilFormats
import Foundation

/// Rotary position scaling as transformers' modeling_rope_utils.py defines it (config key
/// `rope_scaling`, or `rope_parameters` in transformers 5). The inverse frequencies are computed once;
/// `attentionFactor` multiplies cos and sin (YaRN).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// inv_freq / factor.
    case linear(factor: Double)
    /// Llama 3.1: long wavelengths divided by factor, short ones kept, a smooth ramp between.
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMax: Double)
    /// YaRN: per-dimension blend of interpolated and extrapolated frequencies, plus an attention factor.
    case yarn(factor: Double, originalMax: Double, betaFast: Double, betaSlow: Double, attentionFactor: Double, truncate: Bool)
    /// Dynamic NTK: identical to plain rotary up to max_position_embeddings; longer sequences are refused.
    case dynamic(factor: Double)

    static func parse(_ c: [String: Any], path: String, architecture arch: String) throws -> RopeScaling {
        guard let p = (c["rope_scaling"] as? [String: Any]) ?? (c["rope_parameters"] as? [String: Any]) else { return .none }
        let kind = ((p["rope_type"] ?? p["type"]) as? String) ?? "default"
        func num(_ k: String) -> Double? { (p[k] as? NSNumber)?.doubleValue }
        func need(_ k: String, _ range: ClosedRange<Double>) throws -> Double {
            guard let v = num(k), v.isFinite, range.contains(v) else {
                throw DistilError.input(path, "rope scaling '\(kind)': \(k) is missing or outside \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        switch kind {
        case "default": return .none
        case "linear": return .linear(factor: try need("factor", 1e-3...1e6))
        case "dynamic": return .dynamic(factor: try need("factor", 1e-3...1e6))
        case "llama3":
            let lo = try need("low_freq_factor", 1e-6...1e6), hi = try need("high_freq_factor", 1e-6...1e6)
            guard hi != lo else { throw DistilError.input(path, "rope scaling 'llama3': high_freq_factor equals low_freq_factor") }
            return .llama3(factor: try need("factor", 1e-3...1e6), lowFreqFactor: lo, highFreqFactor: hi,
                           originalMax: try need("original_max_position_embeddings", 1...1e9))
        case "yarn":
            let originalMax = try need("original_max_position_embeddings", 1...1e9)
            var factor = num("factor")
            if factor == nil, let m = (c["max_position_embeddings"] as? NSNumber)?.doubleValue { factor = m / originalMax }
            guard let f = factor, f.isFinite, f > 0 else { throw DistilError.input(path, "rope scaling 'yarn': no factor") }
            func mscale(_ s: Double, _ m: Double) -> Double { s <= 1 ? 1 : 0.1 * m * log(s) + 1 }
            var af = num("attention_factor")
            if af == nil {
                if let m = num("mscale"), let ma = num("mscale_all_dim"), m != 0, ma != 0 { af = mscale(f, m) / mscale(f, ma) }
                else { af = mscale(f, 1) }
            }
            return .yarn(factor: f, originalMax: originalMax, betaFast: num("beta_fast").flatMap { $0 == 0 ? nil : $0 } ?? 32,
                         betaSlow: num("beta_slow").flatMap { $0 == 0 ? nil : $0 } ?? 1, attentionFactor: af!,
                         truncate: (p["truncate"] as? NSNumber)?.boolValue ?? true)
        default:
            throw DistilError.input(path, "unsupported architecture \(arch): rope scaling '\(kind)' is not implemented")
        }
    }

    /// Inverse frequencies of the `dim` rotated dimensions (dim / 2 of them) and the factor applied to cos and sin.
    func frequencies(dim: Int, theta base: Double) -> (invFreq: [Double], attentionFactor: Double) {
        let plain = (0..<(dim / 2)).map { 1.0 / pow(base, Double(2 * $0) / Double(dim)) }
        switch self {
        case .none, .dynamic: return (plain, 1)
        case .linear(let f): return (plain.map { $0 / f }, 1)
        case let .llama3(f, lo, hi, old):
            let lowWave = old / lo, highWave = old / hi
            return (plain.map { inv in
                let wave = 2 * Double.pi / inv
                if wave < highWave { return inv }
                if wave > lowWave { return inv / f }
                let smooth = (old / wave - lo) / (hi - lo)
                return (1 - smooth) * inv / f + smooth * inv
            }, 1)
        case let .yarn(f, old, fast, slow, af, truncate):
            func correctionDim(_ rot: Double) -> Double { Double(dim) * log(old / (rot * 2 * Double.pi)) / (2 * log(base)) }
            var low = correctionDim(fast), high = correctionDim(slow)
            if truncate { low = low.rounded(.down); high = high.rounded(.up) }
            low = max(low, 0); high = min(high, Double(dim - 1))
            if low == high { high += 0.001 }
            return (plain.enumerated().map { i, inv in
                let ramp = min(1, max(0, (Double(i) - low) / (high - low)))
                let extrapolation = 1 - ramp
                return (inv / f) * (1 - extrapolation) + inv * extrapolation
            }, af)
        }
    }

    /// The longest sequence this scaling is run for (dynamic NTK beyond max_position_embeddings
    /// changes the frequencies with the length; refused rather than approximated).
    func maxLength(_ maxPositionEmbeddings: Int?) -> Int? {
        if case .dynamic = self { return maxPositionEmbeddings }
        return nil
    }
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
