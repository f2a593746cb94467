import DistilFuzz
import Foundation
import XCTest

/// Every committed fuzz input (the seed corpora under Fuzz/corpus/TARGET and the inputs that once
/// crashed a target, Fuzz/regressions/TARGET) replayed through the same entry the fuzzer calls,
/// without the fuzzer: none may trap.
final class ReplayTests: XCTestCase {
    static let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    func inputs(_ folder: String, _ target: String) -> [String] {
        let d = ReplayTests.fuzz.appendingPathComponent(folder).appendingPathComponent(target).path
        return ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).sorted().map { d + "/" + $0 }
    }

    func testEveryTargetHasASeedCorpus() {
        for t in FuzzTargets.all {
            XCTAssertFalse(inputs("corpus", t.name).isEmpty, "Fuzz/corpus/\(t.name) is empty")
        }
    }

    func testSeedsAndRegressionsReplayWithoutATrap() throws {
        var n = 0
        for t in FuzzTargets.all {
            for p in inputs("corpus", t.name) + inputs("regressions", t.name) {
                t.run(try Array(Data(contentsOf: URL(fileURLWithPath: p))))
                n += 1
            }
        }
        XCTAssertGreaterThan(n, FuzzTargets.all.count)
    }

    /// The engine target really reaches the engine: a fixture's config loads and runs a forward pass.
    func testEngineTargetRunsTheEngineOnAValidConfig() throws {
        let seed = try XCTUnwrap(inputs("corpus", "engine-config").first { $0.hasSuffix("qwen3_5-text") })
        XCTAssertNoThrow(try FuzzTargets.named("engine-config")!.outcome(Array(Data(contentsOf: URL(fileURLWithPath: seed)))))
    }

    func testRegressionFoldersNameRealTargets() throws {
        let d = ReplayTests.fuzz.appendingPathComponent("regressions").path
        for name in (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? [] {
            XCTAssertNotNil(FuzzTargets.named(name), "Fuzz/regressions/\(name) is not a fuzz target")
        }
    }
}
