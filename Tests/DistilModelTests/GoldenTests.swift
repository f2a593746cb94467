import DistilFormats
import DistilModel
import DistilScore
import Foundation
import XCTest

/// The engine against Hugging Face transformers: references computed in float64 by
/// scripts/dev/make_engine_golden.py on the same bf16 checkpoints.
final class GoldenTests: XCTestCase {
    struct Golden: Decodable {
        /// logits[i] is position logits_from + i (long sequences keep only their last positions).
        struct Seq: Decodable { var tokens: [Int]; var logits_from: Int?; var logits: [[Double]]; var greedy: [Int] }
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
            let from = seq.logits_from ?? 0
            var seen = from
            try lm.forward(tokens: seq.tokens, logitsFrom: from, chunkRows: 5) { first, rows, logits in
                XCTAssertEqual(first, seen)
                for r in 0..<rows {
                    for j in 0..<lm.vocabSize { worst = max(worst, abs(Double(logits[r * lm.vocabSize + j]) - seq.logits[first - from + r][j])) }
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
    /// The teacher's checkpoint layout (Qwen3_5MoeForConditionalGeneration): the text model under
    /// model.language_model., a vision tower under model.visual. and a multi-token-prediction layer
    /// under mtp.* beside it; neither extra is declared, so neither is read (MemoryPlanTests counts
    /// their bytes as skipped), and dl-check counts them in the parameters.
    func testQwen35MoETeacherLayoutWithVisionAndMTP() throws {
        try check("qwen3_5_moe-teacher-layout", directory: Self.fixtures.appendingPathComponent("qwen3_5_moe-teacher-layout").path)
    }
    /// Qwen3-MoE: sparse layers around a dense one (mlp_only_layers), top-k probabilities not renormalised.
    func testQwen3MoE() throws { try check("qwen3_moe", directory: Self.fixtures.appendingPathComponent("qwen3_moe").path) }
    /// Llama's rope scaling: linear, dynamic NTK (within max_position_embeddings), llama3, YaRN.
    func testLlamaRopeScalingVariants() throws {
        for kind in ["linear", "dynamic", "llama3", "yarn"] {
            try check("llama-rope-\(kind)", directory: Self.fixtures.appendingPathComponent("llama-rope-\(kind)").path)
        }
    }

    /// Per-position KL(teacher ‖ student) from the engine's logits through the KL kernel against
    /// transformers' float64: per-prompt mean within 1e-4 relative, each position within 1e-3 relative + 1e-6.
    func testKLBetweenPairsMatchesTransformers() throws {
        struct Pair: Decodable { var teacher: String; var student: String; var tokens: [Int]; var kl: [Double]; var mean: Double }
        let pairs = try decodeJSONFile([Pair].self, path: Self.fixtures.appendingPathComponent("kl-pairs.golden.json").path)
        XCTAssertGreaterThan(pairs.count, 3)
        for p in pairs {
            let t = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent(p.teacher).path, threads: 2)
            let s = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent(p.student).path, threads: 2)
            var teacherRows: [Float] = []
            try t.forward(tokens: p.tokens, logitsFrom: 0, chunkRows: 64) { _, rows, l in
                var lp = [Float](repeating: 0, count: rows * t.vocabSize)
                for r in 0..<rows { KLKernel.logSoftmax(l.baseAddress! + r * t.vocabSize, into: &lp[r * t.vocabSize], count: t.vocabSize) }
                teacherRows += lp
            }
            var kls: [Double] = []
            try s.forward(tokens: p.tokens, logitsFrom: 0, chunkRows: 7) { first, rows, l in
                for r in 0..<rows {
                    teacherRows.withUnsafeBufferPointer { tp in
                        kls.append(KLKernel.klFromLogits(teacherLogProbs: tp.baseAddress! + (first + r) * t.vocabSize,
                                                         studentLogits: l.baseAddress! + r * s.vocabSize, count: s.vocabSize).kl)
                    }
                }
            }
            XCTAssertEqual(kls.count, p.kl.count)
            for (a, b) in zip(kls, p.kl) { XCTAssertEqual(a, b, accuracy: 1e-3 * abs(b) + 1e-6, "\(p.teacher) vs \(p.student)") }
            let mean = kls.reduce(0, +) / Double(kls.count)
            XCTAssertLessThan(abs(mean - p.mean) / p.mean, 1e-4, "\(p.teacher) vs \(p.student): mean KL \(mean) vs \(p.mean)")
            print("kl pair \(p.teacher) || \(p.student), \(p.tokens.count) tokens: mean \(mean) vs \(p.mean)")
        }
    }

    /// The same inputs give byte-identical logits at 1, 2 and 3 threads (work is split by shape, not by thread).
    func testOutputsAreIdenticalAcrossThreadCounts() throws {
        let tokens = Array((0..<150).map { ($0 * 37 + 11) % 250 })
        var results: [[Float]] = []
        for threads in [1, 2, 3] {
            let lm = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent("qwen3_5_moe").path, threads: threads)
            var all: [Float] = []
            try lm.forward(tokens: tokens, logitsFrom: 100, chunkRows: 16) { _, rows, l in all += Array(l.prefix(rows * lm.vocabSize)) }
            results.append(all)
        }
        XCTAssertEqual(results[0].count, 50 * 256)
        XCTAssertTrue(results[0].elementsEqual(results[1]) { $0.bitPattern == $1.bitPattern })
        XCTAssertTrue(results[0].elementsEqual(results[2]) { $0.bitPattern == $1.bitPattern })
    }

