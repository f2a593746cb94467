import DistilFormats

/// KL(teacher ‖ student) at one position over the full vocabulary.
public struct KLPoint: Equatable, Sendable {
    /// KL in nats; NaN when any input value was NaN, +inf when the student gives zero probability to a
    /// token the teacher does not.
    public var kl: Double
    /// The student's most likely token (lowest id on ties).
    public var studentTop: Int
    /// The teacher's most likely token (lowest id on ties).
    public var teacherTop: Int

    public init(kl: Double, studentTop: Int, teacherTop: Int) {
        self.kl = kl; self.studentTop = studentTop; self.teacherTop = teacherTop
    }
}

/// The full-vocabulary KL and log-softmax kernels (vocabulary 248,320; ~20k positions per model per
/// epoch). Vectorised with `SIMD8<Float>` (baseline x86-64 / NEON), sums in f64.
///
/// `klFromLogits` makes two passes over the student row and one over the teacher's:
/// 1. the student's maximum `m` (and NaN check); each 512-value block's maximum is kept, so the
///    arg-max is found afterwards by scanning one block instead of tracking indices per value;
/// 2. `S = Σ exp(z − m)` summed in f64: terms above e^-12 with an exp accurate to ~1e-11 (f64
///    polynomial), the rest with the ~1-ulp f32 exp;
/// 3. with `c = m + log S` (the log-sum-exp, split into two floats so `z − c` loses nothing),
///    `Σ p_t · (log p_t − (z − c))`, each block of 512 products summed in f32 and folded into f64;
///    `p_t` is given (dl-kl takes it from a table of binary16 values, exact) or computed by the f32
///    exp. A NaN teacher value propagates into the sum. The summands are the pointwise log-ratios
///    weighted by p_t, which are small where p_t is large, so there is no cancellation between two
///    entropy-sized sums.
/// A teacher log-prob below `Half.minLogProbability` (−87.33654, where p_t would be subnormal; −inf
/// included) contributes exactly 0, even against a student logit of −inf.
public enum KLKernel {
    /// Values per block of the passes (block maxima for the arg-max, f32 partial sums).
    static let block = 512

    /// KL(teacher ‖ student) at one position. `teacherLogProbs`: normalised natural-log
    /// probabilities; `studentLogits`: raw logits; both `count` floats. `teacherProbs`, when given,
    /// holds `Half.probability` of each log-prob (`Half.decode(raw:_:probs:_:)` writes both from
    /// binary16 rows); otherwise the kernel computes it.
    public static func klFromLogits(teacherLogProbs: UnsafePointer<Float>, teacherProbs: UnsafePointer<Float>? = nil,
                                    studentLogits: UnsafePointer<Float>, count: Int) -> KLPoint {
        guard count > 0 else { return KLPoint(kl: 0, studentTop: 0, teacherTop: 0) }
        let (m, sTop, sNaN) = maxPass(studentLogits, count: count)
        let lse = Double(m) + log(expSumPass(studentLogits, count: count, max: m))
        let (sum, tTop) = klPass(teacher: teacherLogProbs, probs: teacherProbs, student: studentLogits, count: count, lse: lse)
        let kl = (sNaN || lse.isNaN) ? Double.nan : sum
        return KLPoint(kl: kl, studentTop: sTop, teacherTop: tTop)
    }

    /// Log-softmax of `count` logits into `out` (which may be `logits` itself). Returns the
    /// log-sum-exp (NaN when a logit is NaN; then `out` holds NaN wherever it is undefined).
    @discardableResult
    public static func logSoftmax(_ logits: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) -> Double {
        guard count > 0 else { return -Double.infinity }
        let (m, _, nan) = maxPass(logits, count: count)
        let lse = Double(m) + log(expSumPass(logits, count: count, max: m))
        let cHi = Float(lse)
        let cLo = Float(lse - Double(cHi))
        let raw = UnsafeRawPointer(logits), outRaw = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 8 <= count {
            let z = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            outRaw.storeBytes(of: (z - cHi) - cLo, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { out[i] = (logits[i] - cHi) - cLo; i += 1 }
        return nan ? .nan : lse
    }

    // MARK: passes

    /// Lane-wise maximum ignoring NaN in `b` (the callers track NaN themselves); the standard
    /// library's `pointwiseMax` is not inlined for SIMD8 and costs a call per vector.
    @inline(__always)
    static func vmax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .> a) }

    /// A partial vector: the `n` < 8 values at `p`, the other lanes `fill`.
    @inline(__always)
    static func tail(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = -.infinity) -> SIMD8<Float> {
        var v = SIMD8<Float>(repeating: fill)
        for k in 0..<n { v[k] = p[k] }
        return v
    }

    /// The lowest index whose value equals `m` (the maximum, not NaN), given each block's maximum.
    static func firstIndex(of m: Float, in p: UnsafePointer<Float>, count: Int, blockMax: [Float]) -> Int {
        guard let b = blockMax.firstIndex(of: m) else { return 0 }
        for i in (b * block)..<min(count, (b + 1) * block) where p[i] == m { return i }
        return 0
    }

