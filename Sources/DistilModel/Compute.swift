import DistilKernels
#if arch(x86_64)
import DistilKernelsX86v3
import DistilKernelsX86v4
#endif
import DistilTensors
import Dispatch
import Foundation

/// How the engine spends its threads, and its products.
///
/// OpenBLAS runs single-threaded; the engine splits work itself into pieces whose boundaries depend
/// only on the shapes (panels of output columns, heads, experts), each computed start to finish by
/// one thread with one single-threaded sgemm. So every output value is computed the same way
/// whatever the thread count: outputs are byte-identical across runs and across `--threads`.
struct Compute: @unchecked Sendable {
    private(set) var threads: Int
    /// Products of up to this many rows of bf16 weights widen them in registers (`directRows`, or
    /// `decodeDirectRows` in a decode step: `decoding`).
    private(set) var directRowLimit = Compute.directRows

    init(threads: Int) {
        self.threads = max(1, threads)
        BLAS.setThreads(1)
        Compute.keepFreedMemory()
    }

    /// A forward pass allocates and frees buffers of megabytes many times per layer. glibc's malloc
    /// serves such sizes with fresh mmap()s, or trims freed heap memory back to the kernel, so every
    /// allocation page-faults and zeroes its pages again (measured: weight conversion ran 9x slower
    /// inside the forward than alone). Keep freed memory in the process instead: buffers up to 64 MiB
    /// come from the heap, and the heap is not trimmed below 1 GiB.
    static func keepFreedMemory() {
        #if os(Linux)
        _ = glibcMallopt(-3, 64 << 20)   // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 1 << 30)    // M_TRIM_THRESHOLD
        #endif
    }

