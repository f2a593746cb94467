import DistilFormats
import DistilModel
import DistilTensors
import DistilTokenizer
import Foundation

/// Limits and references of the pre-checks (defaults are subnet 97's).
public struct CheckOptions {
    public var maxParams: Int64 = 5_300_000_000
    public var vocabSize = 248_320
    /// The teacher's tokenizer; when set, a model's tokenizer must have the same identity.
    public var teacherTokenizer: Tokenizer?
    /// SHA-256 of the teacher's tokenizer.json file: a model whose file has the same bytes is
    /// accepted without loading its tokenizer (same bytes, same tokenizer).
    public var teacherTokenizerSHA256: String?
    /// A model whose every shared tensor differs from an earlier model's by less than this (relative
    /// L2 on the sketch positions) is a near copy. A bf16 round trip moves a tensor by ~1e-3 RMS.
    public var nearCopyThreshold = 0.005
    /// The teacher's chat template (tokenizer_config.json), when known.
    public var teacherChatTemplate: String?
    /// A different chat template is a rejection instead of a warning.
    public var requireChatTemplate = false
    /// The integrity re-check: asks where the model lives whether it is still there, public, at the
    /// committed revision with the same files. Returns a fetch outcome ("ok", "not_found",
    /// "private", "changed", "transient") and a message. nil: not re-checked.
    public var recheck: ((Manifest) -> (outcome: String, message: String?))?
    public init() {}

}

/// One rejection: a stable code and a message with the figure.
public struct Rejection: Error {
    public let code: String
    public let message: String
    public init(_ code: String, _ message: String) { self.code = code; self.message = message }
}

/// dl-check's pre-checks, run before any compute is spent on a model. Each model gets a verdict
/// with ok, a reason code and a message naming the figure; rejections are data (the tool still
/// exits 0), only an unusable input stops the tool.
public final class Checker {
    let options: CheckOptions
    /// Weight identity → the owner (earliest block, then lower uid) seen so far.
    var owners: [String: Registry.Owner] = [:]
    /// Sketches of the accepted models, in commitment order.
    var sketches: [(owner: CheckVerdict, sketch: [String: [Float]])] = []
    /// Hotkeys that already have a commitment.
    var hotkeys: [String: Registry.Owner] = [:]

    public static let allowedDTypes: Set<String> = ["BF16", "F16", "F32"]
    /// Tensor-name fragments of quantized layouts (GPTQ, AWQ, bitsandbytes, FP8, ...).
    public static let quantizedNames = ["qweight", "qzeros", "scales", "g_idx", "absmax", "quant_map", "quant_state",
                                        "weight_scale", "weight_scale_inv", "input_scale", "SCB", "weight_format"]
    static let maxHeaderBytes: UInt64 = 100 << 20

    public init(options: CheckOptions, registry: Registry = Registry()) {
        self.options = options
        owners = registry.owners
        hotkeys = registry.hotkeys
    }

    /// What the checker learnt, to carry into the next epoch (dl-check --registry).
    public var registry: Registry { Registry(owners: owners, hotkeys: hotkeys) }

    /// Checks every manifest. Copies and repeated hotkeys are decided in commitment order
    /// (block, then uid), so the earliest committer owns a weight hash whatever the input order.
    public func check(_ manifests: [Manifest]) -> [CheckVerdict] {
        let order = manifests.indices.sorted { (manifests[$0].block, manifests[$0].uid) < (manifests[$1].block, manifests[$1].uid) }
        var out = [CheckVerdict?](repeating: nil, count: manifests.count)
        for i in order { out[i] = check(manifests[i]) }
        return out.map { $0! }
    }

