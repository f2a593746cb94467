import Foundation

/// The CPU's feature flags as Linux lists them (the `flags` line of /proc/cpuinfo, first processor):
/// the one reader behind every run-time choice of kernels (OpenBLAS's core type, the KL kernels' and
/// the engine's x86-64 level). Empty where the file or the line is missing (other systems, arm64).
public enum CPUFeatures {
    public static let flags: Set<String> = {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return Set(line.split(separator: " ").map(String.init))
    }()

    /// The widest x86-64 level the CPU (and its kernel, which hides what it does not save on context
    /// switches) supports: 4 (AVX-512 F/BW/CD/DQ/VL), 3 (AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE), else 1.
    public static let detectedLevel: Int = {
        #if arch(x86_64)
        let v3: Set = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe", "popcnt", "xsave"]
        let v4: Set = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
        guard v3.isSubset(of: flags) else { return 1 }
        return v4.isSubset(of: flags) ? 4 : 3
        #else
        return 1
        #endif
    }()

    /// The level `DISTIL_ISA` asks for (`avx512` 4, `avx2` 3, `generic` 1), or nil when it is unset.
    /// It exists so that an AVX-512 machine can produce the figures of an AVX2-only one (and of a CPU
    /// without either): every kernel choice of the engine and the KL kernels follows `x86Level`.
    public static let requestedLevel: Int? = {
        guard let v = ProcessInfo.processInfo.environment["DISTIL_ISA"], !v.isEmpty else { return nil }
        guard let level = level(named: v) else {
            FileHandle.standardError.write(Data("distil: DISTIL_ISA=\(v): expected avx512, avx2 or generic\n".utf8))
            exit(2)
        }
        return level
    }()

    static func level(named v: String) -> Int? {
        switch v.lowercased() {
        case "avx512", "x86-64-v4", "v4": return 4
        case "avx2", "x86-64-v3", "v3": return 3
        case "generic", "baseline": return 1
        default: return nil
        }
    }

    /// The level the kernels run at: the CPU's, lowered to `DISTIL_ISA` when that asks for less (a
    /// request above the CPU's level is clamped to it: wider code would be an illegal instruction).
    public static let x86Level: Int = min(detectedLevel, requestedLevel ?? detectedLevel)

    /// What `x86Level` is, in words, for benchmark reports: "x86-64-v4 (AVX-512)", and
    /// "forced by DISTIL_ISA" when the switch lowered it.
    public static var levelDescription: String {
        let name = [4: "x86-64-v4 (AVX-512)", 3: "x86-64-v3 (AVX2)"][x86Level] ?? "baseline (no AVX2)"
        return x86Level < detectedLevel ? "\(name), forced by DISTIL_ISA (the CPU has x86-64-v\(detectedLevel))" : name
    }

    /// The variables that hold a benchmark's peers to the same level when DISTIL_ISA lowered it:
    /// torch's own kernels (ATEN_CPU_CAPABILITY), MKL's sgemm (MKL_ENABLE_INSTRUCTIONS) and
    /// OpenBLAS's (OPENBLAS_CORETYPE, which the engine's tools also set for themselves: BLASCore).
    /// Empty when nothing was lowered. llama.cpp has no such switch: its build decides.
    public static var peerEnvironment: [String: String] {
        guard x86Level < detectedLevel else { return [:] }
        return x86Level == 3
            ? ["ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell"]
            : ["ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OPENBLAS_CORETYPE": "Prescott"]
    }

    /// Sets `peerEnvironment` in this process's environment (children inherit it); returns it.
    @discardableResult
    public static func exportPeerEnvironment() -> [String: String] {
        let e = peerEnvironment
        for (k, v) in e where ProcessInfo.processInfo.environment[k] == nil { setenv(k, v, 1) }
        return e
    }
}
