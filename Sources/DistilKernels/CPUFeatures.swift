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
    public static let x86Level: Int = {
        #if arch(x86_64)
        let v3: Set = ["avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "abm", "movbe", "popcnt", "xsave"]
        let v4: Set = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
        guard v3.isSubset(of: flags) else { return 1 }
        return v4.isSubset(of: flags) ? 4 : 3
        #else
        return 1
        #endif
    }()
}
