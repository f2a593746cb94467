import COpenBLAS
import DistilKernels
import Foundation

/// OpenBLAS picks its kernels for the CPU once, when the library loads. Debian's OpenBLAS 0.3.21 does
/// not know CPUs newer than itself (e.g. Intel family 6 model 207) and falls back to its generic
/// "Prescott" SSE3 kernels: sgemm runs at 33 GFLOP/s per core here instead of 155 with the AVX-512
/// ones (bench-engine --sgemm-only). Its only switch is the OPENBLAS_CORETYPE environment variable,
/// read at load time, so the compute tools call `ensureOptimisedKernels()` first thing: when OpenBLAS
/// chose a generic core on a CPU with AVX2 or AVX-512, it sets OPENBLAS_CORETYPE to the matching
/// family and executes itself again (same arguments, same open files; once). A user's own
/// OPENBLAS_CORETYPE is always respected. Under DISTIL_ISA (CPUFeatures) the core of the requested
/// level is forced the same way (Haswell for avx2), so a benchmark's sgemm matches its kernels.
public enum BLASCore {
    /// The kernel family OpenBLAS chose ("Prescott", "SkylakeX", ...).
    public static var name: String { String(cString: openblas_get_corename()) }

    /// Cores whose kernels are generic (no AVX2 / AVX-512 sgemm).
    static let generic: Set<String> = ["prescott", "core2", "nehalem", "atom", "katmai", "coppermine", "northwood", "banias", "unknown"]

    /// The best OpenBLAS core family for the CPU flags in /proc/cpuinfo at x86-64 level `level`
    /// (the CPU's, or lower under DISTIL_ISA), or nil.
    static func bestCore(flags: Set<String>, level: Int = 4) -> String? {
        if level >= 4, ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if level >= 3, flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The core to force, or nil to keep OpenBLAS's choice: the best one when OpenBLAS fell back to a
    /// generic core; under DISTIL_ISA, the one of the requested level (Prescott for `generic`) when
    /// OpenBLAS chose another, so that sgemm runs the instruction set the engine's kernels run.
    static func forcedCore(chosen: String, flags: Set<String>, level: Int = CPUFeatures.x86Level,
                           requested: Bool = CPUFeatures.requestedLevel != nil) -> String? {
        let best = bestCore(flags: flags, level: level)
        if requested {
            let want = best ?? "Prescott"
            return want.lowercased() == chosen.lowercased() ? nil : want
        }
        return generic.contains(chosen.lowercased()) ? best : nil
    }

    public static func ensureOptimisedKernels() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["DISTIL_BLAS_REEXEC"] == nil,
              let core = forcedCore(chosen: name, flags: CPUFeatures.flags) else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv("DISTIL_BLAS_REEXEC", "1", 1)
        var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        argv.append(nil)
        execv("/proc/self/exe", argv)
        // exec failed: carry on with the generic kernels (slower, same results).
    }
}
