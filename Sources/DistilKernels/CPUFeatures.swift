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
}