    /// Maximum, lowest index of the maximum (0 if every value is NaN), and whether any value is NaN.
    static func maxPass(_ p: UnsafePointer<Float>, count: Int) -> (Float, Int, Bool) {
        let raw = UnsafeRawPointer(p)
        var blockMax = [Float](repeating: -.infinity, count: (count + block - 1) / block)
        var nan = SIMDMask<SIMD8<Int32>>(repeating: false)
        var best = SIMD8<Float>(repeating: -.infinity)
        var b = 0, i = 0
        while i < count {
            let end = min(count, i + block)
            var a0 = SIMD8<Float>(repeating: -.infinity), a1 = a0
            while i + 16 <= end {
                let v0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                let v1 = raw.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
                nan .|= (v0 .!= v0) .| (v1 .!= v1)
                a0 = vmax(a0, v0); a1 = vmax(a1, v1)
                i += 16
            }
            while i < end {
                let v = end - i >= 8 ? raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : tail(p + i, end - i)
                nan .|= v .!= v
                a0 = vmax(a0, v)
                i += 8
            }
            let bm = vmax(a0, a1)
            best = vmax(best, bm)
            blockMax[b] = bm.max()
            b += 1
            i = end
        }
        let m = best.max()
        return (m, firstIndex(of: m, in: p, count: count, blockMax: blockMax), any(nan))
    }

    /// Σ exp(z − m) in f64. A vector with a lane above m − 12 uses the f64-accurate exp (those terms
    /// carry the mass, and an f32 exp's ±3e-8 per-term rounding would move log S by ~5e-9 nats); the
    /// rest use the f32 exp, whose absolute error there is below 4e-13 per term (e^-12 · 6e-8), ~2e-10
    /// in log S even if 248k such terms erred randomly.
    static func expSumPass(_ p: UnsafePointer<Float>, count: Int, max m: Float) -> Double {
        let raw = UnsafeRawPointer(p)
        var heavy = SIMD8<Double>(repeating: 0)
        var light = SIMD8<Float>(repeating: 0)
        var lightBlock = SIMD8<Double>(repeating: 0)
        let cut = SIMD8<Float>(repeating: -12)
        var i = 0
        var k = 0
        while i < count {
            let x = (count - i >= 8 ? raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : tail(p + i, count - i)) - m
            if any(x .> cut) {
                heavy += FastExp.exp64(x)
            } else {
                light += FastExp.exp(x)
            }
            i += 8
            k += 1
            if k == 64 { lightBlock += SIMD8<Double>(light); light = .zero; k = 0 }
        }
        return (heavy + lightBlock + SIMD8<Double>(light)).sum()
    }

    /// Σ p_t (log p_t − (z − lse)) and the teacher's arg-max. NaN in the teacher's values makes the
    /// sum NaN.
    ///
    /// log p_t − log p_s is computed as (log p_t − (z − cHi)) + cLo with lse = cHi + cLo: z − cHi is
    /// exact near the top, the difference of two close values is exact (Sterbenz), and cLo is added to
    /// a small number instead of being rounded away against a large one. Products are summed in f32
    /// over blocks of 512 and the blocks in f64.
    @inline(__always)
    static func klPass(teacher: UnsafePointer<Float>, probs: UnsafePointer<Float>?, student: UnsafePointer<Float>, count: Int,
                       lse: Double) -> (Double, Int) {
        let t = UnsafeRawPointer(teacher), s = UnsafeRawPointer(student)
        let cHi = Float(lse)
        let cLo = Float(lse - Double(cHi))
        let under = SIMD8<Float>(repeating: Half.minLogProbability)
        var blockMax = [Float](repeating: -.infinity, count: (count + block - 1) / block)
        var best = SIMD8<Float>(repeating: -.infinity)
        var total: Double = 0
        var b = 0, i = 0
        while i < count {
            let end = min(count, i + block)
            var sum = SIMD8<Float>(repeating: 0)
            var top = SIMD8<Float>(repeating: -.infinity)
            while i < end {
                let full = end - i >= 8
                let lt = full ? t.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : tail(teacher + i, end - i)
                let z = full ? s.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : tail(student + i, end - i, fill: 0)
                top = vmax(top, lt)
                let pt: SIMD8<Float>
                if let probs {
                    pt = full ? UnsafeRawPointer(probs).loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : tail(probs + i, end - i, fill: 0)
                } else {
                    pt = FastExp.exp(lt)
                }
                let r = (lt - (z - cHi)) + cLo
                // p_t = 0 (log p_t below -87.33654, -inf included) contributes exactly 0, even against
                // z = -inf; a NaN log p_t is not below anything and so reaches the sum.
                sum += (pt * r).replacing(with: 0, where: lt .< under)
                i += 8
            }
            i = end
            total += SIMD8<Double>(sum).sum()
            best = vmax(best, top)
            blockMax[b] = top.max()
            b += 1
        }
        let m = best.max()
        return (total, firstIndex(of: m, in: teacher, count: count, blockMax: blockMax))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
