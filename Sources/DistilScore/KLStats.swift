/// Per-position KL statistics of one sequence, as llama.cpp's KL-divergence mode reports them: mean,
/// population standard deviation, maximum, exact nearest-rank percentiles, top-1 agreement.
///
/// Values are stored (8 bytes per position: fine for a few thousand positions). A NaN point makes
/// the mean, std and percentiles NaN, so the caller can report it rather than score it.
public struct KLStats: Sendable {
    public private(set) var values: [Double] = []
    public private(set) var agree = 0
    var sum: Double = 0
    var compensation: Double = 0

    public init() {}

    /// Adds one position.
    public mutating func add(_ p: KLPoint) {
        add(kl: p.kl, agree: p.studentTop == p.teacherTop)
    }

    /// Adds one position from its KL value and whether the two top tokens agree.
    public mutating func add(kl: Double, agree a: Bool) {
        values.append(kl)
        if a { agree += 1 }
        // Kahan–Babuška (Neumaier) summation: the mean of ~512 values is exact to the last bits.
        let t = sum + kl
        if abs(sum) >= abs(kl) { compensation += (sum - t) + kl } else { compensation += (kl - t) + sum }
        sum = t
    }

    public var count: Int { values.count }

    public var mean: Double { values.isEmpty ? 0 : (sum + compensation) / Double(values.count) }

    /// Population standard deviation (two-pass around the mean).
    public var std: Double {
        guard !values.isEmpty else { return 0 }
        let m = mean
        var s = 0.0
        for v in values { s += (v - m) * (v - m) }
        return (s / Double(values.count)).squareRoot()
    }

    public var max: Double {
        values.contains(where: { $0.isNaN }) ? .nan : (values.max() ?? 0)
    }

    /// Nearest-rank percentile `q` in (0, 100]: the smallest value with at least q% of the values at
    /// or below it (sorted position ceil(q/100 · n)).
    public func percentile(_ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        if values.contains(where: { $0.isNaN }) { return .nan }
        let sorted = values.sorted()
        let rank = Swift.max(1, Swift.min(sorted.count, Int((q * Double(sorted.count) / 100).rounded(.up))))
        return sorted[rank - 1]
    }

    public var p50: Double { percentile(50) }
    public var p90: Double { percentile(90) }
    public var p99: Double { percentile(99) }

    /// Fraction of positions where the student's top token is the teacher's.
    public var top1Agreement: Double { values.isEmpty ? 0 : Double(agree) / Double(values.count) }
}

import DistilFormats

extension KLStats {
    /// A KL record for one (model, prompt) from these statistics: `kl_mean`, `kl_std`, `n_tokens`,
    /// `kl_max`, the percentiles and `top1_agree` (the optional ones absent when no position was
    /// scored). The caller fills in the model's identity and the teacher reference. A NaN position
    /// makes `kl_mean` NaN, which JSON cannot hold: check `mean.isNaN` and report it instead.
    public func record(model: String, promptID: String) -> KLRecord {
        var r = KLRecord(model: model, promptID: promptID, klMean: mean, klStd: std, nTokens: count)
        if count > 0 {
            let sorted = values.sorted()
            func pct(_ q: Double) -> Double {
                sorted[Swift.max(1, Swift.min(sorted.count, Int((q * Double(sorted.count) / 100).rounded(.up)))) - 1]
            }
            r.kl_max = sorted.last
            r.kl_p50 = pct(50); r.kl_p90 = pct(90); r.kl_p99 = pct(99)
            r.top1_agree = top1Agreement
        }
        return r
    }
}