    /// Runs body(i) for i in 0..<n, spread over the threads (thread k takes i = k, k + threads, ...).
    func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 0 { return }
        let workers = min(threads, n)
        if workers == 1 {
            Compute.flushingSubnormals { for i in 0..<n { body(i) } }
            return
        }
        withoutActuallyEscaping(body) { b in
            let box = UncheckedBox(b)
            DispatchQueue.concurrentPerform(iterations: workers) { k in
                Compute.flushingSubnormals {
                    var i = k
                    while i < n { box.value(i); i += workers }
                }
            }
        }
    }

    /// This compute on one thread (for work that is itself spread over the threads, piece by piece).
    var serial: Compute {
        var c = self
        c.threads = 1
        return c
    }

    /// Runs body(i) for i in 0..<n on the threads, each taking the next i when it is free (pieces of
    /// uneven size; which thread runs a piece must not change its result).
    func forEachDynamic(_ n: Int, _ body: (Int) -> Void) {
        let workers = min(threads, n)
        guard workers > 1 else { return forEach(n, body) }
        let next = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        next.initialize(to: 0)
        defer { next.deallocate() }
        let lock = NSLock()
        withoutActuallyEscaping(body) { b in
            let box = UncheckedBox(b), counter = UncheckedBox(next)
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                Compute.flushingSubnormals {
                    while true {
                        lock.lock(); let i = counter.value.pointee; counter.value.pointee += 1; lock.unlock()
                        if i >= n { break }
                        box.value(i)
                    }
                }
            }
        }
    }

    /// body(range) over `rows` rows in blocks of `block` (fixed: each row is computed whole by one
    /// thread, whatever the thread count), spread over the threads.
    func forRows(_ rows: Int, block: Int = 16, _ body: (Range<Int>) -> Void) {
        let b = max(1, block)
        forEach((rows + b - 1) / b) { i in body((i * b)..<min(rows, (i + 1) * b)) }
    }

    /// x += d elementwise over [rows x n].
    func add(_ x: inout [Float], _ d: [Float], rows: Int, n: Int) {
        x.withUnsafeMutableBufferPointer { xp in d.withUnsafeBufferPointer { dp in
            let xb = xp.baseAddress!, db = dp.baseAddress!
            forRows(rows) { r in for i in (r.lowerBound * n)..<(r.upperBound * n) { xb[i] += db[i] } }
        } }
    }

    /// Rows of a converted weight panel: about 1 MiB of f32 so the panel stays in cache between its
    /// conversion and the sgemm that reads it, but at least 256: every sgemm call packs all of X
    /// again, which costs as much as ~T·K·64 multiply-adds, so narrow panels over a wide X (the MLP's
    /// down projection, K = 3584) spend a large share of the time packing.
    static func panelRows(cols: Int) -> Int {
        max(256, min(512, ((1 << 18) / max(1, cols)) / 16 * 16))
    }

    /// Up to this many rows, a bf16 product widens the weights in registers (`BF16Product`) instead
    /// of converting panels for sgemm: decode steps of small batches, and the few rows each expert
    /// gets. The weights stream from memory once at 2 bytes each, with no f32 copy written and read.
    /// Measured (one thread, a 16384 x 2048 bf16 matrix, AVX-512 box): 1 row 3.7 ms against 5.9 ms
    /// for convert + sgemm, 4 rows 11.6 against 20.2, 8 rows 22.8 against 21.2 (sgemm wins from there).
    static let directRows = 4
    /// The same limit in a decode step (`decoding`). With the x86-64-v4 build, every product of a step
    /// of up to 64 sequences (projections, experts, the LM head) widens bf16 in registers, four weight
    /// rows by four rows of x at a time: blocks of 64 weight rows (256 KiB at K = 2048) stay in L2
    /// while the rows pass over them, so the weights stream from memory once, and no f32 copy is
    /// written, packed and read. Each output is computed the same way whatever the row count, so a
    /// step's results do not depend on the batch. Measured (bench-engine --products, one thread, a
    /// 16384 x 2048 matrix, thread CPU ms, this AMD EPYC under load ~10): 40 rows 30.4 against 53.1 for
    /// convert + sgemm (Cooperlake), 64 rows 46.0 against 68.9. The -v3 build (16 registers: one weight
    /// row at a time) took 63.7 at 40 rows against OpenBLAS's Haswell sgemm's 35.3, so on AVX2 only the
    /// first 4 rows go direct, as in prefill (where sgemm stays above 4 rows: bits unchanged).
    static let decodeDirectRows = directLevel == 4 ? 64 : directRows

    /// This compute, with the decode step's limit for widening bf16 in registers.
    var decoding: Compute {
        var c = self
        c.directRowLimit = Compute.decodeDirectRows
        return c
    }
    /// The x86-64 level whose `BF16Product` build runs (3 or 4), or nil: sgemm on converted panels
    /// only (other CPUs, or DISTIL_ENGINE_SGEMM_ONLY=1 for comparisons).
    static let directLevel: Int? = {
        if ProcessInfo.processInfo.environment["DISTIL_ENGINE_SGEMM_ONLY"] == "1" { return nil }
        return CPUFeatures.x86Level >= 3 ? CPUFeatures.x86Level : nil
    }()

    /// Y[T x N] = X[T x K] · Wᵀ (+ bias), W [N x K] in its stored dtype; Y's rows are `ldy` apart.
    /// W is converted to f32 one panel of rows at a time (never as a whole) and each panel goes
    /// through sgemm with all T rows; a bf16 W with at most `directRows` rows is read in place.
    func matmul(_ x: UnsafePointer<Float>, rows T: Int, _ w: Matrix, into y: UnsafeMutablePointer<Float>, ldy: Int,
                bias: [Float]? = nil) {
        let N = w.rows, K = w.cols
        guard T > 0, N > 0 else { return }
        #if arch(x86_64)
        if w.dtype == .bf16, T <= directRowLimit, let level = Compute.directLevel {
            // Blocks of 64 outputs: each output is computed whole by one thread, whatever the split.
            let B = 64
            forEach((N + B - 1) / B) { bi in
                let r0 = bi * B, r1 = min(N, r0 + B)
                if level >= 4 {
                    DistilKernelsX86v4.Kernels.bf16Rows(x: x, rows: T, w: w.base, k: K, from: r0, to: r1, y: y, ldy: ldy)
                } else {
                    DistilKernelsX86v3.Kernels.bf16Rows(x: x, rows: T, w: w.base, k: K, from: r0, to: r1, y: y, ldy: ldy)
                }
                if let bias {
                    for r in 0..<T { for j in r0..<r1 { y[r * ldy + j] += bias[j] } }
                }
            }
            return
        }
        #endif
        let P = Compute.panelRows(cols: K)
        let panels = (N + P - 1) / P
        let direct = w.float32Pointer
        forEach(panels) { pi in
            let r0 = pi * P, n = min(P, N - r0)
            if let d = direct {
                BLAS.gemmNT(m: T, n: n, k: K, a: x, lda: K, b: d + r0 * K, ldb: K, c: y + r0, ldc: ldy)
            } else {
                let panel = UnsafeMutablePointer<Float>.allocate(capacity: n * K)
                defer { panel.deallocate() }
                w.convert(rows: r0, count: n, into: panel)
                BLAS.gemmNT(m: T, n: n, k: K, a: x, lda: K, b: panel, ldb: K, c: y + r0, ldc: ldy)
            }
            if let bias {
                for r in 0..<T { for j in r0..<(r0 + n) { y[r * ldy + j] += bias[j] } }
            }
        }
    }

    /// X · Wᵀ (+ bias) as a new [T x N] array.
    func linear(_ x: [Float], _ T: Int, _ w: Matrix, bias: [Float]? = nil) -> [Float] {
        // Every element is written by the products (beta = 0): no zero-filling first.
        [Float](unsafeUninitializedCapacity: T * w.rows) { yp, count in
            x.withUnsafeBufferPointer { xp in
                matmul(xp.baseAddress!, rows: T, w, into: yp.baseAddress!, ldy: w.rows, bias: bias)
            }
            count = T * w.rows
        }
    }
}

