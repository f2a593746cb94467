// swift-tools-version:6.0
// The Distil scoring pipeline: six Unix tools over a handful of libraries.
import Foundation
import PackageDescription

// Numeric kernels are compiled optimised even in debug builds: an -Onone forward
// pass is ~50x slower and would make tests and the demo crawl.
let fast: [SwiftSetting] = [.unsafeFlags(["-O"])]

// The KL kernels are written once (DistilKernels, inlinable) and also compiled into one module per
// x86-64 level; DistilScore's KLKernel picks the widest the CPU has at run time. (swiftc names the
// levels by CPU: haswell is x86-64-v3, skylake-avx512 x86-64-v4.) Elsewhere the modules are baseline.
func kernels(cpu: String, defines: [String] = []) -> [SwiftSetting] {
    #if arch(x86_64)
    return [.unsafeFlags(["-O", "-target-cpu", cpu])] + defines.map { .define($0) }
    #else
    return fast
    #endif
}

let package = Package(
    name: "distil",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dl-fetch", targets: ["dl-fetch"]),
        .executable(name: "dl-check", targets: ["dl-check"]),
        .executable(name: "dl-prompts", targets: ["dl-prompts"]),
        .executable(name: "dl-teacher", targets: ["dl-teacher"]),
        .executable(name: "dl-kl", targets: ["dl-kl"]),
        .executable(name: "dl-judge", targets: ["dl-judge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // System libraries (Debian: libzstd-dev, libcurl4-openssl-dev, libopenblas-dev).
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // A header-only shim: __builtin_prefetch for the KL kernels.
        .systemLibrary(name: "CPrefetch"),

        // Libraries, one per concern.
        .target(name: "DistilKernels", dependencies: ["CPrefetch"], swiftSettings: fast),
        .target(name: "DistilKernelsX86v3", dependencies: ["DistilKernels"], swiftSettings: kernels(cpu: "haswell")),
        .target(name: "DistilKernelsX86v4", dependencies: ["DistilKernels"], swiftSettings: kernels(cpu: "skylake-avx512", defines: ["VECTOR_REGISTERS_32"])),
        .target(name: "DistilFormats",
                dependencies: ["DistilKernels", "CZstd", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: fast),
        .target(name: "DistilCLI", dependencies: ["DistilFormats", "DistilHub", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "DistilTensors", dependencies: ["DistilFormats", "DistilKernels", "COpenBLAS"], swiftSettings: fast),
        .target(name: "DistilTokenizer", dependencies: ["DistilFormats"], swiftSettings: fast),
        .target(name: "DistilHub", dependencies: ["DistilFormats", "DistilTensors", "CCurl", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "DistilCorpus", dependencies: ["DistilFormats", "DistilHub", "CZstd"], swiftSettings: fast),
        .target(name: "DistilModel", dependencies: ["DistilFormats", "DistilTensors", "DistilKernels", "DistilKernelsX86v3",
                                                  "DistilKernelsX86v4"], swiftSettings: fast),
        .target(name: "DistilScore", dependencies: ["DistilFormats", "DistilKernels", "DistilKernelsX86v3", "DistilKernelsX86v4"],
                swiftSettings: fast),
        // A loopback server that mimics the Hub endpoints dl-fetch uses, with faults: test and bench
        // support, kept under Tests/ so nothing in Sources/ can depend on it.
        .target(name: "HubTestServer", dependencies: [.product(name: "Crypto", package: "swift-crypto")], path: "Tests/Support/HubTestServer"),
        // dl-check's pre-checks.
        .target(name: "DistilCheck", dependencies: ["DistilFormats", "DistilTensors", "DistilTokenizer", "DistilModel"]),
        // An epoch seen by people and by monitoring: the HTML report and the Prometheus metrics.
        .target(name: "DistilReport", dependencies: ["DistilFormats", "DistilScore"]),
        // The teacher run (dl-teacher) and student scoring (dl-kl) over the engine.
        .target(name: "DistilEval", dependencies: ["DistilFormats", "DistilModel", "DistilScore", "DistilTokenizer"], swiftSettings: fast),

        // The six tools: flags, one call into the libraries, output.
        .executableTarget(name: "dl-fetch", dependencies: ["DistilFormats", "DistilHub",
                                                           "DistilCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "dl-check", dependencies: ["DistilFormats", "DistilHub", "DistilCheck",
                                                           "DistilCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "dl-prompts", dependencies: ["DistilFormats", "DistilCorpus", "DistilTokenizer",
                                                             "DistilCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "dl-teacher", dependencies: ["DistilFormats", "DistilTokenizer", "DistilTensors", "DistilEval",
                                                             "DistilCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "dl-kl", dependencies: ["DistilFormats", "DistilTensors", "DistilEval",
                                                        "DistilCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "dl-judge", dependencies: ["DistilFormats", "DistilScore", "DistilReport",
                                                           "DistilCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),

        // Benchmarks (not tests): each prints its figures beside a peer measured in the same run.
        .executableTarget(name: "bench-tokenizer", dependencies: ["DistilFormats", "DistilTokenizer"], path: "Benchmarks/bench-tokenizer", swiftSettings: fast),
        .executableTarget(name: "bench-parquet", dependencies: ["DistilFormats", "DistilCorpus", "HubTestServer"], path: "Benchmarks/bench-parquet", swiftSettings: fast),
        .target(name: "BenchSupport", path: "Benchmarks/BenchSupport"),
        .executableTarget(name: "bench-hub", dependencies: ["DistilFormats", "DistilHub", "HubTestServer", "BenchSupport"], path: "Benchmarks/bench-hub"),
        .executableTarget(name: "bench-check", dependencies: ["DistilFormats", "DistilCheck", "DistilTokenizer"], path: "Benchmarks/bench-check", swiftSettings: fast),
        .executableTarget(name: "bench-engine", dependencies: ["DistilFormats", "DistilTensors", "DistilModel", "DistilScore", "DistilEval", "COpenBLAS",
                                                           "DistilKernels", "DistilKernelsX86v3", "DistilKernelsX86v4"],
                          path: "Benchmarks/bench-engine", exclude: ["make_checkpoint.py", "peer_transformers.py"], swiftSettings: fast),
        .executableTarget(name: "bench-teacher", dependencies: ["DistilFormats", "DistilKernels"], path: "Benchmarks/bench-teacher",
                          exclude: ["peer_transformers.py"], swiftSettings: fast),
        .executableTarget(name: "bench-kl", dependencies: ["DistilFormats", "DistilKernels", "DistilScore", "BenchSupport"], path: "Benchmarks/bench-kl", exclude: ["torch_batches.py", "fit_exp.py"], swiftSettings: fast),

        // Tests: one target per library, plus the end-to-end pipeline.
        .testTarget(name: "DistilFormatsTests", dependencies: ["DistilFormats"], exclude: ["Samples"]),
        .testTarget(name: "DistilTensorsTests", dependencies: ["DistilTensors", "DistilFormats"]),
        .testTarget(name: "DistilTokenizerTests", dependencies: ["DistilTokenizer", "DistilFormats"], exclude: ["Fixtures"]),
        .testTarget(name: "DistilHubTests", dependencies: ["DistilHub", "DistilFormats", "HubTestServer"], exclude: ["Fixtures"]),
        .testTarget(name: "DistilCorpusTests", dependencies: ["DistilCorpus", "DistilFormats", "HubTestServer"], exclude: ["Fixtures"]),
        .testTarget(name: "DistilModelTests", dependencies: ["DistilModel", "DistilTensors", "DistilScore", "DistilKernels",
                                                          "DistilKernelsX86v3", "DistilKernelsX86v4"], exclude: ["Fixtures"]),
        .testTarget(name: "DistilScoreTests", dependencies: ["DistilScore", "DistilKernels", "DistilFormats"], exclude: ["Fixtures"]),
        .testTarget(name: "DistilEvalTests", dependencies: ["DistilEval", "DistilModel", "DistilScore", "DistilFormats"]),
        .testTarget(name: "DistilCheckTests", dependencies: ["DistilCheck", "DistilFormats", "DistilTensors", "DistilTokenizer", "DistilHub", "HubTestServer"], exclude: ["Fixtures"]),
        .testTarget(name: "DistilReportTests", dependencies: ["DistilReport", "DistilScore", "DistilFormats"], exclude: ["Fixtures"]),
        .testTarget(name: "PipelineTests", dependencies: ["DistilFormats"]),

        // Fuzzing: every parser of untrusted bytes as one entry point (Fuzz/DistilFuzz); the
        // corpora and crash regressions under Fuzz/ are replayed through it by DistilFuzzTests.
        .target(name: "DistilFuzz", dependencies: ["DistilFormats", "DistilTensors", "DistilTokenizer", "DistilCorpus", "DistilHub",
                                                   "DistilModel", "DistilCheck", "DistilScore"], path: "Fuzz/DistilFuzz"),
        .testTarget(name: "DistilFuzzTests", dependencies: ["DistilFuzz"]),
    ],
    swiftLanguageModes: [.v5]
)

// The libFuzzer binary exists only in scripts/fuzz.sh's build (DISTIL_FUZZ=1, its own scratch path,
// -sanitize=fuzzer,address): an ordinary build has no libFuzzer to link it against.
if ProcessInfo.processInfo.environment["DISTIL_FUZZ"] != nil {
    package.targets += [
        .systemLibrary(name: "CFuzzer", path: "Fuzz/CFuzzer"),
        .executableTarget(name: "fuzz-distil", dependencies: ["DistilFuzz", "CFuzzer"], path: "Fuzz/fuzz-distil"),
    ]
    package.products.append(.executable(name: "fuzz-distil", targets: ["fuzz-distil"]))
}
