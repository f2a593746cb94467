#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPrefetch

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
/// `kl` reads the student row twice and the teacher's once:
/// 1. `softmaxStats`, block by block (512 values, which stay in L1 while they are read twice): the
///    block's maximum (and NaN check; each block's maximum is kept, so the arg-max is found
///    afterwards by scanning one block instead of tracking indices per value), then `S = Σ exp(z − m)`
///    against the running maximum, summed in f64 and rescaled exactly when the maximum grows:
///    16-value groups with a value above m − 12 use an exp accurate to ~1e-11 (f64 polynomial), the
///    rest the ~1-ulp f32 exp;
/// 2. with `c = m + log S` (the log-sum-exp, split into two floats so `z − c` loses nothing),
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
/// Both passes prefetch two blocks ahead in software, a line or two per 32 values inside their
/// loops (a burst of 32 prefetches per block stalled on the core's line-fill buffers): a row (1 MB
/// at the real vocabulary) does not stay in a core's L2 between passes, and the hardware
/// prefetcher alone idles while a block is computed on (`bench-kl`; docs/PERFORMANCE.md).
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
        let st = softmaxStats(student, count: count, blockMax: scratch + 512)
        let lse = Double(st.max) + log(st.sum)
        let (sum, tTop) = klPass(teacher, student: student, count: count, lse: lse, buffer: scratch, blockMax: scratch + 512,
                                 widening: W.self)
        let kl = (st.nan || lse.isNaN) ? Double.nan : sum
        return KLPoint(kl: kl, studentTop: st.top, teacherTop: tTop)
    }

    /// Log-softmax of `count` logits into `out` (which may be `logits` itself). Returns the
    /// log-sum-exp (NaN when a logit is NaN; then `out` holds NaN wherever it is undefined).
    /// `scratch`: `scratchCount(count)` floats.
    @_transparent
    public static func logSoftmax(_ logits: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int,
                                  scratch: UnsafeMutablePointer<Float>) -> Double {
        guard count > 0 else { return -Double.infinity }
        let st = softmaxStats(logits, count: count, blockMax: scratch + 512)
        let lse = Double(st.max) + log(st.sum)
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
        return st.nan ? .nan : lse
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

    /// Σ of 16 f64 lanes as a fixed tree (lane k and lane k + 8 first).
    @_transparent @usableFromInline
    static func hsum(_ h: SIMD16<Double>) -> Double {
        var d = SIMD8<Double>()
        for k in 0..<8 { d[k] = h[k] + h[k + 8] }
        return hsum(d)
    }

    /// Whether any lane is set. (Written lane-wise: the standard library's `lowHalf`/`highHalf`
    /// are not always inlined into a large function.)
    @_transparent @usableFromInline
    static func anyLane(_ m: SIMDMask<SIMD16<Int32>>) -> Bool {
        let a = unsafeBitCast(m, to: SIMD16<Int32>.self)   // lanes are 0 or -1
        var r: Int32 = 0
        for k in 0..<16 { r |= a[k] }
        return r != 0
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
        (FastExp.exp(l, clampLow: false, clampHigh: true) * ((l - (z - cHi)) + cLo)).replacing(with: 0, where: l .< SIMD16<Float>(repeating: -87.33654))
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

    /// The row's maximum, the lowest index of it (0 if every value is NaN), whether any value is
    /// NaN, and S = Σ exp(z − max) in f64, in one read of the row from memory. Per block of 512
    /// values (2 KB, in L1 from then on): the block's maximum (kept in `blockMax`, a float per
    /// block, so the arg-max is found afterwards by scanning one block), then Σ exp(z − m) against
    /// the running maximum m; when m grows, the sums so far are rescaled by exp(m_old − m_new) in
    /// f64. The blocks two ahead are prefetched: the prefetcher alone stalls while a block is being
    /// computed on.
    ///
    /// A 16-value group with a value above m − 12 uses the f64-accurate exp (those terms carry the
    /// mass, and an f32 exp's per-term rounding would move log S by ~5e-9 nats); the rest use the
    /// f32 exp, whose absolute error there is below 5e-13 per term (e^-12 · 8.1e-8, and unbiased to
    /// ~4e-10 relative). The running maximum is at most the row's, so a group is on the f64 path at
    /// least whenever it would be against the row's maximum.
    @_transparent @usableFromInline
    static func softmaxStats(_ p: UnsafePointer<Float>, count: Int,
                             blockMax: UnsafeMutablePointer<Float>) -> (max: Float, top: Int, nan: Bool, sum: Double) {
        let raw = UnsafeRawPointer(p)
        var nan = SIMDMask<SIMD16<Int32>>(repeating: false)
        var m: Float = -.infinity
        var heavy = SIMD16<Double>(repeating: 0)
        var light: Double = 0
        var b = 0, start = 0
        while start < count {
            let n = min(512, count &- start)
            let z = raw + start &* 4
            // The block two ahead, two lines per 32 values read (spread over the loop, so the
            // prefetches never queue up behind each other).
            let ahead = start &+ 1536 <= count
            // The block's maximum.
            var a0 = SIMD16<Float>(repeating: -.infinity), a1 = a0
            var j = 0
            while j &+ 32 <= n {
                if ahead { distil_prefetch(z + (4096 &+ j &* 4)); distil_prefetch(z + (4160 &+ j &* 4)) }
                let v0 = z.loadUnaligned(fromByteOffset: j &* 4, as: SIMD16<Float>.self)
                let v1 = z.loadUnaligned(fromByteOffset: (j &+ 16) &* 4, as: SIMD16<Float>.self)
                nan .|= (v0 .!= v0) .| (v1 .!= v1)
                a0 = vmax(a0, v0); a1 = vmax(a1, v1)
                j &+= 32
            }
            while j < n {
                let v = n &- j >= 16 ? z.loadUnaligned(fromByteOffset: j &* 4, as: SIMD16<Float>.self) : tail(p + (start &+ j), n &- j)
                nan .|= v .!= v
                a0 = vmax(a0, v)
                j &+= 16
            }
            let bm = hmax(vmax(a0, a1))
            blockMax[b] = bm
            if bm > m {
                let f = exp(Double(m) - Double(bm))   // 0 while m is -inf (the sums are 0 then)
                heavy *= SIMD16<Double>(repeating: f)
                light *= f
                m = bm
            }
            // The block's Σ exp(z − m); nothing while every value so far is -inf.
            if m > -.infinity {
                // Two chains of light sums (the exp's latency is long), added at the block's end.
                var l0 = SIMD16<Float>(repeating: 0), l1 = l0
                j = 0
                while j &+ 32 <= n {
                    expSumStep(z.loadUnaligned(fromByteOffset: j &* 4, as: SIMD16<Float>.self) - m, &heavy, &l0)
                    expSumStep(z.loadUnaligned(fromByteOffset: (j &+ 16) &* 4, as: SIMD16<Float>.self) - m, &heavy, &l1)
                    j &+= 32
                }
                while j < n {
                    let v = n &- j >= 16 ? z.loadUnaligned(fromByteOffset: j &* 4, as: SIMD16<Float>.self) : tail(p + (start &+ j), n &- j)
                    expSumStep(v - m, &heavy, &l0)
                    j &+= 16
                }
                light += hsum(l0 + l1)
            }
            b &+= 1
            start &+= n
        }
        var top = 0
        if let fb = firstBlock(of: m, blockMax, blocks: b), let k = firstIndex(of: m, p + fb &* 512, min(512, count &- fb &* 512)) {
            top = fb &* 512 &+ k
        }
        return (m, top, anyLane(nan), hsum(heavy) + light)
    }

    /// One vector of `softmaxStats`: the f64 exp when a lane is above −12, else the f32 one (x ≤ 0
    /// or NaN, so no upper clamp).
    @_transparent @usableFromInline
    static func expSumStep(_ x: SIMD16<Float>, _ heavy: inout SIMD16<Double>, _ light: inout SIMD16<Float>) {
        if anyLane(x .> SIMD16<Float>(repeating: -12)) {
            heavy += FastExp.exp64(x)
        } else {
            light += FastExp.exp(x, clampLow: true, clampHigh: false)
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
            // The blocks two ahead, spread over the loop: per 32 values, two lines of the student's
            // and one of a binary16 teacher row's (two of an f32 row's).
            let ahead = start &+ 1536 <= count
            let zAhead = s + (start &+ 1024) &* 4
            let tAhead: UnsafeRawPointer, tStride: Int   // no closure here (see the type's note)
            if let h = teacher.binary16 { tAhead = h + (start &+ 1024) &* 2; tStride = 64 }
            else { tAhead = UnsafeRawPointer(teacher.logProbs! + (start &+ 1024)); tStride = 128 }
            let lt = teacherBlock(teacher, start, n, buffer: buffer, nextExact: &nextExact, W.self)
            let t = UnsafeRawPointer(lt)
            var sum = SIMD16<Float>(repeating: 0)
            var top = SIMD16<Float>(repeating: -.infinity)
            // Two chains (the exp's latency is long), added at the block's end.
            var sum1 = sum
            var j = 0
            while j &+ 32 <= n {
                if ahead {
                    distil_prefetch(zAhead + j &* 4); distil_prefetch(zAhead + (j &* 4 &+ 64))
                    distil_prefetch(tAhead + (j &>> 5) &* tStride)
                    if tStride == 128 { distil_prefetch(tAhead + ((j &>> 5) &* tStride &+ 64)) }
                }
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
