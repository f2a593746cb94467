import DistilFormats
import DistilModel
import DistilTensors
import Foundation
import XCTest

/// ExpectedTensors against checkpoints written by transformers' save_pretrained: for every
/// architecture and layout the config-implied text tensors are exactly the headers' text tensors.
final class ExpectedTensorsTests: XCTestCase {
    static let fixtures = GoldenTests.fixtures
    static let repo = GoldenTests.repo

    func checkpoints() throws -> [String] {
        let fm = FileManager.default
        var dirs: [String] = []
        for base in [Self.fixtures.path, Self.repo.appendingPathComponent("demo").path] {
            for n in try fm.contentsOfDirectory(atPath: base).sorted() where fm.fileExists(atPath: "\(base)/\(n)/config.json") {
                dirs.append("\(base)/\(n)")
            }
        }
        return dirs
    }

    func testEveryCheckpointMatchesItsConfigExactly() throws {
        let dirs = try checkpoints()
        XCTAssertGreaterThanOrEqual(dirs.count, 15)
        for d in dirs {
            let config = try ModelConfig.load(directory: d)
            let store = try WeightStore(directory: d)
            var actual: [String: [Int]] = [:]
            for n in store.tensorNames { actual[n] = store.info(n)!.shape }
            let expected = ExpectedTensors(config: config, names: Set(actual.keys))
            XCTAssertNil(expected.disagreement(with: actual), d)
            let text = actual.filter { expected.isTextTensor($0.key) }
            XCTAssertEqual(Set(text.keys), Set(expected.shapes.keys), d)
            let counted = text.values.reduce(Int64(0)) { $0 + $1.reduce(Int64(1)) { $0 * Int64($1) } }
            XCTAssertEqual(expected.parameters(withHead: true), counted, d)
            if d.hasSuffix("multimodal") { XCTAssertGreaterThan(actual.count, text.count, "the vision tower is outside the text model") }
        }
    }

    func testLiesAreFound() throws {
        let d = Self.fixtures.appendingPathComponent("qwen3_moe").path
        let config = try ModelConfig.load(directory: d)
        let store = try WeightStore(directory: d)
        var actual: [String: [Int]] = [:]
        for n in store.tensorNames { actual[n] = store.info(n)!.shape }
        let expected = ExpectedTensors(config: config, names: Set(actual.keys))
        var extra = actual
        extra["model.layers.7.mlp.gate_proj.weight"] = [96, 64]
        XCTAssertTrue(expected.disagreement(with: extra)?.contains("does not explain, e.g. model.layers.7.mlp.gate_proj.weight") == true)
        var missing = actual
        missing["lm_head.weight"] = nil
        XCTAssertEqual(expected.disagreement(with: missing), "missing tensor lm_head.weight, which the config implies")
        var reshaped = actual
        reshaped["model.layers.1.mlp.up_proj.weight"] = [192, 64]
        XCTAssertEqual(expected.disagreement(with: reshaped), "model.layers.1.mlp.up_proj.weight has shape [192, 64], the config implies [96, 64]")
    }
}