    public func check(_ m: Manifest) -> CheckVerdict {
        let me = Registry.Owner(m)
        if let first = hotkeys[m.hotkey], !first.isSameCommitment(me) {
            return CheckVerdict(manifest: m, ok: false, reason: "DUPLICATE_HOTKEY",
                                message: "hotkey \(m.hotkey) already committed \(first.repo) at block \(first.block); later commitments are ignored")
        }
        if hotkeys[m.hotkey] == nil { hotkeys[m.hotkey] = me }
        var v = CheckVerdict(manifest: m, ok: true, reason: "OK", message: "")
        do {
            let summary = try inspect(m)
            v.params = summary.params
            v.tokenizer_hash = summary.tokenizerHash
            v.warnings = summary.warnings.isEmpty ? nil : summary.warnings
            v.weight_identity = summary.weightIdentity
            // Copies: the same weight files (cheap, from the file hashes) or the same tensors however
            // they are sharded and named (from the tensor bytes); the earliest committer owns both.
            for id in [m.weights_sha256, summary.weightIdentity.map { "tensors:" + $0 }].compactMap({ $0 }) {
                if let owner = owners[id], !owner.isSameCommitment(me), owner.precedes(me) {
                    throw Rejection("COPY", "weights identical to uid \(owner.uid) (\(owner.repo), committed at block \(owner.block))")
                }
            }
            if let sk = summary.sketch { try nearCopy(sk) }
            v.message = String(format: "%.2fM parameters, %@", Double(summary.params) / 1e6, summary.dtypes.sorted().joined(separator: "/"))
            if let sk = summary.sketch { sketches.append((v, sk)) }
            for id in [m.weights_sha256, summary.weightIdentity.map { "tensors:" + $0 }].compactMap({ $0 }) where owners[id].map({ !$0.precedes(me) }) ?? true {
                owners[id] = me
            }
        } catch let r as Rejection {
            v.ok = false; v.reason = r.code; v.message = r.message
        } catch let e as DistilError {
            v.ok = false; v.reason = "FORMAT"; v.message = e.message
        } catch {
            v.ok = false; v.reason = "FORMAT"; v.message = "\(error)"
        }
        return v
    }

    struct Summary {
        var params: Int64 = 0
        var dtypes = Set<String>()
        var tokenizerHash: String?
        var weightIdentity: String?
        var sketch: [String: [Float]]?
        var warnings: [String] = []
    }

    /// The fetch's outcome: ok, or the rejection it amounts to.
    static func fetched(_ m: Manifest) throws {
        switch m.outcome {
        case "ok": break
        case "not_found", "private": throw Rejection("REMOVED", m.message ?? "the repository is gone or private")
        case "changed": throw Rejection("CHANGED", m.message ?? "the repository changed after its commitment")
        case "transient": throw Rejection("RETRY", m.message ?? "transient fetch failure; check again later")
        default: throw Rejection("FETCH", m.message ?? "fetch failed (\(m.outcome))")
        }
    }

    /// The integrity re-check's outcome: ok, REMOVED, CHANGED, or RETRY (anything transient).
    func rechecked(_ m: Manifest) throws {
        guard let recheck = options.recheck else { return }
        let (outcome, message) = recheck(m)
        switch outcome {
        case "ok": break
        case "not_found", "private": throw Rejection("REMOVED", message ?? "the repository is gone or private")
        case "changed": throw Rejection("CHANGED", message ?? "the repository changed after it was fetched")
        default: throw Rejection("RETRY", message ?? "the integrity re-check failed transiently; check again later")
        }
    }

    /// The integrity re-check alone, for models that already passed every pre-check this epoch and
    /// are about to get weight (dl-check --recheck-only): `OK` (still there, public, at the fetched
    /// commit with the same files and hashes), `REMOVED`, `CHANGED`, or `RETRY` (transient: never a
    /// rejection). Nothing else is checked again; without `options.recheck` every verdict is RETRY.
    public func recheckOnly(_ m: Manifest) -> CheckVerdict {
        var v = CheckVerdict(manifest: m, ok: false, reason: "RETRY", message: "")
        do {
            try Checker.fetched(m)
            guard options.recheck != nil else { throw Rejection("RETRY", "no integrity re-check was configured") }
            try rechecked(m)
            v.ok = true
            v.reason = "OK"
            v.message = "unchanged: commit \((m.commit ?? "-").prefix(12)), \(m.files.count) file\(m.files.count == 1 ? "" : "s") with the same sizes and hashes"
        } catch let r as Rejection {
            v.reason = r.code; v.message = r.message
        } catch {
            v.message = "\(error)"
        }
        return v
    }

