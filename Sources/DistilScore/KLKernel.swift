@_exported import struct DistilKernels.KLPoint
@_exported import struct DistilKernels.KLTeacherRow
import DistilKernels
import DistilKernelsX86v3
import DistilKernelsX86v4
import Foundation

/// The full-vocabulary KL and log-softmax kernels (`KLCore` in DistilKernels documents the
/// numerics), run by the build for the widest instruction set this CPU has. The builds give
/// bit-identical results, so the choice changes only the speed.
public enum KLKernel {
    /// The x86-64 levels the kernels are built for (the psABI's names); other CPUs run `baseline`.
    public enum ISA: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
        /// x86-64 with SSE2, or arm64 (NEON).
        case baseline
        /// x86-64-v3: AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE.
        case x86v3
        /// x86-64-v4: v3 and AVX-512 F, BW, CD, DQ, VL.
        case x86v4

        public static func < (a: ISA, b: ISA) -> Bool { a.rawValue < b.rawValue }
        public var description: String { ["baseline", "x86-64-v3", "x86-64-v4"][rawValue] }
    }

    /// The widest level this CPU (and its kernel, which hides what it does not save on context
    /// switches) supports, from the flags in /proc/cpuinfo; `baseline` when they cannot be read.
    public static let supported: ISA = {
        #if arch(x86_64) && os(Linux)
        switch CPUFeatures.x86Level {
        case 4: return .x86v4
        case 3: return .x86v3
        default: return .baseline
        }
        #else
        return .baseline
        #endif
    }()

    /// KL(teacher ‖ student) at one position: `teacher` as f32 log-probs or the stream's binary16
    /// form, `studentLogits` raw logits, both `count` values. `isa` (default: the widest supported)
    /// must not exceed `supported`.
    public static func kl(_ teacher: KLTeacherRow, studentLogits: UnsafePointer<Float>, count: Int, isa: ISA = supported) -> KLPoint {
        switch checked(isa) {
        case .baseline: return KernelsBaseline.kl(teacher, student: studentLogits, count: count)
        case .x86v3: return DistilKernelsX86v3.Kernels.kl(teacher, student: studentLogits, count: count)
        case .x86v4: return DistilKernelsX86v4.Kernels.kl(teacher, student: studentLogits, count: count)
        }
    }

    /// KL at one position from f32 teacher log-probs (normalised natural logs) and raw student logits.
    public static func klFromLogits(teacherLogProbs: UnsafePointer<Float>, studentLogits: UnsafePointer<Float>, count: Int,
                                    isa: ISA = supported) -> KLPoint {
        kl(KLTeacherRow(logProbs: teacherLogProbs), studentLogits: studentLogits, count: count, isa: isa)
    }

    /// Log-softmax of `count` logits into `out` (which may be `logits` itself). Returns the
    /// log-sum-exp (NaN when a logit is NaN; then `out` holds NaN wherever it is undefined).
    @discardableResult
    public static func logSoftmax(_ logits: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int,
                                  isa: ISA = supported) -> Double {
        switch checked(isa) {
        case .baseline: return KernelsBaseline.logSoftmax(logits, into: out, count: count)
        case .x86v3: return DistilKernelsX86v3.Kernels.logSoftmax(logits, into: out, count: count)
        case .x86v4: return DistilKernelsX86v4.Kernels.logSoftmax(logits, into: out, count: count)
        }
    }

    /// `n` little-endian binary16 values at `src` widened to f32, exactly, by `isa`'s build.
    public static func widenBinary16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int, isa: ISA = supported) {
        switch checked(isa) {
        case .baseline: Binary16.decode(raw: src, dst, n)
        case .x86v3: DistilKernelsX86v3.Kernels.widen(src, dst, n)
        case .x86v4: DistilKernelsX86v4.Kernels.widen(src, dst, n)
        }
    }

    /// `isa`, which must not exceed `supported` (running wider code would be an illegal instruction).
    static func checked(_ isa: ISA) -> ISA {
        precondition(isa <= supported, "the \(isa) kernels need a CPU with \(isa)")
        return isa
    }
}
