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
    /// committed revision with the same files. Returns a fetch outcome and a message. nil: not
    /// re-checked.
    public var recheck: ((Manifest) -> (outcome: FetchOutcome, message: String?))?
    public init() {}

}

/// One rejection: a stable code and a message with the figure.
public struct Rejection: Error {
    public let code: ReasonCode
    public let message: String
    public init(_ code: ReasonCode, _ message: String) { self.code = code; self.message = message }
}

/// dl-check's pre-checks, run before any compute is spent on a model. Each model gets a verdict
/// with ok, a reason code and a message naming the figure; rejections are data (the tool still
/// exits 0), only an unusable input stops the tool.
public final class Checker {
    let options: CheckOptions
    /// Weight identity → the owner (earliest block, then lower uid) seen so far.
    var owners: [String: ModelRef] = [:]
    /// Sketches of the accepted models, in commitment order.
    var sketches: [(owner: CheckVerdict, sketch: [String: [Float]])] = []
    /// Hotkeys that already have a commitment.
    var hotkeys: [String: ModelRef] = [:]

    /// Tensor-name fragments of quantized layouts (GPTQ, AWQ, bitsandbytes, FP8, ...).
    public static let quantizedNames = ["qweight", "qzeros", "scales", "g_idx", "absmax", "quant_map", "quant_state",
                                        "weight_scale", "weight_scale_inv", "input_scale", "SCB", "weight_format"]

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
        let me = m.commitment.ref
        if let first = hotkeys[m.hotkey], !first.isSameCommitment(me) {
            Log.debug("uid \(m.uid): hotkey \(m.hotkey) already committed \(first.repo) at block \(first.block)")
            return CheckVerdict(manifest: m, ok: false, reason: .duplicateHotkey,
                                message: "hotkey \(m.hotkey) already committed \(first.repo) at block \(first.block); later commitments are ignored")
        }
        if hotkeys[m.hotkey] == nil { hotkeys[m.hotkey] = me }
        var v = CheckVerdict(manifest: m, ok: true, reason: .ok, message: "")
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
                    throw Rejection(.copy, "weights identical to uid \(owner.uid) (\(owner.repo), committed at block \(owner.block))")
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
            v.ok = false; v.reason = .format; v.message = e.message
        } catch {
            v.ok = false; v.reason = .format; v.message = "\(error)"
        }
        Log.debug("uid \(m.uid) \(m.repo): \(v.reason.rawValue) \(v.message)")
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

    /// The rejection a fetch's or a re-check's outcome amounts to (nil: ok). One table for both,
    /// with one difference: a re-check that fails in a way the fetch would call refused (`error`) is
    /// RETRY, never a rejection, because the model already passed its fetch this epoch.
    static func rejection(_ outcome: FetchOutcome, _ message: String?, recheck: Bool) -> Rejection? {
        let reason: ReasonCode = recheck && outcome == .error ? .retry : outcome.reason
        switch reason {
        case .ok: return nil
        case .removed: return Rejection(.removed, message ?? "the repository is gone or private")
        case .changed:
            return Rejection(.changed, message ?? (recheck ? "the repository changed after it was fetched"
                                                           : "the repository changed after its commitment"))
        case .retry:
            return Rejection(.retry, message ?? (recheck ? "the integrity re-check failed transiently; check again later"
                                                         : "transient fetch failure; check again later"))
        default: return Rejection(reason, message ?? "fetch failed (\(outcome.rawValue))")
        }
    }

    /// The fetch's outcome: ok, or the rejection it amounts to.
    static func fetched(_ m: Manifest) throws {
        if let r = rejection(m.outcome, m.message, recheck: false) { throw r }
    }

    /// The integrity re-check's outcome: ok, REMOVED, CHANGED, or RETRY (anything transient).
    func rechecked(_ m: Manifest) throws {
        guard let recheck = options.recheck else { return }
        let (outcome, message) = recheck(m)
        if let r = Checker.rejection(outcome, message, recheck: true) { throw r }
    }

    /// The integrity re-check alone, for models that already passed every pre-check this epoch and
    /// are about to get weight (dl-check --recheck-only): `OK` (still there, public, at the fetched
    /// commit with the same files and hashes), `REMOVED`, `CHANGED`, or `RETRY` (transient: never a
    /// rejection). Nothing else is checked again; without `options.recheck` every verdict is RETRY.
    public func recheckOnly(_ m: Manifest) -> CheckVerdict {
        var v = CheckVerdict(manifest: m, ok: false, reason: .retry, message: "")
        do {
            try Checker.fetched(m)
            guard options.recheck != nil else { throw Rejection(.retry, "no integrity re-check was configured") }
            try rechecked(m)
            v.ok = true
            v.reason = .ok
            v.message = "unchanged: commit \((m.commit ?? "-").prefix(12)), \(m.files.count) file\(m.files.count == 1 ? "" : "s") with the same sizes and hashes"
        } catch let r as Rejection {
            v.reason = r.code; v.message = r.message
        } catch {
            v.message = "\(error)"
        }
        return v
    }

    /// Every pre-check of one model, in order, each a step below: the fetch (and re-check), the
    /// repository's files, config.json, the safetensors headers and the parameter limit, the
    /// architecture and its tensors, the tokenizer, the chat template, and the weights themselves.
    func inspect(_ m: Manifest) throws -> Summary {
        try Checker.fetched(m)
        try rechecked(m)
        guard let dir = m.path else { throw Rejection(.fetch, "the manifest has no local path") }
        let names = m.files.map(\.name)
        let weights = try Checker.weightFiles(names)
        let config = try checkConfig(dir, names: names)
        var s = Summary()
        let shapes = try readHeaders(m, directory: dir, weights: weights, into: &s)
        guard s.params <= options.maxParams else {
            throw Rejection(.params, String(format: "%.2fB parameters > %.2fB", Double(s.params) / 1e9, Double(options.maxParams) / 1e9))
        }
        try Checker.checkArchitecture(config, directory: dir, shapes: shapes)
        s.tokenizerHash = try checkTokenizer(dir, names: names)
        if try !checkChatTemplate(dir) { s.warnings.append(ReasonCode.chatTemplate.rawValue) }
        // The re-shard-proof identity, from the local weights (skipped when only headers were fetched).
        if m.metadata_only != true, let store = try? WeightStore(directory: dir) {
            if let bad = store.firstNonFinite() { throw Rejection(.nanWeights, "tensor \(bad) holds NaN or infinite values") }
            s.weightIdentity = store.identity()
            s.sketch = try store.sketch()
        }
        Log.debug("uid \(m.uid): \(s.params) parameters in \(weights.count) shard\(weights.count == 1 ? "" : "s"), "
            + "dtypes \(s.dtypes.sorted().joined(separator: "/")), tokenizer \(s.tokenizerHash?.prefix(12) ?? "-")")
        return s
    }

    /// The repository's files: nothing outside it, no code, safetensors weights only. Returns the
    /// weight files.
    static func weightFiles(_ names: [String]) throws -> [String] {
        for n in names where n.hasPrefix("/") || n.split(separator: "/").contains("..") {
            throw Rejection(.format, "file name '\(n)' leaves the repository")
        }
        if let py = names.first(where: { $0.hasSuffix(".py") }) {
            throw Rejection(.customCode, "the repository contains code (\(py)); no code from a model repo is ever run")
        }
        let weights = names.filter(WeightFiles.isWeightFile)
        if let other = weights.first(where: { !$0.hasSuffix(".safetensors") }) {
            throw Rejection(.format, "weight file \(other) is not safetensors; weights must be safetensors only")
        }
        guard !weights.isEmpty else { throw Rejection(.format, "no .safetensors weight files") }
        return weights
    }

    /// config.json: present, no custom code, not quantized, the teacher's vocabulary size; and no
    /// custom code in tokenizer_config.json. Returns the parsed config.
    func checkConfig(_ dir: String, names: [String]) throws -> [String: Any] {
        guard names.contains("config.json") else { throw Rejection(.format, "no config.json") }
        let config = try ModelDirectory(dir).jsonObject("config.json")
        if config["auto_map"] != nil { throw Rejection(.customCode, "config.json has auto_map (custom code)") }
        let text = (config["text_config"] as? [String: Any]) ?? [:]
        if config["quantization_config"] != nil || text["quantization_config"] != nil {
            throw Rejection(.quantized, "config.json has a quantization_config")
        }
        let vocab = (text["vocab_size"] ?? config["vocab_size"]) as? Int
        guard let vocab else { throw Rejection(.vocab, "config.json has no vocab_size") }
        guard vocab == options.vocabSize else {
            throw Rejection(.vocab, "vocab_size \(vocab) != the teacher's \(options.vocabSize)")
        }
        if names.contains("tokenizer_config.json"), let tc = try? ModelDirectory(dir).jsonObject("tokenizer_config.json"), tc["auto_map"] != nil {
            throw Rejection(.customCode, "tokenizer_config.json has auto_map (custom code)")
        }
        return config
    }

    /// Every shard's safetensors header: the file holds exactly its header and tensors, dtypes are
    /// BF16/F16/F32, no quantized layout, each tensor in one shard; counts the parameters and checks
    /// the index's total size. Returns each tensor's shape.
    func readHeaders(_ m: Manifest, directory dir: String, weights: [String], into s: inout Summary) throws -> [String: [Int]] {
        var tensorBytes: Int64 = 0
        var shapes: [String: [Int]] = [:]
        for w in weights.sorted() {
            // Metadata-only manifests keep each shard's header apart from the (absent) weights.
            let listed = m.files.first(where: { $0.name == w })?.size
            let header = m.metadata_only == true
                ? try ModelDirectory(dir).header(w, headersDir: m.headers_path ?? dir, listedSize: listed)
                : try ModelDirectory(dir).header(w)
            // The file holds exactly the header and the tensors: no hidden payload behind them.
            let dataEnd = header.tensors.map(\.end).max() ?? 0
            if let size = listed, size != Int64(header.dataStart + dataEnd) {
                throw Rejection(.format, "\(w): \(size) bytes, but its header and tensors account for \(header.dataStart + dataEnd)")
            }
            tensorBytes += Int64(header.tensors.reduce(0) { $0 + ($1.end - $1.begin) })
            for t in header.tensors {
                guard let dtype = t.type, DType.allowedWeights.contains(dtype) else {
                    throw Rejection(.quantized, "tensor \(t.name) has dtype \(t.dtype); only BF16, F16 and F32 are allowed")
                }
                let leaf = t.name.split(separator: ".").last.map(String.init) ?? t.name
                if Checker.quantizedNames.contains(leaf) {
                    throw Rejection(.quantized, "tensor \(t.name) belongs to a quantized layout")
                }
                // One tensor, one place: the same name in two shards is ambiguous (the loader refuses it).
                guard shapes.updateValue(t.shape, forKey: t.name) == nil else {
                    throw Rejection(.format, "tensor \(t.name) appears in two shards")
                }
                var n: Int64 = 1
                for d in t.shape {
                    let (r, o) = n.multipliedReportingOverflow(by: Int64(d))
                    guard !o else { throw Rejection(.format, "\(w): tensor \(t.name) has an absurd shape \(t.shape)") }
                    n = r
                }
                let (sum, o) = s.params.addingReportingOverflow(n)
                guard !o else { throw Rejection(.params, "parameter count overflows") }
                s.params = sum
                s.dtypes.insert(t.dtype)
            }
        }
        if m.files.contains(where: { $0.name == "model.safetensors.index.json" }) {
            let index = try ModelDirectory(dir).jsonObject("model.safetensors.index.json")
            if let total = ((index["metadata"] as? [String: Any])?["total_size"] as? NSNumber)?.int64Value, total != tensorBytes {
                throw Rejection(.format, "model.safetensors.index.json claims total_size \(total), the shards hold \(tensorBytes) bytes of tensors")
            }
        }
        return shapes
    }

    /// Architecture: one the engine runs; then every text-model tensor exactly as the config
    /// implies it: a missing tensor (an untied model without lm_head) or another shape is SHAPE,
    /// tensors the config does not explain (a hidden layer, a spare matrix) are PARAMS.
    static func checkArchitecture(_ config: [String: Any], directory dir: String, shapes: [String: [Int]]) throws {
        let expected: ExpectedTensors
        do {
            let modelConfig = try ModelConfig.parse(config, path: "\(dir)/config.json")
            expected = try ExpectedTensors(config: modelConfig, names: shapes.keys)
        } catch let e as DistilError {
            throw Rejection(.architecture, e.message)
        }
        if let d = expected.disagreement(with: shapes) {
            throw Rejection(d.kind == .unexplained ? .params : .shape, d.message)
        }
    }

    /// Tokenizer: present, and the teacher's. Returns its identity (semantic hash).
    func checkTokenizer(_ dir: String, names: [String]) throws -> String {
        guard names.contains("tokenizer.json") else { throw Rejection(.tokenizer, "no tokenizer.json") }
        // A tokenizer.json byte-identical to the teacher's is the teacher's tokenizer: no need to load it.
        let tokPath = ModelDirectory(dir).tokenizerFile
        if let teacher = options.teacherTokenizer, let teacherSHA = options.teacherTokenizerSHA256,
           let mine = try? Hashing.sha256Hex(file: tokPath), mine == teacherSHA {
            return teacher.identity.semanticHash
        }
        let tok: Tokenizer
        do { tok = try Tokenizer.load(path: tokPath) } catch let e as DistilError {
            throw Rejection(.tokenizer, e.message)
        }
        if let teacher = options.teacherTokenizer, tok.identity != teacher.identity {
            throw Rejection(.tokenizer, "tokenizer differs from the teacher's (identity \(tok.identity.semanticHash.prefix(12)) vs \(teacher.identity.semanticHash.prefix(12)))")
        }
        return tok.identity.semanticHash
    }

    /// The chat template, when the model has one, should be the teacher's: false when it differs
    /// (a warning), a rejection with `requireChatTemplate`.
    func checkChatTemplate(_ dir: String) throws -> Bool {
        guard let teacher = options.teacherChatTemplate, let mine = Checker.chatTemplate(directory: dir),
              Checker.normalizeTemplate(mine) != Checker.normalizeTemplate(teacher) else { return true }
        if options.requireChatTemplate { throw Rejection(.chatTemplate, "the chat template differs from the teacher's") }
        return false
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
                throw Rejection(.copy, String(format: "near copy of uid %d (%@, block %d): every shared tensor within %.1e relative difference (< %.0e)",
                                               owner.uid, owner.repo, owner.block, worst, options.nearCopyThreshold))
            }
        }
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
        if let o = try? ModelDirectory(directory).jsonObject("tokenizer_config.json"), let t = o["chat_template"] as? String {
            return t
        }
        if let b = try? readFile(directory + "/chat_template.jinja", limit: ModelDirectory.maxJSONBytes) { return String(decoding: b, as: UTF8.self) }
        return nil
    }
}

/// Who owns what across epochs: each weight identity's first committer (earliest block, then lower
/// uid) and each hotkey's one commitment. dl-check reads it with --registry and writes it back
/// atomically, so copies and repeated hotkeys are caught even when the original left the chain.
public struct Registry: Codable, Equatable {
    /// An owner is a commitment (`Commitment.ref`: no commit, which the registry never needed).
    public typealias Owner = ModelRef

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

    public func save(path: String) throws { try writeFileAtomically(path, try encoded()) }

    /// The registry file's bytes.
    public func encoded() throws -> [UInt8] { try encodeJSON(self, pretty: true) + [0x0A] }
}