    func inspect(_ m: Manifest) throws -> Summary {
        try Checker.fetched(m)
        try rechecked(m)
        guard let dir = m.path else { throw Rejection("FETCH", "the manifest has no local path") }
        let names = m.files.map(\.name)
        for n in names where n.hasPrefix("/") || n.split(separator: "/").contains("..") {
            throw Rejection("FORMAT", "file name '\(n)' leaves the repository")
        }
        if let py = names.first(where: { $0.hasSuffix(".py") }) {
            throw Rejection("CUSTOM_CODE", "the repository contains code (\(py)); no code from a model repo is ever run")
        }
        let weights = names.filter(WeightFiles.isWeightFile)
        if let other = weights.first(where: { !$0.hasSuffix(".safetensors") }) {
            throw Rejection("FORMAT", "weight file \(other) is not safetensors; weights must be safetensors only")
        }
        guard !weights.isEmpty else { throw Rejection("FORMAT", "no .safetensors weight files") }

        // config.json
        guard names.contains("config.json") else { throw Rejection("FORMAT", "no config.json") }
        let config = try jsonObject("\(dir)/config.json")
        if config["auto_map"] != nil { throw Rejection("CUSTOM_CODE", "config.json has auto_map (custom code)") }
        let text = (config["text_config"] as? [String: Any]) ?? [:]
        if config["quantization_config"] != nil || text["quantization_config"] != nil {
            throw Rejection("QUANTIZED", "config.json has a quantization_config")
        }
        let vocab = (text["vocab_size"] ?? config["vocab_size"]) as? Int
        guard let vocab else { throw Rejection("VOCAB", "config.json has no vocab_size") }
        guard vocab == options.vocabSize else {
            throw Rejection("VOCAB", "vocab_size \(vocab) != the teacher's \(options.vocabSize)")
        }
        if names.contains("tokenizer_config.json"), let tc = try? jsonObject("\(dir)/tokenizer_config.json"), tc["auto_map"] != nil {
            throw Rejection("CUSTOM_CODE", "tokenizer_config.json has auto_map (custom code)")
        }

        // Safetensors headers: parameters, dtypes, quantized layouts.
        var s = Summary()
        var tensorBytes: Int64 = 0
        var shapes: [String: [Int]] = [:]
        for w in weights.sorted() {
            // Metadata-only manifests keep each shard's header apart from the (absent) weights.
            let listed = m.files.first(where: { $0.name == w })?.size
            let header = m.metadata_only == true
                ? try readHeader("\(m.headers_path ?? dir)/\(w)", fileSize: listed)
                : try readHeader("\(dir)/\(w)", fileSize: nil)
            // The file holds exactly the header and the tensors: no hidden payload behind them.
            let dataEnd = header.tensors.map(\.end).max() ?? 0
            if let size = listed, size != Int64(header.dataStart + dataEnd) {
                throw Rejection("FORMAT", "\(w): \(size) bytes, but its header and tensors account for \(header.dataStart + dataEnd)")
            }
            tensorBytes += Int64(header.tensors.reduce(0) { $0 + ($1.end - $1.begin) })
            for t in header.tensors {
                guard Checker.allowedDTypes.contains(t.dtype) else {
                    throw Rejection("QUANTIZED", "tensor \(t.name) has dtype \(t.dtype); only BF16, F16 and F32 are allowed")
                }
                let leaf = t.name.split(separator: ".").last.map(String.init) ?? t.name
                if Checker.quantizedNames.contains(leaf) {
                    throw Rejection("QUANTIZED", "tensor \(t.name) belongs to a quantized layout")
                }
                // One tensor, one place: the same name in two shards is ambiguous (the loader refuses it).
                guard shapes.updateValue(t.shape, forKey: t.name) == nil else {
                    throw Rejection("FORMAT", "tensor \(t.name) appears in two shards")
                }
                var n: Int64 = 1
                for d in t.shape {
                    let (r, o) = n.multipliedReportingOverflow(by: Int64(d))
                    guard !o else { throw Rejection("FORMAT", "\(w): tensor \(t.name) has an absurd shape \(t.shape)") }
                    n = r
                }
                let (sum, o) = s.params.addingReportingOverflow(n)
                guard !o else { throw Rejection("PARAMS", "parameter count overflows") }
                s.params = sum
                s.dtypes.insert(t.dtype)
            }
        }
        if names.contains("model.safetensors.index.json") {
            let index = try jsonObject("\(dir)/model.safetensors.index.json")
            if let total = ((index["metadata"] as? [String: Any])?["total_size"] as? NSNumber)?.int64Value, total != tensorBytes {
                throw Rejection("FORMAT", "model.safetensors.index.json claims total_size \(total), the shards hold \(tensorBytes) bytes of tensors")
            }
        }
        guard s.params <= options.maxParams else {
            throw Rejection("PARAMS", String(format: "%.2fB parameters > %.2fB", Double(s.params) / 1e9, Double(options.maxParams) / 1e9))
        }

        // Architecture: one the engine runs; then every text-model tensor exactly as the config
        // implies it: a missing tensor (an untied model without lm_head) or another shape is SHAPE,
        // tensors the config does not explain (a hidden layer, a spare matrix) are PARAMS.
        let modelConfig: ModelConfig
        let expected: ExpectedTensors
        do {
            modelConfig = try ModelConfig.parse(config, path: "\(dir)/config.json")
            expected = try ExpectedTensors(config: modelConfig, names: shapes.keys)
        } catch let e as DistilError {
            throw Rejection("ARCHITECTURE", e.message)
        }
        if let d = expected.disagreement(with: shapes) {
            throw Rejection(d.kind == .unexplained ? "PARAMS" : "SHAPE", d.message)
        }

        // Tokenizer: present, and the teacher's.
        guard names.contains("tokenizer.json") else { throw Rejection("TOKENIZER", "no tokenizer.json") }
        // A tokenizer.json byte-identical to the teacher's is the teacher's tokenizer: no need to load it.
        let tokPath = "\(dir)/tokenizer.json"
        if let teacher = options.teacherTokenizer, let teacherSHA = options.teacherTokenizerSHA256,
           let mine = try? Hashing.sha256Hex(file: tokPath), mine == teacherSHA {
            s.tokenizerHash = teacher.identity.semanticHash
        } else {
            let tok: Tokenizer
            do { tok = try Tokenizer.load(path: tokPath) } catch let e as DistilError {
                throw Rejection("TOKENIZER", e.message)
            }
            s.tokenizerHash = tok.identity.semanticHash
            if let teacher = options.teacherTokenizer, tok.identity != teacher.identity {
                throw Rejection("TOKENIZER", "tokenizer differs from the teacher's (identity \(tok.identity.semanticHash.prefix(12)) vs \(teacher.identity.semanticHash.prefix(12)))")
            }
        }

        // The chat template, when the model has one, should be the teacher's.
        if let teacher = options.teacherChatTemplate, let mine = Checker.chatTemplate(directory: dir),
           Checker.normalizeTemplate(mine) != Checker.normalizeTemplate(teacher) {
            if options.requireChatTemplate { throw Rejection("CHAT_TEMPLATE", "the chat template differs from the teacher's") }
            s.warnings.append("CHAT_TEMPLATE")
        }

        // The re-shard-proof identity, from the local weights (skipped when only headers were fetched).
        if m.metadata_only != true, let store = try? WeightStore(directory: dir) {
            if let bad = store.firstNonFinite() { throw Rejection("NAN_WEIGHTS", "tensor \(bad) holds NaN or infinite values") }
            s.weightIdentity = store.identity()
            s.sketch = try store.sketch()
        }

        return s
    }

