#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Vectorised single-precision exp for the KL kernels.
///
/// Cody–Waite range reduction `x = n·ln2 + r`, |r| ≤ ln2/2, then e^r ≈ 1 + r + r²·q(r) with q a
/// quartic fitted for minimal relative error on that interval (Lawson's iteration in float64; the
/// committed fit is `Benchmarks/bench-kl/fit_exp.py`), and the scale 2^n built in the exponent bits.
/// The rounding of `x·log2(e)` uses the 1.5·2^23 trick, so no `roundps` (SSE4.1) is needed on
/// baseline x86-64. Maximum error 8.1e-8 relative (under 1 ulp) on [-87.3, 80], mean −4e-10 (the
/// test samples it). Cephes' degree-7 polynomial (used before) was a term longer for no accuracy the
/// tests or bench-kl can see (1.1e-8 from the f64 reference either way); a
/// cubic q is 2 operations cheaper but 1.8e-7 and −9e-9: p_t's error is weighted by
/// |log p_t − log p_s|, whose sum can be 20x the KL, and it failed the 1e-6 test.
///
/// Arguments are clamped to [-87.33654, 88]: below, including -inf, the SIMD versions return
/// e^-87.33654 ≈ 1.2e-38 (callers that need an exact 0 mask on their argument, which is cheaper
/// than masking here); above 88 they saturate at e^88. A caller that masks small
/// arguments itself, or never passes large ones, drops that clamp (`exp(_:clampLow:clampHigh:)`);
/// the unclamped side then gives unspecified values there. NaN input gives an unspecified value:
/// callers detect NaN themselves (the KL kernel tracks a NaN mask).
///
/// Every operation is lane-wise and written out (a multiply then an add, never a fused one: Swift
/// does not contract them), so builds for any x86-64 level give bit-identical results.
public enum FastExp {
    // Constants are literals inside the functions (a `static let` is a lazily initialised global
    // whose access check can stop the optimiser from inlining and vectorising the loop).

    @_transparent
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> { exp(x, clampLow: true, clampHigh: true) }

    /// `exp` with either clamp left out (a constant argument: the untaken side compiles away).
    @_transparent
    public static func exp(_ x: SIMD16<Float>, clampLow: Bool, clampHigh: Bool) -> SIMD16<Float> {
        let log2e: Float = 1.44269504088896341, ln2Hi: Float = 0.693359375, ln2Lo: Float = -2.12194440e-4
        let magic: Float = 12582912.0, lo: Float = -87.33654, hi: Float = 88.0   // magic = 1.5 · 2^23
        var xc = x
        // Each is one max/min instruction (NaN passes through either).
        if clampLow { xc = xc.replacing(with: lo, where: xc .< lo) }
        if clampHigh { xc = xc.replacing(with: hi, where: xc .> hi) }
        let t = xc * log2e + magic
        let n = t - magic
        let r = (xc - n * ln2Hi) - n * ln2Lo
        var q: SIMD16<Float> = SIMD16(repeating: 0.0013879691250622272)
        q = q * r + 0.00836869329214096
        q = q * r + 0.04166722670197487
        q = q * r + 0.1666652113199234
        q = q * r + 0.4999999701976776
        let y = (q * r) * r + r + 1
        // 2^n: n sits in the low mantissa bits of t (t = 1.5·2^23 + n).
        let ti = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let scale = unsafeBitCast((ti &+ 127) &<< 23, to: SIMD16<Float>.self)
        return y * scale
    }

    /// exp(x) of f32 arguments to ~1e-11 relative, in f64: the reduction `r = x − n·ln2` is done in
    /// f64 (exact) and e^r by its degree-9 Taylor polynomial (|r| ≤ 0.35: truncation < 1e-11). Used
    /// for the softmax denominator, whose error enters the KL directly (the f32 exp's rounding is
    /// unbiased per value but leaves ~2e-9 nats of bias in log Σ e^z on heavy-tailed rows).
    @_transparent
    public static func exp64(_ x: SIMD16<Float>) -> SIMD16<Double> {
        let log2e: Float = 1.44269504088896341, magic: Float = 12582912.0, lo: Float = -87.33654, hi: Float = 88.0
        let xc = x.replacing(with: hi, where: x .> hi).replacing(with: lo, where: x .< lo)
        let t = xc * log2e + magic
        let n = t - magic
        let ti = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let scale = widen(unsafeBitCast((ti &+ 127) &<< 23, to: SIMD16<Float>.self))
        let nd = widen(n)
        let r = (widen(xc) - nd * 0.693147180369123816490) - nd * 1.90821492927058770002e-10
        var p = SIMD16<Double>(repeating: 1.0 / 362880)
        p = p * r + 1.0 / 40320
        p = p * r + 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        return p * scale
    }

    /// The lanes as f64 (the standard library's generic conversion is not inlined, and its
    /// out-of-line copy would be shared code; see `KLCore`).
    @_transparent @usableFromInline
    static func widen(_ v: SIMD16<Float>) -> SIMD16<Double> {
        var d = SIMD16<Double>()
        for k in 0..<16 { d[k] = Double(v[k]) }
        return d
    }

    /// Scalar exp with the same algorithm, 0 below -87.33654 (tests).
    public static func exp(_ x: Float) -> Float { x < -87.33654 ? 0 : exp(SIMD16(repeating: x))[0] }
}
