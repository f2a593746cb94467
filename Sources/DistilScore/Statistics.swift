#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Summary statistics of a sample with a Student-t confidence interval for the mean.
public struct SampleSummary: Codable, Equatable, Sendable {
    public var n: Int
    public var mean: Double
    /// Sample standard deviation (n − 1 in the denominator); 0 for n < 2.
    public var std: Double
    /// Standard error of the mean, std / √n.
    public var se: Double
    /// Confidence interval of the mean, mean ∓ t_{(1+level)/2, n−1} · se (the mean itself for n < 2).
    public var ci_low: Double
    public var ci_high: Double
    public var ci_level: Double

    public init(_ xs: [Double], level: Double = 0.95) {
        n = xs.count
        mean = Statistics.mean(xs)
        std = Statistics.sampleStd(xs)
        se = n > 0 ? std / Double(n).squareRoot() : 0
        ci_level = level
        if n >= 2 {
            let h = StudentT.quantile((1 + level) / 2, df: Double(n - 1)) * se
            ci_low = mean - h; ci_high = mean + h
        } else {
            ci_low = mean; ci_high = mean
        }
    }
}

/// Plain, numerically careful statistics helpers.
public enum Statistics {
    /// Mean as x₀ + Σ(xᵢ − x₀)/n with compensated (Neumaier) summation of the deviations: n equal
    /// values give exactly that value (so a rule like "mean < 0.99 × king" has no rounding surprise),
    /// and the result is exact to about one ulp otherwise. 0 for an empty sample.
    public static func mean(_ xs: [Double]) -> Double {
        guard let x0 = xs.first else { return 0 }
        var s = 0.0, c = 0.0
        for x in xs {
            let d = x - x0
            let t = s + d
            if abs(s) >= abs(d) { c += (s - t) + d } else { c += (d - t) + s }
            s = t
        }
        return x0 + (s + c) / Double(xs.count)
    }

    /// Sample standard deviation (two-pass, n − 1); 0 for fewer than two values.
    public static func sampleStd(_ xs: [Double]) -> Double {
        guard xs.count >= 2 else { return 0 }
        let m = mean(xs)
        var s = 0.0
        for x in xs { s += (x - m) * (x - m) }
        return (s / Double(xs.count - 1)).squareRoot()
    }

    /// Cosine similarity of two equally long vectors (0 when either is all zeros).
    public static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in 0..<min(a.count, b.count) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i] }
        guard aa > 0, bb > 0 else { return 0 }
        return ab / (aa.squareRoot() * bb.squareRoot())
    }
}

/// A paired comparison of two per-prompt vectors (challenger − king, prompt by prompt).
public struct PairedComparison: Codable, Equatable, Sendable {
    public var n: Int
    /// Mean of the differences (negative: the first vector is lower, i.e. better).
    public var mean_diff: Double
    public var std_diff: Double
    public var se_diff: Double
    /// t statistic mean_diff / se_diff (0 when se_diff is 0).
    public var t: Double
    public var ci_low: Double
    public var ci_high: Double
    /// One-sided p-value for "the first vector's mean is lower": P(T_{n−1} ≤ t).
    public var p_value: Double?
    /// mean(a) / mean(b) − 1 (relative change; negative is better).
    public var relative: Double?

    public init(_ a: [Double], _ b: [Double], level: Double = 0.95) {
        let k = min(a.count, b.count)
        let d = (0..<k).map { a[$0] - b[$0] }
        let s = SampleSummary(d, level: level)
        n = k; mean_diff = s.mean; std_diff = s.std; se_diff = s.se
        ci_low = s.ci_low; ci_high = s.ci_high
        if s.se > 0, k >= 2 {
            t = s.mean / s.se
            p_value = StudentT.cdf(t, df: Double(k - 1))
        } else {
            t = 0
            p_value = nil
        }
        let mb = Statistics.mean(Array(b.prefix(k)))
        relative = mb > 0 ? Statistics.mean(Array(a.prefix(k))) / mb - 1 : nil
    }
}

/// Student's t distribution: CDF through the regularized incomplete beta function, quantile by
/// safeguarded Newton iteration on the CDF.
public enum StudentT {
    /// P(T ≤ t) with `df` degrees of freedom (df > 0).
    public static func cdf(_ t: Double, df: Double) -> Double {
        guard df > 0, !t.isNaN else { return .nan }
        if t.isInfinite { return t > 0 ? 1 : 0 }
        let x = df / (df + t * t)
        let tail = 0.5 * IncompleteBeta.regularized(x, a: df / 2, b: 0.5)
        return t > 0 ? 1 - tail : tail
    }

    /// Probability density at t.
    public static func pdf(_ t: Double, df: Double) -> Double {
        let lg = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * log(df * Double.pi)
        return exp(lg - (df + 1) / 2 * log1p(t * t / df))
    }

    /// The p-quantile: the t with P(T ≤ t) = p, for 0 < p < 1.
    public static func quantile(_ p: Double, df: Double) -> Double {
        guard df > 0, p > 0, p < 1 else { return p == 1 ? .infinity : p == 0 ? -.infinity : .nan }
        if p == 0.5 { return 0 }
        if p < 0.5 { return -quantile(1 - p, df: df) }
        // Bracket [0, hi] with cdf(hi) ≥ p, then Newton steps kept inside the bracket (bisection
        // when a step would leave it).
        var lo = 0.0, hi = 1.0
        while cdf(hi, df: df) < p, hi < 1e300 { lo = hi; hi *= 2 }
        var x = (lo + hi) / 2
        for _ in 0..<200 {
            let f = cdf(x, df: df) - p
            if f == 0 { return x }
            if f < 0 { lo = x } else { hi = x }
            let step = f / pdf(x, df: df)
            var next = x - step
            if !(next > lo && next < hi) || !next.isFinite { next = (lo + hi) / 2 }
            if abs(next - x) <= 1e-15 * max(1, abs(x)) { return next }
            x = next
        }
        return x
    }
}

/// The regularized incomplete beta function I_x(a, b) by its continued fraction (modified Lentz),
/// using the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
public enum IncompleteBeta {
    public static func regularized(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let lnFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        if x < (a + 1) / (a + b + 2) {
            return exp(lnFront) * continuedFraction(x, a: a, b: b) / a
        }
        let lnFront2 = lgamma(a + b) - lgamma(a) - lgamma(b) + b * log1p(-x) + a * log(x)
        return 1 - exp(lnFront2) * continuedFraction(1 - x, a: b, b: a) / b
    }

    static func continuedFraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300, eps = 1e-16
        let qab = a + b, qap = a + 1, qam = a - 1
        var c = 1.0
        var d = 1 - qab * x / qap
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...1000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let del = d * c
            h *= del
            if abs(del - 1) < eps { break }
        }
        return h
    }
}
