import DistilFormats
import DistilModel
import Foundation
import XCTest

/// The engine against Hugging Face transformers: references computed in float64 by
/// scripts/dev/make_engine_golden.py on the same bf16 checkpoints.
final class GoldenTests: XCTestCase {
    struct Golden: Decodable {
        struct Seq: Decodable { var tokens: [Int]; var logits: [[Double]]; var greedy: [Int] }
        var model: String
        var sequences: [Seq]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Largest |logit - reference| allowed, relative to the sequence's largest |logit| (at least 1):
    /// we compute in f32 (norm and softmax sums in f64), the reference in f64 on the same bf16 weights.
    /// Measured worst: 4.1e-7 for the tiny random models (|logit| < 1.5), 1.3e-5 for the demo teacher
    /// (|logit| up to 12, i.e. 1.1e-6 relative).
    let tolerance = 1e-5

    func check(_ name: String, directory: String) throws {
        let golden = try decodeJSONFile(Golden.self, path: Self.fixtures.appendingPathComponent("\(name).golden.json").path)
        let lm = try LanguageModel.load(directory: directory, threads: 1)
        for seq in golden.sequences {
            // Prefill logits at every position, in chunks of 5 rows.
            var worst = 0.0
            var seen = 0
            try lm.forward(tokens: seq.tokens, logitsFrom: 0, chunkRows: 5) { first, rows, logits in
                XCTAssertEqual(first, seen)
                for r in 0..<rows {
                    for j in 0..<lm.vocabSize { worst = max(worst, abs(Double(logits[r * lm.vocabSize + j]) - seq.logits[first + r][j])) }
                }
                seen += rows
            }
            XCTAssertEqual(seen, seq.tokens.count)
            let scale = max(1, seq.logits.flatMap { $0 }.map(abs).max() ?? 1)
            XCTAssertLessThan(worst, tolerance * scale, "\(name): max logit error \(worst) on \(seq.tokens.count) tokens")
            print("golden \(name): \(seq.tokens.count) tokens, max abs logit error \(worst)")
            // Greedy continuation through the KV-cache decoder equals transformers'.
            let d = try lm.makeDecoder(batch: 1, maxLength: seq.tokens.count + 12)
            var logits = try d.start([seq.tokens])
            var out: [Int] = []
            for _ in 0..<12 {
                var best = 0
                for j in 1..<lm.vocabSize where logits[j] > logits[best] { best = j }
                out.append(best)
                logits = try d.step([best])
            }
            XCTAssertEqual(out, seq.greedy, "\(name): greedy continuation")
        }
    }

    func testQwen3TiedEmbeddings() throws { try check("qwen3-tied", directory: Self.fixtures.appendingPathComponent("qwen3-tied").path) }
    func testQwen2AttentionBiases() throws { try check("qwen2-bias", directory: Self.fixtures.appendingPathComponent("qwen2-bias").path) }
    func testLlamaUntiedEmbeddings() throws { try check("llama-untied", directory: Self.fixtures.appendingPathComponent("llama-untied").path) }
    func testQwen35HybridDeltaNetAndGatedAttention() throws {
        try check("qwen3_5-text", directory: Self.fixtures.appendingPathComponent("qwen3_5-text").path)
    }
    /// The ForConditionalGeneration layout: weights under model.language_model., a vision tower that is not loaded.
    func testQwen35MultimodalLayoutTextPath() throws {
        try check("qwen3_5-multimodal", directory: Self.fixtures.appendingPathComponent("qwen3_5-multimodal").path)
    }
    /// The teacher's architecture in miniature: hybrid layers, 8 experts top-2 and a gated shared expert,
    /// experts stored one by one (as save_pretrained writes them) and fused (as they sit in memory).
    func testQwen35MoEPerExpertAndFusedLayouts() throws {
        try check("qwen3_5_moe", directory: Self.fixtures.appendingPathComponent("qwen3_5_moe").path)
        try check("qwen3_5_moe", directory: Self.fixtures.appendingPathComponent("qwen3_5_moe-fused").path)
    }
    func testDemoTeacher() throws { try check("demo-teacher", directory: Self.repo.appendingPathComponent("demo/teacher").path) }

    /// Decode (one token at a time with the cache, several sequences in a batch) gives the prefill's logits.
    func testDecodeMatchesPrefillInABatch() throws {
        try decodeMatchesPrefill("qwen2-bias")
        try decodeMatchesPrefill("qwen3_5-text")   // conv and recurrent state carried across steps
        try decodeMatchesPrefill("qwen3_5_moe")
    }

    func decodeMatchesPrefill(_ name: String) throws {
        let lm = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent(name).path, threads: 1)
        let seqs = [[3, 1, 4, 1, 5, 9, 2, 6], [27, 18, 28, 18, 28, 4, 5, 9]]
        var prefill: [[Float]] = seqs.map { _ in [] }
        for (i, s) in seqs.enumerated() {
            try lm.forward(tokens: s, logitsFrom: 2, chunkRows: 64) { _, rows, l in prefill[i] = Array(l.prefix(rows * lm.vocabSize)) }
        }
        let d = try lm.makeDecoder(batch: 2, maxLength: 8)
        var l = try d.start(seqs.map { Array($0.prefix(3)) })
        for pos in 2..<8 {
            for b in 0..<2 {
                for j in 0..<lm.vocabSize {
                    XCTAssertEqual(l[b * lm.vocabSize + j], prefill[b][(pos - 2) * lm.vocabSize + j], accuracy: 1e-4)
                }
            }
            if pos < 7 { l = try d.step(seqs.map { $0[pos + 1] }) }
        }
    }

    func testUnsupportedArchitectureIsRefusedByName() throws {
        let dir = NSTemporaryDirectory() + "distil-arch-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFileAtomically(dir + "/config.json", Array(#"{"architectures":["MambaForCausalLM"],"model_type":"mamba"}"#.utf8))
        XCTAssertThrowsError(try LanguageModel.validate(directory: dir)) { e in
            XCTAssertTrue("\(e)".contains("unsupported architecture MambaForCausalLM"), "\(e)")
        }
        try writeFileAtomically(dir + "/config.json", Array(#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","rope_scaling":{"rope_type":"yarn","factor":4}}"#.utf8))
        XCTAssertThrowsError(try LanguageModel.validate(directory: dir)) { e in XCTAssertTrue("\(e)".contains("yarn"), "\(e)") }
    }

    func testOutOfRangeTokenIsAnError() throws {
        let lm = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent("qwen3-tied").path, threads: 1)
        XCTAssertThrowsError(try lm.forward(tokens: [1, 99999], logitsFrom: 0, chunkRows: 4) { _, _, _ in })
    }
}