    func testDemoTeacher() throws { try check("demo-teacher", directory: Self.repo.appendingPathComponent("demo/teacher").path) }

    /// Decode (one token at a time with the cache, several sequences in a batch) gives the prefill's logits.
    func testDecodeMatchesPrefillInABatch() throws {
        try decodeMatchesPrefill("qwen2-bias")
        try decodeMatchesPrefill("qwen3_5-text")   // conv and recurrent state carried across steps
        try decodeMatchesPrefill("qwen3_5_moe")
        try decodeMatchesPrefill("qwen3_moe")
        try decodeMatchesPrefill("llama-rope-yarn")
        // A 70-token prompt is prefilled in DeltaNet chunks; the steps after it use the recurrence.
        try decodeMatchesPrefill("qwen3_5-text", long: true)
    }

    func decodeMatchesPrefill(_ name: String, long: Bool = false) throws {
        let lm = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent(name).path, threads: 2)
        var seqs = [[3, 1, 4, 1, 5, 9, 2, 6], [27, 18, 28, 18, 28, 4, 5, 9]]
        if long { seqs = seqs.map { s in (0..<80).map { (s[$0 % 8] * 7 + $0) % 250 } } }
        let prompt = long ? 70 : 3, n = seqs[0].count
        var prefill: [[Float]] = seqs.map { _ in [] }
        for (i, s) in seqs.enumerated() {
            try lm.forward(tokens: s, logitsFrom: prompt - 1, chunkRows: 64) { _, rows, l in prefill[i] += Array(l.prefix(rows * lm.vocabSize)) }
        }
        let d = try lm.makeDecoder(batch: 2, maxLength: n)
        var l = try d.start(seqs.map { Array($0.prefix(prompt)) })
        var worst: Float = 0
        for pos in (prompt - 1)..<n {
            for b in 0..<2 {
                for j in 0..<lm.vocabSize {
                    worst = max(worst, abs(l[b * lm.vocabSize + j] - prefill[b][(pos - prompt + 1) * lm.vocabSize + j]))
                }
            }
            if pos < n - 1 { l = try d.step(seqs.map { $0[pos + 1] }) }
        }
        XCTAssertLessThan(worst, 1e-4, "\(name): decode vs prefill")
    }

    func testUnsupportedArchitectureIsRefusedByName() throws {
        let dir = NSTemporaryDirectory() + "distil-arch-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeFileAtomically(dir + "/config.json", Array(#"{"architectures":["MambaForCausalLM"],"model_type":"mamba"}"#.utf8))
        XCTAssertThrowsError(try LanguageModel.validate(directory: dir)) { e in
            XCTAssertTrue("\(e)".contains("unsupported architecture MambaForCausalLM"), "\(e)")
        }
        try writeFileAtomically(dir + "/config.json", Array(#"{"architectures":["LlamaForCausalLM"],"model_type":"llama","rope_scaling":{"rope_type":"longrope","factor":4}}"#.utf8))
        XCTAssertThrowsError(try LanguageModel.validate(directory: dir)) { e in XCTAssertTrue("\(e)".contains("unsupported architecture LlamaForCausalLM: rope scaling 'longrope'"), "\(e)") }
        try writeFileAtomically(dir + "/config.json", Array(#"{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","use_sliding_window":true}"#.utf8))
        XCTAssertThrowsError(try LanguageModel.validate(directory: dir)) { e in XCTAssertTrue("\(e)".contains("sliding-window"), "\(e)") }
        // Rope scaling whose parameters are missing or make no sense is refused, naming the parameter.
        let base = #""architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":64,"num_attention_heads":4,"#
        for (scaling, why) in [(#""rope_scaling":{"rope_type":"dynamic","factor":2}"#, "dynamic rope scaling without max_position_embeddings"),
                               (#""rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":1,"original_max_position_embeddings":64}"#,
                                "high_freq_factor equals low_freq_factor"),
                               (#""rope_scaling":{"rope_type":"yarn","factor":4}"#, "original_max_position_embeddings is missing"),
                               (#""rope_scaling":{"rope_type":"linear","factor":-1}"#, "factor is missing or outside")] {
            try writeFileAtomically(dir + "/config.json", Array("{\(base)\(scaling)}".utf8))
            XCTAssertThrowsError(try LanguageModel.validate(directory: dir)) { e in
                XCTAssertTrue("\(e)".contains(why) && "\(e)".contains("config.json"), "\(e)")
            }
        }
    }

    func testOutOfRangeTokenIsAnError() throws {
        let lm = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent("qwen3-tied").path, threads: 1)
        XCTAssertThrowsError(try lm.forward(tokens: [1, 99999], logitsFrom: 0, chunkRows: 4) { _, _, _ in })
    }

    /// Dynamic NTK scaling changes the frequencies beyond max_position_embeddings: refused there, not approximated.
    func testDynamicRopeBeyondMaxPositionsIsRefused() throws {
        let lm = try LanguageModel.load(directory: Self.fixtures.appendingPathComponent("llama-rope-dynamic").path, threads: 1)
        XCTAssertEqual(lm.config.maxPositionEmbeddings, 256)
        XCTAssertThrowsError(try lm.forward(tokens: Array(repeating: 3, count: 257), logitsFrom: 256, chunkRows: 4) { _, _, _ in }) { e in
            XCTAssertTrue("\(e)".contains("max_position_embeddings 256"), "\(e)")
        }
    }
}
