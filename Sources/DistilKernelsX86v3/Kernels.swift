import DistilKernels

/// The kernels of `KLCore` compiled for one x86-64 level: this file is the source of two modules,
/// DistilKernelsX86v3 (built for x86-64-v3: AVX2, FMA, F16C) and DistilKernelsX86v4 (x86-64-v4:
/// AVX-512), through a symbolic link; the inlined bodies are generated in each with its target CPU.
/// Call a module's `Kernels` only on a CPU that has its level (`KLKernel` in DistilScore checks);
/// results are bit-identical to the baseline's.
///
/// An incremental build does not recompile this module when only the body of a DistilKernels
/// function changes (its interface does not): after editing DistilKernels, `touch` this file.
/// KernelBuildTests' bit-identity test fails on such a stale build; a clean build is never stale.
public enum Kernels {
    public static func kl(_ teacher: KLTeacherRow, student: UnsafePointer<Float>, count: Int) -> KLPoint {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: KLCore.scratchCount(count))
        defer { scratch.deallocate() }
        return KLCore.kl(teacher, student: student, count: count, scratch: scratch, widening: VectorWidening.self)
    }

    public static func logSoftmax(_ logits: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) -> Double {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: KLCore.scratchCount(count))
        defer { scratch.deallocate() }
        return KLCore.logSoftmax(logits, into: out, count: count, scratch: scratch)
    }

    /// Rows of x against a bf16 weight matrix widened in registers (`BF16Product`, built here).
    /// Where 32 registers hold the accumulators (v4), groups of four rows take four weight rows at a
    /// time, then two (same bits: bench-engine --products measures the blockings).
    public static func bf16Rows(x: UnsafePointer<Float>, rows: Int, w: UnsafeRawPointer, k: Int, from n0: Int, to n1: Int,
                                y: UnsafeMutablePointer<Float>, ldy: Int) {
        #if VECTOR_REGISTERS_32
        bf16Rows(x: x, rows: rows, w: w, k: k, from: n0, to: n1, y: y, ldy: ldy, quads: true)
        #else
        BF16Product.rows(x: x, rows: rows, w: w, k: k, from: n0, to: n1, y: y, ldy: ldy, pairs: false)
        #endif
    }

    /// `bf16Rows` with a chosen blocking (`quads`: four weight rows at a time where it can; on v4).
    public static func bf16Rows(x: UnsafePointer<Float>, rows: Int, w: UnsafeRawPointer, k: Int, from n0: Int, to n1: Int,
                                y: UnsafeMutablePointer<Float>, ldy: Int, quads: Bool) {
        var t0 = 0
        #if VECTOR_REGISTERS_32
        if quads && k % 16 == 0 {
            while t0 + 4 <= rows {
                let done = BF16Product.quads(x: x + t0 * k, w: w, k: k, from: n0, to: n1, y: y + t0 * ldy, ldy: ldy)
                if done < n1 { BF16Product.rows(x: x + t0 * k, rows: 4, w: w, k: k, from: done, to: n1, y: y + t0 * ldy, ldy: ldy, pairs: true) }
                t0 += 4
            }
        }
        if t0 < rows { BF16Product.rows(x: x + t0 * k, rows: rows - t0, w: w, k: k, from: n0, to: n1, y: y + t0 * ldy, ldy: ldy, pairs: true) }
        #else
        BF16Product.rows(x: x, rows: rows, w: w, k: k, from: n0, to: n1, y: y, ldy: ldy, pairs: false)
        #endif
    }

    /// binary16 → f32 (`VectorWidening` built here: F16C), exact for every value.
    public static func widen(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        VectorWidening.widen(src, dst, n)
    }
}
