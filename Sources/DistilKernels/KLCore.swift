#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// KL(teacher ‖ student) at one position over the full vocabulary.
public struct KLPoint: Equatable, Sendable {
    /// KL in nats; NaN when any input value was NaN, +inf when the student gives zero probability to a
    /// token the teacher does not.
    public var kl: Double
    /// The student's most likely token (lowest id on ties).
    public var studentTop: Int
    /// The teacher's most likely token (lowest id on ties).
    public var teacherTop: Int

    @inlinable
    public init(kl: Double, studentTop: Int, teacherTop: Int) {
        self.kl = kl; self.studentTop = studentTop; self.teacherTop = teacherTop
    }
}

/// A teacher row as the KL kernel reads it: f32 log-probs, or the teacher stream's form of them
/// (binary16 log-probs and a list of exact f32 entries that overwrite theirs).
public struct KLTeacherRow {
    @usableFromInline let logProbs: UnsafePointer<Float>?
    @usableFromInline let binary16: UnsafeRawPointer?
    @usableFromInline let exact: UnsafeRawPointer?
    @usableFromInline let exactCount: Int

    /// `count` f32 natural-log probabilities.
    public init(logProbs: UnsafePointer<Float>) {
        self.logProbs = logProbs; binary16 = nil; exact = nil; exactCount = 0
    }

    /// `count` little-endian binary16 log-probs at `binary16`, and `exactCount` (u32 id, f32 log-prob)
    /// little-endian pairs at `exact` with ids strictly increasing and below `count` (the teacher
    /// stream reader validates that), whose values replace the binary16 ones.
    public init(binary16: UnsafeRawPointer, exact: UnsafeRawPointer?, exactCount: Int) {
        logProbs = nil; self.binary16 = binary16; self.exact = exactCount > 0 ? exact : nil; self.exactCount = exactCount
    }

    /// The row as `count` f32 log-probs into `out` (the exact values written over the binary16 ones).
    public func decode(into out: UnsafeMutablePointer<Float>, count: Int) {
        if let lp = logProbs { out.update(from: lp, count: count); return }
        Binary16.decode(raw: binary16!, out, count)
        var next = 0
        patchExact(0, count, into: out, next: &next)
    }

    /// Writes the exact values of ids `start ..< start + n` over `block` (those ids' values), from
    /// exact entry `next` on (entries are in increasing id order); `next` ends at the first entry
    /// past the block.
    @_transparent @usableFromInline
    func patchExact(_ start: Int, _ n: Int, into block: UnsafeMutablePointer<Float>, next: inout Int) {
        guard let e = exact else { return }
        while next < exactCount {
            let id = Int(UInt32(littleEndian: e.loadUnaligned(fromByteOffset: 8 &* next, as: UInt32.self)))
            if id >= start &+ n { break }
            if id >= start {
                block[id &- start] = Float(bitPattern: UInt32(littleEndian: e.loadUnaligned(fromByteOffset: 8 &* next &+ 4, as: UInt32.self)))
            }
            next &+= 1
        }
    }
}

