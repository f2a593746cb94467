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
/// `klFromLogits` makes three passes over the student row and one over the teacher row:
/// 1. the student's maximum `m` (and arg-max, NaN check);
/// 2. `S = Σ exp(z − m)` summed in f64: terms above e^-12 with an exp accurate to ~1e-11 (f64
///    polynomial), the rest with the ~1-ulp f32 exp;
/// 3. with `c = m + log S` (the log-sum-exp, split into two floats so `z − c` loses nothing),
///    `Σ p_t · (log p_t − (z − c))`, `p_t = exp(log p_t)` (f32 exp), each block of 512 products
///    summed in f32 and folded into f64; a NaN teacher value propagates into the sum. The
///    summands are the pointwise log-ratios weighted by p_t, which are small where p_t is large,
///    so there is no cancellation between two entropy-sized sums.
/// A teacher log-prob of −inf (or below −87.3, where exp underflows) contributes exactly 0.
/// (Unrolling the KL pass by two was measured slower on SSE2: register spills.)
public enum KLKernel {
    /// KL(teacher ‖ student) at one position. `teacherLogProbs`: normalised natural-log
    /// probabilities; `studentLogits`: raw logits; both `count` floats.
    public static func klFromLogits(teacherLogProbs: UnsafePointer<Float>, studentLogits: UnsafePointer<Float>,
                                    count: Int) -> KLPoint {
        guard count > 0 else { return KLPoint(kl: 0, studentTop: 0, teacherTop: 0) }
        let (m, sTop, sNaN) = maxPass(studentLogits, count: count)
        let lse = Double(m) + log(expSumPass(studentLogits, count: count, max: m))
        let (sum, tTop, tNaN) = klPass(teacher: teacherLogProbs, student: studentLogits, count: count, lse: lse)
        let kl = (sNaN || tNaN || lse.isNaN) ? Double.nan : sum
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

    @inline(__always) static var laneIndex: SIMD8<Int32> { SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) }

    /// A partial vector: the `n` < 8 values at `p`, the other lanes -inf.
    @inline(__always)
    static func tail(_ p: UnsafePointer<Float>, _ n: Int) -> SIMD8<Float> {
        var v = SIMD8<Float>(repeating: -.infinity)
        for k in 0..<n { v[k] = p[k] }
        return v
    }

    /// Reduces per-lane (max, first index) pairs to the lowest index of the maximum.
    @inline(__always)
    static func argmax(_ best: SIMD8<Float>, _ idx: SIMD8<Int32>) -> (Float, Int) {
        let m = best.max()
        var top = Int.max
        for k in 0..<8 where best[k] == m { top = min(top, Int(idx[k])) }
        return (m, top == Int.max ? 0 : top)
    }

    /// Maximum, lowest index of the maximum, and whether any value is NaN.
    static func maxPass(_ p: UnsafePointer<Float>, count: Int) -> (Float, Int, Bool) {
        let raw = UnsafeRawPointer(p)
        var best = SIMD8<Float>(repeating: -.infinity)
        var idx = SIMD8<Int32>(repeating: 0)
        var nan = SIMDMask<SIMD8<Int32>>(repeating: false)
        var i = 0
        var lanes = laneIndex
        while i + 8 <= count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let gt = v .> best
            best.replace(with: v, where: gt)
            idx.replace(with: lanes, where: gt)
            nan .|= v .!= v
            lanes &+= 8
            i += 8
        }
        if i < count {
            let v = tail(p + i, count - i)
            let gt = v .> best
            best.replace(with: v, where: gt)
            idx.replace(with: lanes, where: gt)
            nan .|= v .!= v
        }
        let (m, top) = argmax(best, idx)
        return (m, top, any(nan))
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

    /// Σ p_t (log p_t − (z − lse)), the teacher's arg-max, and whether a teacher value is NaN.
    ///
    /// log p_t − log p_s is computed as (log p_t − (z − cHi)) + cLo with lse = cHi + cLo: z − cHi is
    /// exact near the top, the difference of two close values is exact (Sterbenz), and cLo is added to
    /// a small number instead of being rounded away against a large one. Products are summed in f32
    /// over blocks of 512 and the blocks in f64.
    static func klPass(teacher: UnsafePointer<Float>, student: UnsafePointer<Float>, count: Int,
                       lse: Double) -> (Double, Int, Bool) {
        let t = UnsafeRawPointer(teacher), s = UnsafeRawPointer(student)
        let cHi = Float(lse)
        let cLo = Float(lse - Double(cHi))
        var best = SIMD8<Float>(repeating: -.infinity)
        var idx = SIMD8<Int32>(repeating: 0)
        var lanes = laneIndex
        var total: Double = 0
        var block = SIMD8<Float>(repeating: 0)
        var i = 0
        var k = 0
        while i < count {
            let full = count - i >= 8
            let lt = full ? t.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : tail(teacher + i, count - i)
            let z = full ? s.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) : tail(student + i, count - i)
            let gt = lt .> best
            best.replace(with: lt, where: gt)
            idx.replace(with: lanes, where: gt)
            lanes &+= 8
            // Vectors whose teacher log-probs are all below -40 (p_t < 4.3e-18: the long dead tail of
            // a 248k vocabulary) are skipped: even with |log ratio| up to 100 the whole row's skipped
            // part stays below 1.1e-10 nats. NaN fails `.<` and so is never skipped.
            if all(lt .< -40) { i += 8; continue }
            // A NaN log p_t makes p_t and the product NaN, and so the sum: no separate check needed.
            let pt = FastExp.exp(lt)
            let r = (lt - (z - cHi)) + cLo
            // log p_t below -87.33 (p_t underflows; -inf included) contributes exactly 0, even against z = -inf.
            block += (pt * r).replacing(with: 0, where: lt .< -87.33654)
            i += 8
            k += 1
            if k == 64 { total += SIMD8<Double>(block).sum(); block = .zero; k = 0 }
        }
        total += SIMD8<Double>(block).sum()
        let (_, top) = argmax(best, idx)
        return (total, top, total.isNaN)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
