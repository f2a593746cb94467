#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Vectorised single-precision exp for the KL kernels.
///
/// Cody–Waite range reduction `x = n·ln2 + r`, |r| ≤ ln2/2, then a degree-6 minimax polynomial for
/// e^r (Cephes' coefficients) and the scale 2^n built in the exponent bits. The rounding of
/// `x·log2(e)` uses the 1.5·2^23 trick, so no `roundps` (SSE4.1) is needed on baseline x86-64.
/// Maximum error about 1 ulp on [-87.3, 88]. Arguments are clamped to [-87.33654, 88]: below,
/// including -inf, the SIMD versions return e^-87.33654 ≈ 1.2e-38 (callers that need an exact 0 mask
/// on their argument, which is cheaper than masking here); above 88 they saturate at e^88. NaN input
/// gives an unspecified finite value: callers detect NaN themselves (the KL kernel tracks a NaN mask).
///
/// Every operation is lane-wise and written out (a multiply then an add, never a fused one: Swift
/// does not contract them), so builds for any x86-64 level give bit-identical results.
public enum FastExp {
    // Constants are literals inside the functions (a `static let` is a lazily initialised global
    // whose access check can stop the optimiser from inlining and vectorising the loop).

    @_transparent
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let log2e: Float = 1.44269504088896341, ln2Hi: Float = 0.693359375, ln2Lo: Float = -2.12194440e-4
        let magic: Float = 12582912.0, lo: Float = -87.33654, hi: Float = 88.0   // magic = 1.5 · 2^23
        let xc = x.replacing(with: hi, where: x .> hi).replacing(with: lo, where: x .< lo)
        let t = xc * log2e + magic
        let n = t - magic
        let r = (xc - n * ln2Hi) - n * ln2Lo
        var p: SIMD16<Float> = SIMD16(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = (p * r) * r + r + 1
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