extension Compute {
    /// Runs `body` with subnormal floats flushed to zero on this thread (x86 MXCSR FTZ + DAZ, arm64
    /// FPCR FZ), then restores the thread's mode. Every thread of a forward pass runs this way, so
    /// results do not depend on which thread computes what.
    ///
    /// Why: gated decays e^{G} (DeltaNet) and long products make values below 1.2e-38, and every x86
    /// instruction that meets one takes a microcode assist of ~100 cycles: the DeltaNet chunk products
    /// ran 9x slower than with flushing (bench-engine: 5.4 s against 1.0 s per scoring on one thread),
    /// for values whose contribution to any logit is below 1e-37.
    @inline(__always)
    static func flushingSubnormals<R>(_ body: () throws -> R) rethrows -> R {
        #if os(Linux) && (arch(x86_64) || arch(arm64))
        var env = fenv_t()
        fegetenv(&env)
        let saved = env
        #if arch(x86_64)
        env.__mxcsr |= 0x8040           // FTZ (bit 15) | DAZ (bit 6)
        #else
        env.__fpcr |= 1 << 24           // FZ
        #endif
        fesetenv(&env)
        defer { var s = saved; fesetenv(&s) }
        return try body()
        #else
        return try body()
        #endif
    }
}

#if os(Linux)
/// glibc's mallopt(3) (malloc.h is not part of the Glibc module).
@_silgen_name("mallopt") func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
#endif

/// Lets a non-escaping closure cross into concurrentPerform (which needs a Sendable one); the engine
/// guarantees the pieces write disjoint memory.
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}

/// Wall time by section of the forward pass, for finding where a decode step goes: on only when
/// DISTIL_PROFILE is set (then printed to stderr at exit, sections sorted by time). Off, a section
/// costs one branch on a constant.
public enum Profile {
    public static let enabled: Bool = {
        guard ProcessInfo.processInfo.environment["DISTIL_PROFILE"] != nil else { return false }
        atexit { Profile.report() }
        return true
    }()
    /// "step" or "prefill": set by the forward pass for the sections inside it (one forward at a time).
    nonisolated(unsafe) static var phase = ""
    nonisolated(unsafe) static var totals: [String: (seconds: Double, calls: Int)] = [:]
    static let lock = NSLock()

    @inline(__always)
    public static func time<R>(_ name: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer {
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, key = name()
            lock.lock(); totals[key, default: (0, 0)].seconds += s; totals[key, default: (0, 0)].calls += 1; lock.unlock()
        }
        return try body()
    }

    static func report() {
        lock.lock(); defer { lock.unlock() }
        var text = "profile (DISTIL_PROFILE): seconds, calls\n"
        for (k, v) in totals.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            text += String(format: "  %-28@ %9.3f s %8d\n", k as NSString, v.seconds, v.calls)
        }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