    /// Rejects a model that is an earlier model up to a bf16 round trip or a small perturbation: at
    /// least 90% of its tensors are shared with the earlier model, and every shared tensor's relative
    /// L2 difference on the sketch positions is below the threshold.
    func nearCopy(_ sk: [String: [Float]]) throws {
        for (owner, other) in sketches {
            var shared = 0
            var worst = 0.0
            for (name, a) in sk {
                guard let b = other[name], b.count == a.count else { continue }
                shared += 1
                var diff = 0.0, norm = 0.0
                for i in 0..<a.count { let d = Double(a[i]) - Double(b[i]); diff += d * d; norm += Double(b[i]) * Double(b[i]) }
                worst = max(worst, norm == 0 ? (diff == 0 ? 0 : .infinity) : (diff / norm).squareRoot())
                if worst >= options.nearCopyThreshold { break }
            }
            if shared > 0, shared * 10 >= sk.count * 9, worst < options.nearCopyThreshold {
                throw Rejection("COPY", String(format: "near copy of uid %d (%@, block %d): every shared tensor within %.1e relative difference (< %.0e)",
                                               owner.uid, owner.repo, owner.block, worst, options.nearCopyThreshold))
            }
        }
    }

    func jsonObject(_ path: String) throws -> [String: Any] {
        let bytes = try readFile(path, limit: 16 << 20)
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw Rejection("FORMAT", "\((path as NSString).lastPathComponent) is not a JSON object")
        }
        return o
    }

    /// Reads only a shard's header (8-byte length, then the JSON), bounded before allocating.
    func readHeader(_ path: String, fileSize: Int64?) throws -> SafetensorsHeader {
        let r = try FileReader(path: path)
        var len = [UInt8](repeating: 0, count: 8)
        guard try len.withUnsafeMutableBytes({ try r.readExactly(into: $0, what: "the header length") }) else {
            throw Rejection("FORMAT", "\((path as NSString).lastPathComponent): empty file")
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(len[i]) << (8 * UInt64(i)) }
        let size = fileSize ?? DistilFormats.fileSize(path)
        guard n <= Checker.maxHeaderBytes, n + 8 <= UInt64(size ?? Int64.max) else {
            throw Rejection("FORMAT", "\((path as NSString).lastPathComponent): header length \(n) is out of bounds")
        }
        var json = [UInt8](repeating: 0, count: Int(n))
        guard try json.withUnsafeMutableBytes({ try r.readExactly(into: $0, what: "the header") }) else {
            throw Rejection("FORMAT", "\((path as NSString).lastPathComponent): truncated header")
        }
        return try SafetensorsHeader.parse(len + json, name: (path as NSString).lastPathComponent, fileSize: size)
    }
}