/// The full-vocabulary KL and log-softmax kernels (vocabulary 248,320; ~20k positions per model per
/// epoch), written once over `SIMD16<Float>` and compiled into a module per x86-64 level (baseline,
/// v3 with AVX2 and F16C, v4 with AVX-512; `KLKernel` in DistilScore picks one at run time). Every
/// operation is lane-wise on 16 lanes and every horizontal sum a fixed tree, so all builds give
/// bit-identical results (tested); a wider build only runs the same lanes in fewer instructions.
///
/// `kl` makes two passes over the student row and one over the teacher's:
/// 1. the student's maximum `m` (and NaN check); each 512-value block's maximum is kept, so the
///    arg-max is found afterwards by scanning one block instead of tracking indices per value;
/// 2. `S = Σ exp(z − m)` summed in f64: 16-value groups with a value above m − 12 use an exp accurate
///    to ~1e-11 (f64 polynomial), the rest the ~1-ulp f32 exp;
/// 3. with `c = m + log S` (the log-sum-exp, split into two floats so `z − c` loses nothing),
///    `Σ p_t · (log p_t − (z − c))` with `p_t` from the f32 exp, each block of 512 products summed in
///    f32 and folded into f64. A binary16 teacher row is widened one 512-value block at a time into a
///    buffer that stays in L1 (exact values patched in), so the kernel reads 2 bytes per teacher
///    value from memory. A NaN teacher value propagates into the sum. The summands are the pointwise
///    log-ratios weighted by p_t, which are small where p_t is large, so there is no cancellation
///    between two entropy-sized sums.
/// A teacher log-prob below −87.33654 (where p_t would be subnormal; −inf included) contributes
/// exactly 0, even against a student logit of −inf. (The kernels spell constants as literals: a
/// `static let` is a lazily initialised global whose access check can stop inlining.)
///
/// The student row (1 MB at the real vocabulary) is read from memory once and from the core's L2 by
/// the later passes.
///
/// Every function here is `@_transparent` (inlined even across modules), without closures, and calls only standard-library
/// code that inlines: the instruction-set modules must emit no out-of-line copy of shared code
/// (the linker keeps one copy of a weak symbol for the whole program, which could hand AVX-512 code
/// to a baseline caller). `KernelBuildTests` checks their object files for that.
public enum KLCore {
    /// Floats of scratch `kl` needs for a row of `count` values.
    @_transparent
    public static func scratchCount(_ count: Int) -> Int { 512 + (count + 511) / 512 }

    /// KL(teacher ‖ student) at one position; `student`: raw logits; both rows `count` values;
    /// `scratch`: `scratchCount(count)` floats.
    @_transparent
    public static func kl<W: Binary16Widening>(_ teacher: KLTeacherRow, student: UnsafePointer<Float>, count: Int,
                                               scratch: UnsafeMutablePointer<Float>, widening: W.Type) -> KLPoint {
        guard count > 0 else { return KLPoint(kl: 0, studentTop: 0, teacherTop: 0) }
        let (m, sTop, sNaN) = maxPass(student, count: count, blockMax: scratch + 512)
        let lse = Double(m) + log(expSumPass(student, count: count, max: m))
        let (sum, tTop) = klPass(teacher, student: student, count: count, lse: lse, buffer: scratch, blockMax: scratch + 512,
                                 widening: W.self)
        let kl = (sNaN || lse.isNaN) ? Double.nan : sum
        return KLPoint(kl: kl, studentTop: sTop, teacherTop: tTop)
    }

