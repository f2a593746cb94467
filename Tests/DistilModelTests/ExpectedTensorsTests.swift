import DistilFormats
import DistilModel
import DistilTensors
import Foundation
import XCTest

/// ExpectedTensors against checkpoints written by transformers' save_pretrained (the golden fixtures
/// and the demo): for every architecture and layout the config-implied text tensors are exactly the
/// headers' text tensors, names and shapes, and the implied parameter count is the counted one.
final class ExpectedTensorsTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Every checkpoint directory (one with a config.json) under the fixtures and demo/.
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

    /// The tensors of every .safetensors file of a directory, from the headers (name → shape).
    func headerShapes(_ dir: String) throws -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where f.hasSuffix(".safetensors") {
            for t in try SafetensorsFile(path: dir + "/" + f).header.tensors {
                XCTAssertNil(out.updateValue(t.shape, forKey: t.name), "\(t.name) twice in \(dir)")
            }
        }
        return out
    }

    func elements(_ s: [Int]) -> Int64 { s.reduce(Int64(1)) { $0 * Int64($1) } }

    func testEveryCheckpointMatchesItsConfigExactly() throws {
        let dirs = try checkpoints()
        XCTAssertGreaterThanOrEqual(dirs.count, 15)
        var types = Set<String>(), prefixes = Set<String>(), fusedSeen = false, perExpertSeen = false, auxiliarySeen = false
        for d in dirs {
            let config = try ModelConfig.load(directory: d)
            let actual = try headerShapes(d)
            let expected = try ExpectedTensors(config: config, names: actual.keys)
            let text = actual.filter { ExpectedTensors.isTextTensor($0.key) }
            // Names and shapes, exactly (the differences listed, not two whole dictionaries).
            let shapes = expected.shapes
            XCTAssertEqual(shapes.keys.filter { text[$0] == nil }.sorted(), [], "\(d): expected, not in the headers")
            XCTAssertEqual(text.keys.filter { shapes[$0] == nil }.sorted(), [], "\(d): in the headers, not expected")
            XCTAssertEqual(shapes.filter { text[$0.key] != nil && text[$0.key] != $0.value }.keys.sorted(), [], "\(d): other shapes")
            XCTAssertNil(expected.disagreement(with: actual), d)
            XCTAssertEqual(expected.count, text.count, d)
            // The implied parameter count is the counted one.
            XCTAssertEqual(expected.parameters, text.values.reduce(Int64(0)) { $0 + elements($1) }, d)
            // lm_head iff untied.
            XCTAssertEqual(text["lm_head.weight"] != nil, config.tieWordEmbeddings != true, d)
            // The loaders' order: embedding first, final norm (then the head) last.
            var order: [String] = []
            expected.forEach { n, _ in order.append(n) }
            XCTAssertEqual(order.first, expected.prefix + "embed_tokens.weight", d)
            XCTAssertEqual(order.last, expected.lmHead ? "lm_head.weight" : expected.prefix + "norm.weight", d)
            XCTAssertEqual(Set(order).count, order.count, d)
            types.insert(config.modelType)
            prefixes.insert(expected.prefix)
            fusedSeen = fusedSeen || actual.keys.contains { $0.hasSuffix("experts.gate_up_proj") }
            perExpertSeen = perExpertSeen || actual.keys.contains { $0.contains(".experts.0.") }
            auxiliarySeen = auxiliarySeen || actual.count > text.count
        }
        // The fixtures cover every architecture, both layouts, both expert layouts and a vision tower.
        XCTAssertEqual(types, ["llama", "qwen2", "qwen3", "qwen3_moe", "qwen3_5_text", "qwen3_5_moe_text"])
        XCTAssertEqual(prefixes, ["model.", "model.language_model."])
        XCTAssertTrue(fusedSeen && perExpertSeen && auxiliarySeen)
    }

    func fixture(_ name: String) throws -> (ModelConfig, [String: [Int]]) {
        let d = Self.fixtures.appendingPathComponent(name).path
        return (try ModelConfig.load(directory: d), try headerShapes(d))
    }

    func testConfigThatLiesAboutTheModelDisagrees() throws {
        let (config, actual) = try fixture("qwen3_moe")
        let held = actual.values.reduce(Int64(0)) { $0 + elements($1) }
        // intermediate_size halved while the dense MLP layers keep the full width.
        var c = config
        c.intermediateSize /= 2
        let half = try XCTUnwrap(try ExpectedTensors(config: c, names: actual.keys).disagreement(with: actual))
        XCTAssertEqual(half.kind, .shape)
        XCTAssertTrue(half.tensor.hasSuffix("mlp.gate_proj.weight"), half.tensor)
        XCTAssertEqual(half.heldParameters, held)
        XCTAssertLessThan(half.impliedParameters, held)
        XCTAssertTrue(half.message.contains("has shape [\(config.intermediateSize), \(config.hiddenSize)], the config implies [\(c.intermediateSize), \(c.hiddenSize)]"), half.message)
        XCTAssertTrue(half.message.hasSuffix("; the config implies \(half.impliedParameters) text-model parameters, the headers hold \(held)"), half.message)
        // Fewer layers than the headers hold: the last layer is unexplained.
        c = config
        c.layers -= 1
        let fewer = try XCTUnwrap(try ExpectedTensors(config: c, names: actual.keys).disagreement(with: actual))
        XCTAssertEqual(fewer.kind, .unexplained)
        XCTAssertTrue(fewer.tensor.hasPrefix("model.layers.\(c.layers)."), fewer.tensor)
        XCTAssertTrue(fewer.message.contains("tensor(s) the config does not explain, e.g. model.layers.\(c.layers)."), fewer.message)
        // More layers than the headers hold: the first tensor of the missing layer.
        c = config
        c.layers += 1
        let more = try XCTUnwrap(try ExpectedTensors(config: c, names: actual.keys).disagreement(with: actual))
        XCTAssertEqual(more, TensorDisagreement(kind: .missing, tensor: "model.layers.\(config.layers).input_layernorm.weight",
                                               expected: [config.hiddenSize], actual: nil, unexplained: 0,
                                               impliedParameters: more.impliedParameters, heldParameters: held, untied: false))
        XCTAssertGreaterThan(more.impliedParameters, held)
    }

    func testHiddenMissingAndReshapedTensors() throws {
        let (config, actual) = try fixture("qwen3_moe")
        let expected = try ExpectedTensors(config: config, names: actual.keys)
        // A spare matrix under the text prefix, or at the top level: unexplained.
        for name in ["model.layers.0.mlp.spare.weight", "model.extra.weight", "junk.weight"] {
            var extra = actual
            extra[name] = [96, 64]
            let d = try XCTUnwrap(expected.disagreement(with: extra), name)
            XCTAssertEqual(d.kind, .unexplained)
            XCTAssertEqual(d.tensor, name)
            XCTAssertEqual(d.message, "1 tensor(s) the config does not explain, e.g. \(name) [96, 64]; the config implies "
                + "\(expected.parameters) text-model parameters, the headers hold \(expected.parameters + 96 * 64)")
        }
        // The vision tower and the MTP head are outside the text model: not cross-checked.
        var aux = actual
        aux["model.visual.blocks.0.attn.qkv.weight"] = [96, 64]
        aux["mtp.fc.weight"] = [64, 128]
        XCTAssertNil(expected.disagreement(with: aux))
        // A missing lm_head with untied embeddings.
        var noHead = actual
        noHead["lm_head.weight"] = nil
        let d = try XCTUnwrap(expected.disagreement(with: noHead))
        XCTAssertEqual(d.kind, .missing)
        XCTAssertTrue(d.message.hasPrefix("no lm_head.weight while the embeddings are untied (tie_word_embeddings is false)"), d.message)
        // An absent tie_word_embeddings is transformers' default, false: the head is required too.
        var absent = config
        absent.tieWordEmbeddings = nil
        XCTAssertTrue(try ExpectedTensors(config: absent, names: noHead.keys).disagreement(with: noHead)?.message
            .contains("tie_word_embeddings absent: transformers' default is false") == true)
        // Tied embeddings: lm_head is unexplained.
        var tied = config
        tied.tieWordEmbeddings = true
        XCTAssertEqual(try ExpectedTensors(config: tied, names: actual.keys).disagreement(with: actual)?.tensor, "lm_head.weight")
        // One shape off, same parameter count: no count in the message.
        var reshaped = actual
        let up = "model.layers.1.mlp.up_proj.weight"
        let s = try XCTUnwrap(actual[up])
        reshaped[up] = [s[1], s[0]]
        XCTAssertEqual(expected.disagreement(with: reshaped)?.message, "\(up) has shape [\(s[1]), \(s[0])], the config implies [\(s[0]), \(s[1])]")
    }

    func testExpertsFusedOrPerExpertButNotBoth() throws {
        let (config, fused) = try fixture("qwen3_5_moe-fused")
        let (_, perExpert) = try fixture("qwen3_5_moe")
        XCTAssertTrue(fused.keys.contains { $0.hasSuffix("experts.gate_up_proj") })
        XCTAssertNil(try ExpectedTensors(config: config, names: fused.keys).disagreement(with: fused))
        XCTAssertNil(try ExpectedTensors(config: config, names: perExpert.keys).disagreement(with: perExpert))
        // Both layouts at once: the per-expert tensors are unexplained.
        let both = fused.merging(perExpert) { a, _ in a }
        let d = try XCTUnwrap(try ExpectedTensors(config: config, names: both.keys).disagreement(with: both))
        XCTAssertEqual(d.kind, .unexplained)
        XCTAssertTrue(d.tensor.contains(".experts.0."), d.tensor)
    }

    func testUnknownArchitectureAndAbsurdConfigsThrow() throws {
        var (config, actual) = try fixture("qwen3-tied")
        config.modelType = "gemma3"
        XCTAssertThrowsError(try ExpectedTensors(config: config, names: actual.keys)) { e in
            XCTAssertTrue("\(e)".contains("no tensor list for model_type gemma3"), "\(e)")
        }
        (config, actual) = try fixture("qwen3_moe")
        config.layers = 1024
        config.sparse!.moe.experts = 4096
        config.sparse!.decoderSparseStep = 1
        config.sparse!.mlpOnlyLayers = []
        XCTAssertThrowsError(try ExpectedTensors(config: config, names: actual.keys)) { e in
            XCTAssertTrue("\(e)".contains("more than \(ExpectedTensors.maxTensors) tensors"), "\(e)")
        }
        (config, actual) = try fixture("qwen3_5-text")
        config.hybrid = nil
        XCTAssertThrowsError(try ExpectedTensors(config: config, names: actual.keys))
    }
}
