import DistilCheck
import DistilFormats
import DistilHub
import HubTestServer
import DistilTensors
import DistilTokenizer
import Foundation
import XCTest

/// Adversarial checkpoints built by the test itself, each rejected with its reason; a good one passes.
final class CheckerTests: XCTestCase {
    var root = ""
    var tokenizerJSON: [UInt8] = []

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "distil-check-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        tokenizerJSON = try readFile(repo.appendingPathComponent("demo/tokenizer.json").path)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    /// A BF16 safetensors file of the good tensors with Gaussian values (seeded), each value times
    /// (1 + noise * N(0,1)): noise 0 reproduces the same weights, a small noise a "re-saved" copy.
    func randomSafetensors(seed: UInt64, noise: Double) -> [UInt8] {
        var rng = SeededRNG(seed), jitter = SeededRNG(seed &+ 999)
        var bytes = safetensors(goodTensors)
        let headerLen = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        var i = 8 + headerLen
        while i + 1 < bytes.count {
            let v = Float(rng.normal() * (1 + noise * jitter.normal()))
            let b = v.bitPattern >> 16
            bytes[i] = UInt8(b & 0xFF); bytes[i + 1] = UInt8(b >> 8)
            i += 2
        }
        return bytes
    }

    /// A safetensors file with the given (name, dtype, shape) tensors, data filled with a byte pattern.
    func safetensors(_ tensors: [(String, String, [Int])], fill: UInt8 = 1) -> [UInt8] {
        var entries: [String] = []
        var offset = 0
        let size = ["BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I8": 1]
        for (name, dtype, shape) in tensors {
            let n = shape.reduce(1, *) * size[dtype]!
            entries.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + n)]}")
            offset += n
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out = [UInt8]()
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        return out + header + [UInt8](repeating: fill, count: offset)
    }

    /// A complete one-layer Qwen3 text model as `config` implies it (tied embeddings; tensors of at
    /// least 32 values, so the near-copy sketches are not dominated by bf16 rounding of tiny tensors).
    let goodTensors: [(String, String, [Int])] = [
        ("model.embed_tokens.weight", "BF16", [512, 64]), ("model.norm.weight", "BF16", [64]),
        ("model.layers.0.input_layernorm.weight", "BF16", [64]), ("model.layers.0.post_attention_layernorm.weight", "BF16", [64]),
        ("model.layers.0.self_attn.q_proj.weight", "BF16", [64, 64]), ("model.layers.0.self_attn.k_proj.weight", "BF16", [32, 64]),
        ("model.layers.0.self_attn.v_proj.weight", "BF16", [32, 64]), ("model.layers.0.self_attn.o_proj.weight", "BF16", [64, 64]),
        ("model.layers.0.self_attn.q_norm.weight", "BF16", [32]), ("model.layers.0.self_attn.k_norm.weight", "BF16", [32]),
        ("model.layers.0.mlp.gate_proj.weight", "BF16", [128, 64]), ("model.layers.0.mlp.up_proj.weight", "BF16", [128, 64]),
        ("model.layers.0.mlp.down_proj.weight", "BF16", [64, 128]),
    ]

    /// goodTensors with one tensor's dtype and shape replaced.
    func goodTensors(replacing name: String, _ dtype: String, _ shape: [Int]) -> [(String, String, [Int])] {
        goodTensors.map { $0.0 == name ? (name, dtype, shape) : $0 }
    }

    var config: [String: Any] {
        ["architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 512, "hidden_size": 64,
         "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
         "intermediate_size": 128, "rms_norm_eps": 1e-6, "tie_word_embeddings": true]
    }

    /// Writes a model directory and returns its manifest (with real SHA-256 values).
    func model(_ name: String, uid: Int, block: Int, hotkey: String? = nil, config: [String: Any]? = nil,
               files: [String: [UInt8]] = [:], tensors: [(String, String, [Int])]? = nil, fill: UInt8 = 1) throws -> Manifest {
        let dir = root + "/" + name
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var all: [String: [UInt8]] = [
            "config.json": Array(try JSONSerialization.data(withJSONObject: config ?? self.config)),
            "tokenizer.json": tokenizerJSON,
            "model.safetensors": safetensors(tensors ?? goodTensors, fill: fill),
        ]
        for (k, v) in files { all[k] = v }
        var list: [ManifestFile] = []
        for (k, v) in all.sorted(by: { $0.key < $1.key }) {
            try writeFileAtomically(dir + "/" + k, v)
            list.append(ManifestFile(name: k, size: Int64(v.count), sha256: Hashing.sha256Hex(v)))
        }
        let c = Commitment(uid: uid, hotkey: hotkey ?? "hk\(uid)", block: block, repo: "test/\(name)")
        return Manifest(commitment: c, commit: "local", path: dir, files: list, outcome: .ok,
                        weightsSHA256: WeightFiles.identity(list.map { ($0.name, $0.sha256!) }))
    }

    func checker(maxParams: Int64 = 5_300_000_000) -> Checker {
        var o = CheckOptions()
        o.vocabSize = 512
        o.maxParams = maxParams
        return Checker(options: o)
    }

    func verdict(_ m: Manifest, maxParams: Int64 = 5_300_000_000) -> CheckVerdict { checker(maxParams: maxParams).check([m])[0] }

    func testGoodModelPassesWithParameterCount() throws {
        let v = verdict(try model("good", uid: 1, block: 10))
        XCTAssertTrue(v.ok, v.message)
        XCTAssertEqual(v.reason.rawValue, "OK")
        let embed: Int64 = 512 * 64, norms: Int64 = 3 * 64 + 2 * 32, attention: Int64 = 2 * 64 * 64 + 2 * 32 * 64, mlp: Int64 = 3 * 128 * 64
        XCTAssertEqual(v.params, embed + norms + attention + mlp)
    }

    func testTooManyParameters() throws {
        let v = verdict(try model("big", uid: 1, block: 10), maxParams: 8000)
        XCTAssertEqual(v.reason.rawValue, "PARAMS")
        XCTAssertTrue(v.message.contains("> 0.00B") || v.message.contains("parameters >"), v.message)
    }

    func testFP8TensorIsQuantized() throws {
        let v = verdict(try model("fp8", uid: 1, block: 10, tensors: goodTensors(replacing: "model.layers.0.mlp.up_proj.weight", "F8_E4M3", [128, 64])))
        XCTAssertEqual(v.reason.rawValue, "QUANTIZED")
        XCTAssertTrue(v.message.contains("F8_E4M3"), v.message)
    }

    func testQuantizedTensorNamesAndConfig() throws {
        let names = verdict(try model("gptq", uid: 1, block: 10, tensors: goodTensors + [("model.layers.0.mlp.up_proj.qweight", "F32", [4, 4])]))
        XCTAssertEqual(names.reason.rawValue, "QUANTIZED")
        var c = config
        c["quantization_config"] = ["quant_method": "gptq"]
        XCTAssertEqual(verdict(try model("qcfg", uid: 1, block: 10, config: c)).reason.rawValue, "QUANTIZED")
    }

    func testCustomCode() throws {
        XCTAssertEqual(verdict(try model("py", uid: 1, block: 10, files: ["modeling_evil.py": Array("import os".utf8)])).reason.rawValue, "CUSTOM_CODE")
        var c = config
        c["auto_map"] = ["AutoModelForCausalLM": "modeling_evil.Evil"]
        XCTAssertEqual(verdict(try model("automap", uid: 1, block: 10, config: c)).reason.rawValue, "CUSTOM_CODE")
    }

    func testBinWeightsBesideDecoySafetensors() throws {
        let v = verdict(try model("decoy", uid: 1, block: 10, files: ["pytorch_model.bin": [1, 2, 3]]))
        XCTAssertEqual(v.reason.rawValue, "FORMAT")
        XCTAssertTrue(v.message.contains("pytorch_model.bin"), v.message)
    }

    func testVocabMismatch() throws {
        var c = config
        c["vocab_size"] = 1000
        let v = verdict(try model("vocab", uid: 1, block: 10, config: c))
        XCTAssertEqual(v.reason.rawValue, "VOCAB")
        XCTAssertEqual(v.message, "vocab_size 1000 != the teacher's 512")
    }

    func testHugeHeaderLengthIsRefused() throws {
        var m = try model("hdr", uid: 1, block: 10)
        var bytes = [UInt8](repeating: 0, count: 64)
        bytes[7] = 0x80   // 2^63
        try writeFileAtomically(m.path! + "/model.safetensors", bytes)
        m.files = m.files.map { $0.name == "model.safetensors" ? ManifestFile(name: $0.name, size: 64, sha256: nil) : $0 }
        let v = verdict(m)
        XCTAssertEqual(v.reason.rawValue, "FORMAT")
        XCTAssertFalse(v.ok)
    }

    func testCopyIsOwnedByEarliestCommitterWhateverTheOrder() throws {
        let original = try model("orig", uid: 7, block: 100)
        let copy = try model("copy", uid: 3, block: 200)   // identical bytes, later block
        let verdicts = checker().check([copy, original])
        XCTAssertEqual(verdicts[0].reason.rawValue, "COPY")
        XCTAssertTrue(verdicts[0].message.contains("uid 7"), verdicts[0].message)
        XCTAssertTrue(verdicts[1].ok)
        // Different weights are no copy.
        let other = try model("other", uid: 4, block: 300, fill: 2)
        XCTAssertTrue(checker().check([original, other])[1].ok)
    }

    func testReshardedCopyWithNewFileNamesIsACopy() throws {
        let original = try model("orig2", uid: 7, block: 100)
        // The same tensors split over two differently named shards with an index.
        let t1 = [goodTensors[0]], t2 = Array(goodTensors[1...])
        let index = #"{"metadata":{},"weight_map":{"model.embed_tokens.weight":"part-a.safetensors","model.norm.weight":"part-b.safetensors","model.layers.0.self_attn.q_proj.weight":"part-b.safetensors"}}"#
        var copy = try model("reshard", uid: 3, block: 200, files: [
            "part-a.safetensors": safetensors(t1), "part-b.safetensors": safetensors(t2),
            "model.safetensors.index.json": Array(index.utf8)])
        try FileManager.default.removeItem(atPath: copy.path! + "/model.safetensors")
        copy.files.removeAll { $0.name == "model.safetensors" }
        copy.weights_sha256 = WeightFiles.identity(copy.files.map { ($0.name, $0.sha256!) })
        XCTAssertNotEqual(copy.weights_sha256, original.weights_sha256, "the file hashes differ")
        let v = checker().check([copy, original])
        XCTAssertEqual(v[0].reason.rawValue, "COPY", v[0].message)
        XCTAssertTrue(v[1].ok)
        XCTAssertEqual(v[1].weight_identity?.count, 64)
    }

    func testHiddenPayloadAndLyingIndex() throws {
        var m = try model("payload", uid: 1, block: 10)
        var bytes = try readFile(m.path! + "/model.safetensors")
        bytes += [UInt8](repeating: 9, count: 1000)   // 1000 bytes no tensor accounts for
        try writeFileAtomically(m.path! + "/model.safetensors", bytes)
        m.files = m.files.map { $0.name == "model.safetensors" ? ManifestFile(name: $0.name, size: Int64(bytes.count), sha256: Hashing.sha256Hex(bytes)) : $0 }
        let v = verdict(m)
        XCTAssertEqual(v.reason.rawValue, "FORMAT")
        XCTAssertTrue(v.message.contains("account for"), v.message)
        let lie = #"{"metadata":{"total_size":1},"weight_map":{"model.embed_tokens.weight":"model.safetensors","model.norm.weight":"model.safetensors","model.layers.0.self_attn.q_proj.weight":"model.safetensors"}}"#
        let v2 = verdict(try model("lie", uid: 1, block: 10, files: ["model.safetensors.index.json": Array(lie.utf8)]))
        XCTAssertEqual(v2.reason.rawValue, "FORMAT")
        XCTAssertTrue(v2.message.contains("total_size 1"), v2.message)
    }

    /// The config's implied model must be the headers' model: a config that halves the MLP while the
    /// weights keep it full, one that hides a layer, and a tensor nothing in the config explains.
    func testConfigThatLiesAboutTheModelIsRejected() throws {
        var c = config
        c["intermediate_size"] = 64
        let small = verdict(try model("lie-mlp", uid: 1, block: 10, config: c))
        XCTAssertEqual(small.reason.rawValue, "SHAPE", small.message)
        XCTAssertTrue(small.message.contains("the config implies [64, 64]"), small.message)
        let layer1 = goodTensors.filter { $0.0.hasPrefix("model.layers.0.") }.map { ($0.0.replacingOccurrences(of: "layers.0.", with: "layers.1."), $0.1, $0.2) }
        let hidden = verdict(try model("lie-layers", uid: 2, block: 10, tensors: goodTensors + layer1))
        XCTAssertEqual(hidden.reason.rawValue, "PARAMS", hidden.message)
        XCTAssertTrue(hidden.message.contains("tensor(s) the config does not explain, e.g. model.layers.1."), hidden.message)
        let extra = verdict(try model("lie-extra", uid: 3, block: 10, tensors: goodTensors + [("model.layers.0.mlp.spare.weight", "BF16", [128, 64])]))
        XCTAssertEqual(extra.reason.rawValue, "PARAMS", extra.message)
        XCTAssertTrue(extra.message.contains("the config implies \(goodTensors.reduce(0) { $0 + $1.2.reduce(1, *) }) text-model parameters"), extra.message)
        let missing = verdict(try model("lie-missing", uid: 4, block: 10, tensors: goodTensors.filter { !$0.0.hasSuffix("k_norm.weight") }))
        XCTAssertEqual(missing.reason.rawValue, "SHAPE", missing.message)
        XCTAssertTrue(missing.message.contains("missing tensor model.layers.0.self_attn.k_norm.weight"), missing.message)
    }

    /// The figures of a lie: the config's implied parameter count beside the headers', and the
    /// reason named; a missing lm_head with untied embeddings; the same from headers alone.
    func testConfigLiesNameTheirFigures() throws {
        let held = goodTensors.reduce(0) { $0 + $1.2.reduce(1, *) }
        var c = config
        c["intermediate_size"] = 64
        let half = verdict(try model("half", uid: 1, block: 10, config: c))
        XCTAssertEqual(half.reason.rawValue, "SHAPE")
        XCTAssertEqual(half.message, "model.layers.0.mlp.gate_proj.weight has shape [128, 64], the config implies [64, 64]; "
            + "the config implies \(held - 3 * 64 * 64) text-model parameters, the headers hold \(held)")
        // num_hidden_layers smaller than the layers the headers hold.
        let layer1 = goodTensors.filter { $0.0.hasPrefix("model.layers.0.") }.map { ($0.0.replacingOccurrences(of: "layers.0.", with: "layers.1."), $0.1, $0.2) }
        c = config
        c["num_hidden_layers"] = 1
        let fewer = verdict(try model("fewer", uid: 2, block: 10, config: c, tensors: goodTensors + layer1))
        XCTAssertEqual(fewer.reason.rawValue, "PARAMS")
        XCTAssertTrue(fewer.message.hasPrefix("\(layer1.count) tensor(s) the config does not explain, e.g. model.layers.1.input_layernorm.weight [64]"), fewer.message)
        XCTAssertTrue(fewer.message.hasSuffix("the config implies \(held) text-model parameters, the headers hold \(2 * held - 512 * 64 - 64)"), fewer.message)
        // A hidden tensor outside any known prefix is the text model's too; the vision tower and the MTP head are not.
        let junk = verdict(try model("junk", uid: 3, block: 10, tensors: goodTensors + [("extra.payload", "BF16", [64, 64])]))
        XCTAssertEqual(junk.reason.rawValue, "PARAMS", junk.message)
        let aux = verdict(try model("aux", uid: 4, block: 10, tensors: goodTensors + [("model.visual.proj.weight", "BF16", [64, 64]),
                                                                                     ("mtp.fc.weight", "BF16", [64, 128])]))
        XCTAssertTrue(aux.ok, aux.message)
        XCTAssertEqual(aux.params, Int64(held + 64 * 64 + 64 * 128), "counted, not cross-checked")
        // Untied embeddings without lm_head; absent tie_word_embeddings is transformers' default (untied).
        c = config
        c["tie_word_embeddings"] = nil
        let absent = verdict(try model("absent-tie", uid: 5, block: 10, config: c))
        XCTAssertEqual(absent.reason.rawValue, "SHAPE")
        XCTAssertTrue(absent.message.hasPrefix("no lm_head.weight while the embeddings are untied (tie_word_embeddings absent"), absent.message)
        c["tie_word_embeddings"] = false
        let untied = verdict(try model("untied-ok", uid: 6, block: 10, config: c, tensors: goodTensors + [("lm_head.weight", "BF16", [512, 64])]))
        XCTAssertTrue(untied.ok, untied.message)
        // Tied embeddings with an lm_head anyway: a matrix the config does not explain.
        let spareHead = verdict(try model("spare-head", uid: 7, block: 10, tensors: goodTensors + [("lm_head.weight", "BF16", [512, 64])]))
        XCTAssertEqual(spareHead.reason.rawValue, "PARAMS")
        XCTAssertTrue(spareHead.message.contains("e.g. lm_head.weight [512, 64]"), spareHead.message)
        // An unsupported model_type is ARCHITECTURE, never a pass.
        c = config
        c["model_type"] = "gemma3"
        XCTAssertEqual(verdict(try model("gemma", uid: 8, block: 10, config: c)).reason.rawValue, "ARCHITECTURE")
    }

    func testConfigLieIsFoundFromHeadersAlone() throws {
        var c = config
        c["intermediate_size"] = 64
        let (server, _, m) = try hubModel("meta-lie", metadataOnly: true, config: c)
        defer { server.stop() }
        XCTAssertEqual(m.metadata_only, true)
        XCTAssertFalse(FileManager.default.fileExists(atPath: m.path! + "/model.safetensors"))
        let v = verdict(m)
        XCTAssertEqual(v.reason.rawValue, "SHAPE")
        XCTAssertTrue(v.message.contains("the config implies [64, 64]"), v.message)
    }

    func testSameTensorInTwoShardsIsRefused() throws {
        let m = try model("dup", uid: 1, block: 10, files: ["extra.safetensors": safetensors([goodTensors[1]])])
        let v = verdict(m)
        XCTAssertEqual(v.reason.rawValue, "FORMAT")
        XCTAssertEqual(v.message, "tensor model.norm.weight appears in two shards")
    }

    /// A Qwen3.5 multimodal checkpoint saved by transformers (model.language_model.*, model.visual.*,
    /// untied head) passes, with the vision tower counted.
    func testMultimodalCheckpointPasses() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("DistilModelTests/Fixtures/qwen3_5-multimodal").path
        var files: [String: [UInt8]] = ["tokenizer.json": tokenizerJSON]
        for n in ["config.json", "model.safetensors"] { files[n] = try readFile(fixture + "/" + n) }
        let m = try model("mm", uid: 1, block: 10, config: try JSONSerialization.jsonObject(with: Data(files["config.json"]!)) as? [String: Any],
                          files: files)
        var o = CheckOptions()
        o.vocabSize = 256
        let v = Checker(options: o).check([m])[0]
        XCTAssertTrue(v.ok, v.message)
        let store = try WeightStore(directory: m.path!)
        let all = store.tensorNames.reduce(Int64(0)) { $0 + Int64(store.info($1)!.elementCount) }
        XCTAssertEqual(v.params, all)
        XCTAssertTrue(store.tensorNames.contains { $0.hasPrefix("model.visual.") })
    }

    /// --recheck-only: the re-check's outcome alone, nothing else checked again.
    func testRecheckOnlyGivesOnlyTheIntegrityVerdict() throws {
        var m = try model("re-only", uid: 1, block: 10)
        m.commit = String(repeating: "a", count: 40)
        try FileManager.default.removeItem(atPath: m.path! + "/tokenizer.json")   // would fail a full check
        for (outcome, reason) in [("ok", "OK"), ("not_found", "REMOVED"), ("private", "REMOVED"), ("changed", "CHANGED"),
                                  ("transient", "RETRY"), ("error", "RETRY")] {
            var o = CheckOptions()
            o.recheck = { _ in (FetchOutcome(rawValue: outcome)!, outcome == "ok" ? nil : "because") }
            let v = Checker(options: o).recheckOnly(m)
            XCTAssertEqual(v.reason.rawValue, reason, outcome)
            XCTAssertEqual(v.ok, reason == "OK")
            XCTAssertEqual(v.commit, m.commit)
            XCTAssertEqual(v.message, reason == "OK" ? "unchanged: commit aaaaaaaaaaaa, 3 files with the same sizes and hashes" : "because")
        }
        // Without a re-check configured, or for a manifest whose fetch failed: never OK.
        XCTAssertEqual(Checker(options: CheckOptions()).recheckOnly(m).reason.rawValue, "RETRY")
        var failed = m
        failed.outcome = .notFound
        var o = CheckOptions()
        o.recheck = { _ in (.ok, nil) }
        XCTAssertEqual(Checker(options: o).recheckOnly(failed).reason.rawValue, "REMOVED")
    }

    func testNaNWeights() throws {
        // 0x7FC0 is a bf16 NaN: every byte 0x7F/0xC0 pattern -> fill 0xFF gives 0xFFFF, a NaN too.
        let v = verdict(try model("nan", uid: 1, block: 10, fill: 0xFF))
        XCTAssertEqual(v.reason.rawValue, "NAN_WEIGHTS", v.message)
    }

    func testNearCopiesAreCopiesAndIndependentModelsAreNot() throws {
        let original = try model("near0", uid: 5, block: 100, files: ["model.safetensors": randomSafetensors(seed: 1, noise: 0)])
        let perturbed = try model("near1", uid: 6, block: 200, files: ["model.safetensors": randomSafetensors(seed: 1, noise: 0.001)])
        let independent = try model("near2", uid: 7, block: 300, files: ["model.safetensors": randomSafetensors(seed: 2, noise: 0)])
        XCTAssertNotEqual(perturbed.weights_sha256, original.weights_sha256)
        let v = checker().check([independent, perturbed, original])
        XCTAssertTrue(v[2].ok, v[2].message)
        XCTAssertEqual(v[1].reason.rawValue, "COPY", v[1].message)
        XCTAssertTrue(v[1].message.contains("near copy of uid 5"), v[1].message)
        XCTAssertTrue(v[0].ok, v[0].message)
        // A 5% perturbation is a different model at the default threshold.
        let far = try model("near3", uid: 8, block: 400, files: ["model.safetensors": randomSafetensors(seed: 1, noise: 0.05)])
        XCTAssertTrue(checker().check([original, far])[1].ok)
    }

    func testChatTemplateIsAWarningOrWithTheFlagARejection() throws {
        let teacher = "{# teacher #}{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"
        let same = try model("tpl-same", uid: 1, block: 10, files: ["tokenizer_config.json": Array(try JSONSerialization.data(withJSONObject: ["chat_template": "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}{# a comment #}"]))])
        let other = try model("tpl-other", uid: 2, block: 20, files: ["tokenizer_config.json": Array(try JSONSerialization.data(withJSONObject: ["chat_template": "{{ messages }}"]))], fill: 4)
        var o = CheckOptions()
        o.vocabSize = 512
        o.teacherChatTemplate = teacher
        var v = Checker(options: o).check([same, other])
        XCTAssertTrue(v[0].ok); XCTAssertNil(v[0].warnings)
        XCTAssertTrue(v[1].ok); XCTAssertEqual(v[1].warnings, ["CHAT_TEMPLATE"])
        o.requireChatTemplate = true
        v = Checker(options: o).check([same, other])
        XCTAssertEqual(v[1].reason.rawValue, "CHAT_TEMPLATE")
    }

    func testRegistryCarriesOwnershipAcrossEpochs() throws {
        let original = try model("reg0", uid: 7, block: 100)
        let c1 = checker()
        XCTAssertTrue(c1.check([original])[0].ok)
        let path = root + "/registry.json"
        try c1.registry.save(path: path)
        // Next epoch: the original is gone from the chain; a copy arrives. The same model re-checked is not its own copy.
        let copy = try model("reg1", uid: 3, block: 200)
        var o = CheckOptions(); o.vocabSize = 512
        let c2 = Checker(options: o, registry: try Registry.load(path: path))
        let v = c2.check([copy, original])
        XCTAssertEqual(v[0].reason.rawValue, "COPY", v[0].message)
        XCTAssertTrue(v[1].ok, v[1].message)
        // The hotkey's one commitment is remembered too.
        let again = try model("reg2", uid: 7, block: 300, hotkey: "hk7", fill: 6)
        XCTAssertEqual(Checker(options: o, registry: c2.registry).check([again])[0].reason.rawValue, "DUPLICATE_HOTKEY")
        XCTAssertThrowsError(try Registry.load(path: root + "/reg0/config.json"), "a file that is not a registry")
    }

    func testCommittedRegistrySampleReads() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/registry.json").path
        let r = try Registry.load(path: path)
        XCTAssertEqual(r.hotkeys.count, 2)
        XCTAssertEqual(r.hotkeys["5DemoKingHotkey"]?.block, 100)
        XCTAssertTrue(r.owners.keys.contains { $0.hasPrefix("tensors:") })
        XCTAssertEqual(try encodeJSON(r, pretty: true) + [0x0A], try readFile(path), "canonical bytes")
    }

    func testShapesAgainstTheConfig() throws {
        var c = config
        c["tie_word_embeddings"] = false
        let untied = verdict(try model("untied", uid: 1, block: 10, config: c))
        XCTAssertEqual(untied.reason.rawValue, "SHAPE")
        XCTAssertTrue(untied.message.contains("no lm_head.weight"), untied.message)
        var h = config
        h["hidden_size"] = 32
        let wrong = verdict(try model("hidden", uid: 1, block: 10, config: h))
        XCTAssertEqual(wrong.reason.rawValue, "SHAPE")
        XCTAssertTrue(wrong.message.contains("the config implies [512, 32]"), wrong.message)
    }

    func testDifferentTokenizerWithTheSameVocabSizeIsRejected() throws {
        // Swap two merges of the demo tokenizer: same vocabulary and size, another tokenizer.
        var o = try JSONSerialization.jsonObject(with: Data(tokenizerJSON)) as! [String: Any]
        var bpe = o["model"] as! [String: Any]
        var merges = bpe["merges"] as! [Any]
        merges.swapAt(3, 4)
        bpe["merges"] = merges
        o["model"] = bpe
        let other = Array(try JSONSerialization.data(withJSONObject: o))
        var opts = CheckOptions()
        opts.vocabSize = 512
        opts.teacherTokenizer = try Tokenizer(json: tokenizerJSON, name: "teacher")
        let v = Checker(options: opts).check([try model("tok", uid: 1, block: 10, files: ["tokenizer.json": other]),
                                              try model("tok-ok", uid: 2, block: 20, fill: 8)])
        XCTAssertEqual(v[0].reason.rawValue, "TOKENIZER", v[0].message)
        XCTAssertTrue(v[1].ok, v[1].message)
    }

    func testOneCommitmentPerHotkey() throws {
        let a = try model("a", uid: 1, block: 10, hotkey: "same")
        let b = try model("b", uid: 1, block: 20, hotkey: "same", fill: 3)
        let v = checker().check([b, a])
        XCTAssertEqual(v[0].reason.rawValue, "DUPLICATE_HOTKEY")
        XCTAssertTrue(v[1].ok)
    }

    func testFetchOutcomes() throws {
        let c = Commitment(uid: 1, hotkey: "h", block: 1, repo: "x/y")
        XCTAssertEqual(verdict(Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .notFound)).reason.rawValue, "REMOVED")
        XCTAssertEqual(verdict(Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .transient)).reason.rawValue, "RETRY")
        XCTAssertEqual(verdict(Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .changed)).reason.rawValue, "CHANGED")
    }

    func testTraversalNameIsRefused() throws {
        var m = try model("trav", uid: 1, block: 10)
        m.files.append(ManifestFile(name: "../../etc/passwd", size: 1, sha256: nil))
        XCTAssertEqual(verdict(m).reason.rawValue, "FORMAT")
    }

    func testByteIdenticalTokenizerSkipsLoadingButAgreesWithLoading() throws {
        let m = try model("same-tok", uid: 1, block: 10)
        let teacher = try Tokenizer.load(path: m.path! + "/tokenizer.json")
        var o = CheckOptions()
        o.vocabSize = 512
        o.teacherTokenizer = teacher
        let loaded = Checker(options: o).check([m])[0]
        o.teacherTokenizerSHA256 = Hashing.sha256Hex(tokenizerJSON)
        let shortcut = Checker(options: o).check([m])[0]
        XCTAssertTrue(loaded.ok, loaded.message)
        XCTAssertTrue(shortcut.ok, shortcut.message)
        XCTAssertEqual(shortcut.tokenizer_hash, loaded.tokenizer_hash)
        // A different file still gets loaded and compared.
        var other = tokenizerJSON
        other += Array("\n".utf8)   // same content, other bytes: loads, same identity
        let m2 = try model("other-bytes", uid: 2, block: 11, files: ["tokenizer.json": other])
        XCTAssertTrue(Checker(options: o).check([m2])[0].ok)
    }

    // MARK: the Hub: metadata-only checks and the integrity re-check

    /// Serves a model written by `model(...)` from a loopback Hub and fetches it.
    func hubModel(_ name: String, metadataOnly: Bool, tensors: [(String, String, [Int])]? = nil, config: [String: Any]? = nil)
        throws -> (LoopbackHub, HubClient, Manifest) {
        let local = try model(name, uid: 1, block: 10, config: config, tensors: tensors)
        let files = try local.files.map { LoopbackHub.File($0.name, try readFile(local.path! + "/" + $0.name, limit: 1 << 30)) }
        let server = LoopbackHub(repos: [.init(id: "miner/\(name)", commit: String(repeating: "c", count: 40), files: files)])
        try server.start()
        var o = FetchOptions()
        o.metadataOnly = metadataOnly
        o.headersDir = root + "/headers"
        o.progress = false
        o.retry.attempts = 2
        o.retry.baseDelay = 0.01
        o.retry.maxWait = 5
        let hub = HubClient(config: HubConfig(endpoint: server.endpoint, token: nil, cacheDir: root + "/hub", offline: false), options: o)
        let m = hub.fetch(Commitment(uid: 1, hotkey: "hk1", block: 10, repo: "miner/\(name)"))
        XCTAssertEqual(m.outcome.rawValue, "ok", m.message ?? "")
        return (server, hub, m)
    }

    func testMetadataOnlyManifestIsCheckedFromHeadersAlone() throws {
        let (server, _, m) = try hubModel("meta", metadataOnly: true)
        defer { server.stop() }
        XCTAssertFalse(FileManager.default.fileExists(atPath: m.path! + "/model.safetensors"))
        let full = verdict(try model("meta-local", uid: 2, block: 11))
        let v = verdict(m)
        XCTAssertTrue(v.ok, v.message)
        XCTAssertEqual(v.params, full.params)
        XCTAssertEqual(verdict(m, maxParams: 100).reason.rawValue, "PARAMS")
        // FP8 from the header alone.
        let (s2, _, fp8) = try hubModel("meta-fp8", metadataOnly: true,
                                       tensors: goodTensors(replacing: "model.layers.0.mlp.up_proj.weight", "F8_E4M3", [128, 64]))
        defer { s2.stop() }
        XCTAssertEqual(verdict(fp8).reason.rawValue, "QUANTIZED")
    }

    func testIntegrityRecheck() throws {
        let (server, hub, m) = try hubModel("re", metadataOnly: false)
        defer { server.stop() }
        func recheckVerdict() -> CheckVerdict {
            var o = CheckOptions()
            o.vocabSize = 512
            o.recheck = { hub.recheck($0) }
            return Checker(options: o).check([m])[0]
        }
        XCTAssertTrue(recheckVerdict().ok, recheckVerdict().message)
        // A 429 whose wait is beyond what is allowed, or 5xx to the end: RETRY, never a rejection for good.
        server.inject("/api/models/", .status(429, ["Retry-After": "600"]))
        XCTAssertEqual(recheckVerdict().reason.rawValue, "RETRY")
        server.inject("/api/models/", .status(503, [:])); server.inject("/api/models/", .status(503, [:]))
        XCTAssertEqual(recheckVerdict().reason.rawValue, "RETRY")
        XCTAssertTrue(recheckVerdict().ok)
        // Made private, then deleted: REMOVED.
        var repo = LoopbackHub.Repo(id: "miner/re", commit: m.commit!, files: try m.files.map {
            LoopbackHub.File($0.name, try readFile(m.path! + "/" + $0.name, limit: 1 << 30)) })
        repo.token = "secret"
        server.add(repo)
        XCTAssertEqual(recheckVerdict().reason.rawValue, "REMOVED")
        repo.token = nil
        repo.id = "miner/elsewhere"
        server.add(repo)
        server.add(.init(id: "miner/re", commit: String(repeating: "d", count: 40), files: []))
        // Pushed a new commit to the committed branch: CHANGED.
        let changed = recheckVerdict()
        XCTAssertEqual(changed.reason.rawValue, "CHANGED")
        XCTAssertTrue(changed.message.contains("now at commit"), changed.message)
    }
}

/// A seeded Gaussian generator for test weights.
struct SeededRNG {
    var s: UInt64
    init(_ seed: UInt64) { s = seed &* 0x9E3779B97F4A7C15 | 1 }
    mutating func next() -> UInt64 { s ^= s >> 12; s ^= s << 25; s ^= s >> 27; return s &* 2685821657736338717 }
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    mutating func normal() -> Double { (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform()) }
}