    /// Log-softmax of `count` logits into `out` (which may be `logits` itself). Returns the
    /// log-sum-exp (NaN when a logit is NaN; then `out` holds NaN wherever it is undefined).
    /// `scratch`: `scratchCount(count)` floats.
    @_transparent
    public static func logSoftmax(_ logits: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int,
                                  scratch: UnsafeMutablePointer<Float>) -> Double {
        guard count > 0 else { return -Double.infinity }
        let (m, _, nan) = maxPass(logits, count: count, blockMax: scratch + 512)
        let lse = Double(m) + log(expSumPass(logits, count: count, max: m))
        let cHi = Float(lse)
        let cLo = Float(lse - Double(cHi))
        let raw = UnsafeRawPointer(logits), outRaw = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 16 <= count {
            let z = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            outRaw.storeBytes(of: (z - cHi) - cLo, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { out[i] = (logits[i] - cHi) - cLo; i += 1 }
        return nan ? .nan : lse
    }

    // MARK: lane helpers

    /// Lane-wise maximum ignoring NaN in `b` (the callers track NaN themselves); the standard
    /// library's `pointwiseMax` is not inlined and costs a call per vector.
    @_transparent @usableFromInline
    static func vmax(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> { a.replacing(with: b, where: b .> a) }

    /// The largest lane (not NaN unless every lane is).
    @_transparent @usableFromInline
    static func hmax(_ v: SIMD16<Float>) -> Float {
        var m = v[0]
        for k in 1..<16 where v[k] > m { m = v[k] }
        return m
    }

    /// Σ of the lanes widened to f64, as a fixed tree (neighbours added pairwise), the same on
    /// every build.
    @_transparent @usableFromInline
    static func hsum(_ v: SIMD16<Float>) -> Double {
        var d = SIMD8<Double>()
        for k in 0..<8 { d[k] = Double(v[2 * k]) + Double(v[2 * k + 1]) }
        return hsum(d)
    }

    @_transparent @usableFromInline
    static func hsum(_ d: SIMD8<Double>) -> Double {
        ((d[0] + d[1]) + (d[2] + d[3])) + ((d[4] + d[5]) + (d[6] + d[7]))
    }

    /// Whether any lane is set.
    @_transparent @usableFromInline
    static func anyLane(_ m: SIMDMask<SIMD16<Int32>>) -> Bool {
        // Lanes are 0 or -1: OR them down a tree.
        let a = unsafeBitCast(m, to: SIMD16<Int32>.self)
        let b = a.lowHalf | a.highHalf, c = b.lowHalf | b.highHalf, d = c.lowHalf | c.highHalf
        return (d[0] | d[1]) != 0
    }

    /// A partial vector: the `n` < 16 values at `p`, the other lanes `fill`.
    @_transparent @usableFromInline
    static func tail(_ p: UnsafePointer<Float>, _ n: Int, fill: Float = -.infinity) -> SIMD16<Float> {
        var v = SIMD16<Float>(repeating: fill)
        for k in 0..<n { v[k] = p[k] }
        return v
    }

    /// The teacher's values `start ..< start + n` (one block) as f32 log-probs: in place for an f32
    /// row, else widened into `buffer` with the exact values patched in (`nextExact`: the first
    /// exact entry not yet passed; entries are in increasing id order).
    @_transparent @usableFromInline
    static func teacherBlock<W: Binary16Widening>(_ teacher: KLTeacherRow, _ start: Int, _ n: Int, buffer: UnsafeMutablePointer<Float>,
                                                  nextExact: inout Int, _: W.Type) -> UnsafePointer<Float> {
        if let lp = teacher.logProbs { return lp + start }
        W.widen(teacher.binary16! + 2 * start, buffer, n)
        teacher.patchExact(start, n, into: buffer, next: &nextExact)
        return UnsafePointer(buffer)
    }

    /// p_t · (log p_t − log p_s) for 16 positions: `l` the teacher's log-probs, `z` the student's
    /// logits, lse = cHi + cLo. p_t = 0 (log p_t below -87.33654, -inf included) contributes exactly
    /// 0, even against z = -inf; a NaN log p_t is not below anything and so reaches the sum.
    @_transparent @usableFromInline
    static func klTerm(_ l: SIMD16<Float>, _ z: SIMD16<Float>, _ cHi: Float, _ cLo: Float) -> SIMD16<Float> {
        (FastExp.exp(l) * ((l - (z - cHi)) + cLo)).replacing(with: 0, where: l .< SIMD16<Float>(repeating: -87.33654))
    }

    /// The block whose maximum is `m` first (the lowest such block), or nil.
    @_transparent @usableFromInline
    static func firstBlock(of m: Float, _ blockMax: UnsafeMutablePointer<Float>, blocks: Int) -> Int? {
        var b = 0
        while b < blocks { if blockMax[b] == m { return b }; b += 1 }
        return nil
    }

    /// The lowest index in `p[0..<n]` whose value equals `m`, or nil.
    @_transparent @usableFromInline
    static func firstIndex(of m: Float, _ p: UnsafePointer<Float>, _ n: Int) -> Int? {
        var i = 0
        while i < n { if p[i] == m { return i }; i += 1 }
        return nil
    }

    // MARK: passes

    /// Maximum, lowest index of the maximum (0 if every value is NaN), and whether any value is NaN.
    /// `blockMax`: room for a float per 512 values.
    @_transparent @usableFromInline
    static func maxPass(_ p: UnsafePointer<Float>, count: Int, blockMax: UnsafeMutablePointer<Float>) -> (Float, Int, Bool) {
        let raw = UnsafeRawPointer(p)
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        var best = SIMD16<Float>(repeating: -.infinity)
        var b = 0, i = 0
        while i < count {
            let end = min(count, i + 512)
            var a0 = SIMD16<Float>(repeating: -.infinity), a1 = a0
            while i + 32 <= end {
                let v0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                let v1 = raw.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self)
                nan .|= (v0 .!= v0) .| (v1 .!= v1)
                a0 = vmax(a0, v0); a1 = vmax(a1, v1)
                i += 32
            }
            while i < end {
                let v = end - i >= 16 ? raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) : tail(p + i, end - i)
                nan .|= v .!= v
                a0 = vmax(a0, v)
                i += 16
            }
            let bm = vmax(a0, a1)
            best = vmax(best, bm)
            blockMax[b] = hmax(bm)
            b += 1
            i = end
        }
        let m = hmax(best)
        var top = 0
        if let fb = firstBlock(of: m, blockMax, blocks: b), let k = firstIndex(of: m, p + fb * 512, min(512, count - fb * 512)) {
            top = fb * 512 + k
        }
        return (m, top, anyLane(nan))
    }

    /// Σ exp(z − m) in f64. A group of 16 with a value above m − 12 uses the f64-accurate exp (those
    /// terms carry the mass, and an f32 exp's ±3e-8 per-term rounding would move log S by ~5e-9
    /// nats); the rest use the f32 exp, whose absolute error there is below 4e-13 per term (e^-12 ·
    /// 6e-8), ~2e-10 in log S even if 248k such terms erred randomly.
    @_transparent @usableFromInline
    static func expSumPass(_ p: UnsafePointer<Float>, count: Int, max m: Float) -> Double {
        let raw = UnsafeRawPointer(p)
        var heavy = SIMD16<Double>(repeating: 0)
        var lightBlocks: Double = 0
        var i = 0
        // Blocks of 512 (32 vectors, the light sum folded into f64 after each), the loop over a
        // full block free of bounds and overflow checks.
        while i < count {
            var light = SIMD16<Float>(repeating: 0)
            if count &- i >= 512 {
                // Two chains of light sums (the exp's latency is long), added at the block's end.
                var k = 0
                var light1 = light
                while k < 512 {
                    expSumStep(raw.loadUnaligned(fromByteOffset: (i &+ k) &* 4, as: SIMD16<Float>.self) - m, &heavy, &light)
                    expSumStep(raw.loadUnaligned(fromByteOffset: (i &+ k &+ 16) &* 4, as: SIMD16<Float>.self) - m, &heavy, &light1)
                    k &+= 32
                }
                light += light1
                i &+= 512
            } else {
                while i < count {
                    let x = (count &- i >= 16 ? raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self) : tail(p + i, count &- i)) - m
                    expSumStep(x, &heavy, &light)
                    i &+= 16
                }
            }
            lightBlocks += hsum(light)
        }
        return hsum(heavy.lowHalf + heavy.highHalf) + lightBlocks
    }