extension Checker {
    /// A chat template with its Jinja comments ({# ... #}) removed and surrounding white space trimmed.
    public static func normalizeTemplate(_ t: String) -> String {
        var out = ""
        var rest = Substring(t)
        while let open = rest.range(of: "{#") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "#}") else { rest = ""; break }
            rest = rest[close.upperBound...]
        }
        out += rest
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The chat template of a model directory (tokenizer_config.json, or chat_template.jinja).
    public static func chatTemplate(directory: String) -> String? {
        if let b = try? readFile(directory + "/tokenizer_config.json", limit: 16 << 20),
           let o = try? JSONSerialization.jsonObject(with: Data(b)) as? [String: Any], let t = o["chat_template"] as? String {
            return t
        }
        if let b = try? readFile(directory + "/chat_template.jinja", limit: 16 << 20) { return String(decoding: b, as: UTF8.self) }
        return nil
    }
}

/// Who owns what across epochs: each weight identity's first committer (earliest block, then lower
/// uid) and each hotkey's one commitment. dl-check reads it with --registry and writes it back
/// atomically, so copies and repeated hotkeys are caught even when the original left the chain.
public struct Registry: Codable, Equatable {
    public struct Owner: Codable, Equatable {
        public var uid: Int
        public var hotkey: String
        public var repo: String
        public var revision: String?
        public var block: Int

        public init(_ m: Manifest) { uid = m.uid; hotkey = m.hotkey; repo = m.repo; revision = m.revision; block = m.block }

        func isSameCommitment(_ o: Owner) -> Bool { hotkey == o.hotkey && repo == o.repo && revision == o.revision && block == o.block }
        func precedes(_ o: Owner) -> Bool { (block, uid) < (o.block, o.uid) }
    }

    public var version = 1
    /// Weight identity ("SHA256" of the weight files, or "tensors:SHA256") -> owner.
    public var owners: [String: Owner] = [:]
    /// Hotkey -> its one commitment.
    public var hotkeys: [String: Owner] = [:]

    public init(owners: [String: Owner] = [:], hotkeys: [String: Owner] = [:]) { self.owners = owners; self.hotkeys = hotkeys }

    /// Reads a registry; a missing file is an empty registry.
    public static func load(path: String) throws -> Registry {
        guard FileManager.default.fileExists(atPath: path) else { return Registry() }
        let r = try decodeJSONFile(Registry.self, path: path)
        guard r.version == 1 else { throw DistilError.input(path, "unsupported registry version \(r.version)") }
        return r
    }

    public func save(path: String) throws { try writeFileAtomically(path, encodeJSON(self, pretty: true) + [0x0A]) }
}