    /// One vector of `expSumPass`: the f64 exp when a lane is above −12, else the f32 one.
    @_transparent @usableFromInline
    static func expSumStep(_ x: SIMD16<Float>, _ heavy: inout SIMD16<Double>, _ light: inout SIMD16<Float>) {
        if anyLane(x .> SIMD16<Float>(repeating: -12)) {
            heavy += FastExp.exp64(x)
        } else {
            light += FastExp.exp(x)
        }
    }

    /// Σ p_t (log p_t − (z − lse)) and the teacher's arg-max. NaN in the teacher's values makes the
    /// sum NaN. `buffer`: 512 floats; `blockMax`: a float per 512 values.
    ///
    /// log p_t − log p_s is computed as (log p_t − (z − cHi)) + cLo with lse = cHi + cLo: z − cHi is
    /// exact near the top, the difference of two close values is exact (Sterbenz), and cLo is added to
    /// a small number instead of being rounded away against a large one. Products are summed in f32
    /// over blocks of 512 and the blocks in f64.
    @_transparent @usableFromInline
    static func klPass<W: Binary16Widening>(_ teacher: KLTeacherRow, student: UnsafePointer<Float>, count: Int, lse: Double,
                                            buffer: UnsafeMutablePointer<Float>, blockMax: UnsafeMutablePointer<Float>,
                                            widening: W.Type) -> (Double, Int) {
        let s = UnsafeRawPointer(student)
        let cHi = Float(lse)
        let cLo = Float(lse - Double(cHi))
        var nextExact = 0
        var best = SIMD16<Float>(repeating: -.infinity)
        var total: Double = 0
        var b = 0, start = 0
        while start < count {
            let n = min(512, count - start)
            let lt = teacherBlock(teacher, start, n, buffer: buffer, nextExact: &nextExact, W.self)
            let t = UnsafeRawPointer(lt)
            var sum = SIMD16<Float>(repeating: 0)
            var top = SIMD16<Float>(repeating: -.infinity)
            // Two chains (the exp's latency is long), added at the block's end.
            var sum1 = sum
            var j = 0
            while j &+ 32 <= n {
                let l = t.loadUnaligned(fromByteOffset: j &* 4, as: SIMD16<Float>.self)
                let z = s.loadUnaligned(fromByteOffset: (start &+ j) &* 4, as: SIMD16<Float>.self)
                let l1 = t.loadUnaligned(fromByteOffset: (j &+ 16) &* 4, as: SIMD16<Float>.self)
                let z1 = s.loadUnaligned(fromByteOffset: (start &+ j &+ 16) &* 4, as: SIMD16<Float>.self)
                top = vmax(vmax(top, l), l1)
                sum += klTerm(l, z, cHi, cLo)
                sum1 += klTerm(l1, z1, cHi, cLo)
                j &+= 32
            }
            sum += sum1
            while j &+ 16 <= n {
                let l = t.loadUnaligned(fromByteOffset: j &* 4, as: SIMD16<Float>.self)
                let z = s.loadUnaligned(fromByteOffset: (start &+ j) &* 4, as: SIMD16<Float>.self)
                top = vmax(top, l)
                sum += klTerm(l, z, cHi, cLo)
                j &+= 16
            }
            if j < n {
                let l = tail(lt + j, n &- j), z = tail(student + start + j, n &- j, fill: 0)
                top = vmax(top, l)
                sum += klTerm(l, z, cHi, cLo)
            }
            total += hsum(sum)
            best = vmax(best, top)
            blockMax[b] = hmax(top)
            b += 1
            start += n
        }
        let m = hmax(best)
        var tTop = 0
        if let fb = firstBlock(of: m, blockMax, blocks: b) {
            // The arg-max block is read again (widened again when the row is binary16).
            nextExact = 0
            let n = min(512, count - fb * 512)
            if let k = firstIndex(of: m, teacherBlock(teacher, fb * 512, n, buffer: buffer, nextExact: &nextExact, W.self), n) {
                tTop = fb * 512 + k
            }
        }
        return (total, tTop)
    }
}

/// `KLCore`'s kernels as built for the package's baseline (x86-64 with SSE2, or arm64).
public enum KernelsBaseline {
    public static func kl(_ teacher: KLTeacherRow, student: UnsafePointer<Float>, count: Int) -> KLPoint {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: KLCore.scratchCount(count))
        defer { scratch.deallocate() }
        #if arch(x86_64)
        return KLCore.kl(teacher, student: student, count: count, scratch: scratch, widening: TableWidening.self)
        #else
        return KLCore.kl(teacher, student: student, count: count, scratch: scratch, widening: VectorWidening.self)
        #endif
    }

    public static func logSoftmax(_ logits: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) -> Double {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: KLCore.scratchCount(count))
        defer { scratch.deallocate() }
        return KLCore.logSoftmax(logits, into: out, count: count, scratch: scratch)
    }
}
