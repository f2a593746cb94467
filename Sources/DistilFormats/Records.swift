import Foundation

/// The version every record and stream header carries as provenance.
public enum DistilVersion {
    public static let string = "0.1.0"
    public static var tool: String { "distil/\(string)" }
}

/// A miner's on-chain commitment: the input of an epoch.
/// `repo` is a Hub repo id ("org/name"), a local directory, or a file:// URL.
public struct Commitment: Codable, Equatable, Sendable {
    public var uid: Int
    public var hotkey: String
    public var block: Int
    public var repo: String
    public var revision: String?

    public init(uid: Int, hotkey: String, block: Int, repo: String, revision: String? = nil) {
        self.uid = uid; self.hotkey = hotkey; self.block = block; self.repo = repo; self.revision = revision
    }
}

/// One file of a fetched model.
public struct ManifestFile: Codable, Equatable, Sendable {
    public var name: String
    public var size: Int64
    /// SHA-256 of the content (hex); for Hub LFS files the Hub's value, verified on download.
    public var sha256: String?
    public init(name: String, size: Int64, sha256: String?) { self.name = name; self.size = size; self.sha256 = sha256 }
}

/// dl-fetch's output, one per commitment.
public struct Manifest: HoldsModelRef, Codable, Equatable, Sendable {
    /// The commitment (uid, hotkey, block, repo, revision) and the commit it resolved to (Hub) or
    /// "local" for a directory; stored flat beside the other fields.
    public var model: ModelRef
    /// Local snapshot directory holding the files (absent in metadata-only mode or on failure).
    public var path: String?
    public var files: [ManifestFile]
    /// ok, or a failure class (see `FetchOutcome`).
    public var outcome: FetchOutcome
    public var message: String?
    /// SHA-256 over the weight files' (name, sha256) pairs in name order: the cheap weight identity.
    public var weights_sha256: String?
    /// true when only metadata and safetensors headers were fetched.
    public var metadata_only: Bool?
    /// Metadata-only mode: the folder holding each safetensors file's first 8 + N bytes (its
    /// header) under the file's name.
    public var headers_path: String?
    public var tool: String

    public init(commitment c: Commitment, commit: String?, path: String?, files: [ManifestFile], outcome: FetchOutcome,
                message: String? = nil, weightsSHA256: String? = nil, metadataOnly: Bool? = nil) {
        model = c.ref
        model.commit = commit
        self.path = path; self.files = files; self.outcome = outcome
        self.message = message; weights_sha256 = weightsSHA256; metadata_only = metadataOnly
        tool = DistilVersion.tool
    }

    public var commitment: Commitment { Commitment(uid: model.uid, hotkey: model.hotkey, block: model.block, repo: model.repo, revision: model.revision) }

    enum CodingKeys: String, CodingKey { case path, files, outcome, message, weights_sha256, metadata_only, headers_path, tool }

    public init(from decoder: Decoder) throws {
        model = try ModelRef(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        files = try c.decode([ManifestFile].self, forKey: .files)
        outcome = try c.decode(FetchOutcome.self, forKey: .outcome)
        message = try c.decodeIfPresent(String.self, forKey: .message)
        weights_sha256 = try c.decodeIfPresent(String.self, forKey: .weights_sha256)
        metadata_only = try c.decodeIfPresent(Bool.self, forKey: .metadata_only)
        headers_path = try c.decodeIfPresent(String.self, forKey: .headers_path)
        tool = try c.decode(String.self, forKey: .tool)
    }

    public func encode(to encoder: Encoder) throws {
        try model.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encode(files, forKey: .files)
        try c.encode(outcome, forKey: .outcome)
        try c.encodeIfPresent(message, forKey: .message)
        try c.encodeIfPresent(weights_sha256, forKey: .weights_sha256)
        try c.encodeIfPresent(metadata_only, forKey: .metadata_only)
        try c.encodeIfPresent(headers_path, forKey: .headers_path)
        try c.encode(tool, forKey: .tool)
    }
}

/// dl-check's output, one per model.
public struct CheckVerdict: HoldsModelRef, Codable, Equatable, Sendable {
    /// The manifest's model; its `commit` is the pinned commit every later stage must load.
    public var model: ModelRef
    public var path: String?
    public var ok: Bool
    /// OK, or the stable code of a rejection (see `ReasonCode`).
    public var reason: ReasonCode
    public var message: String
    public var params: Int64?
    public var weights_sha256: String?
    public var weight_identity: String?
    public var tokenizer_hash: String?
    public var warnings: [String]?
    public var tool: String

    public init(manifest m: Manifest, ok: Bool, reason: ReasonCode, message: String) {
        model = m.model
        path = m.path; self.ok = ok; self.reason = reason; self.message = message
        weights_sha256 = m.weights_sha256
        tool = DistilVersion.tool
    }

    enum CodingKeys: String, CodingKey { case path, ok, reason, message, params, weights_sha256, weight_identity, tokenizer_hash, warnings, tool }

    public init(from decoder: Decoder) throws {
        model = try ModelRef(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        ok = try c.decode(Bool.self, forKey: .ok)
        reason = try c.decode(ReasonCode.self, forKey: .reason)
        message = try c.decode(String.self, forKey: .message)
        params = try c.decodeIfPresent(Int64.self, forKey: .params)
        weights_sha256 = try c.decodeIfPresent(String.self, forKey: .weights_sha256)
        weight_identity = try c.decodeIfPresent(String.self, forKey: .weight_identity)
        tokenizer_hash = try c.decodeIfPresent(String.self, forKey: .tokenizer_hash)
        warnings = try c.decodeIfPresent([String].self, forKey: .warnings)
        tool = try c.decode(String.self, forKey: .tool)
    }

    public func encode(to encoder: Encoder) throws {
        try model.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(path, forKey: .path)
        try c.encode(ok, forKey: .ok)
        try c.encode(reason, forKey: .reason)
        try c.encode(message, forKey: .message)
        try c.encodeIfPresent(params, forKey: .params)
        try c.encodeIfPresent(weights_sha256, forKey: .weights_sha256)
        try c.encodeIfPresent(weight_identity, forKey: .weight_identity)
        try c.encodeIfPresent(tokenizer_hash, forKey: .tokenizer_hash)
        try c.encodeIfPresent(warnings, forKey: .warnings)
        try c.encode(tool, forKey: .tool)
    }
}

/// Where a prompt came from.
public struct PromptSource: Codable, Equatable, Sendable {
    /// Corpus file or URL.
    public var shard: String
    public var row_group: Int?
    /// Row (or line, 0-based) inside the shard.
    public var row: Int
    public init(shard: String, rowGroup: Int? = nil, row: Int) { self.shard = shard; row_group = rowGroup; self.row = row }
}

/// One evaluation prompt.
public struct PromptRecord: Codable, Equatable, Sendable {
    public var id: String
    public var text: String
    /// Token ids; when present dl-teacher uses them as they are and skips tokenization.
    public var tokens: [Int]?
    public var source: PromptSource?
    public var block: Int?
    public var block_hash: String?
    public var tool: String?

    public init(id: String, text: String, tokens: [Int]? = nil, source: PromptSource? = nil,
                block: Int? = nil, blockHash: String? = nil) {
        self.id = id; self.text = text; self.tokens = tokens; self.source = source
        self.block = block; block_hash = blockHash; tool = DistilVersion.tool
    }
}

/// The teacher a KL record was scored against (copied from the teacher stream's header).
public struct TeacherRef: Codable, Equatable, Sendable {
    public var repo: String
    public var revision: String?
    public var weights_sha256: String?
    public var block: Int?
    public var block_hash: String?
    public init(repo: String, revision: String?, weightsSHA256: String?, block: Int?, blockHash: String?) {
        self.repo = repo; self.revision = revision; weights_sha256 = weightsSHA256; self.block = block; block_hash = blockHash
    }
}

/// dl-kl's output: one record per (model, prompt).
public struct KLRecord: Codable, Equatable, Sendable {
    /// The model's repo (or directory) as committed.
    public var model: String
    public var uid: Int?
    public var hotkey: String?
    /// The model's commitment block (ties go to the earlier one).
    public var block: Int?
    public var revision: String?
    public var weights_sha256: String?
    public var prompt_id: String
    /// Mean over continuation positions of KL(teacher || student) in nats.
    public var kl_mean: Double
    /// Population standard deviation over positions.
    public var kl_std: Double
    /// Continuation positions scored (0 when the teacher's continuation is empty).
    public var n_tokens: Int
    public var kl_max: Double?
    public var kl_p50: Double?
    public var kl_p90: Double?
    public var kl_p99: Double?
    /// Fraction of positions where the student's top token is the teacher's.
    public var top1_agree: Double?
    public var teacher: TeacherRef?
    public var tool: String

    public init(model: String, promptID: String, klMean: Double, klStd: Double, nTokens: Int) {
        self.model = model; prompt_id = promptID; kl_mean = klMean; kl_std = klStd; n_tokens = nTokens
        tool = DistilVersion.tool
    }
}

/// A line of dl-kl's (a KL record, a scoring failure) names its model as dl-kl names it: the repo as
/// `model` and, from the model's check, uid, hotkey and the commit scored as `revision`, with the
/// weights' hash. These are the one mapping between that naming and a `ModelRef`, both ways.
public protocol NamesScoredModel {
    var model: String { get set }
    var uid: Int? { get set }
    var hotkey: String? { get set }
    var revision: String? { get set }
    var weights_sha256: String? { get set }
    /// What else the line takes from the reference (a KL record: the commitment block); nothing by
    /// default.
    mutating func identified(_ ref: ModelRef)
}

extension NamesScoredModel {
    public mutating func identified(_ ref: ModelRef) {}

    /// Names the model by its `ModelRef` (the pinned commit, else the committed revision, as
    /// `revision`) and its weights' hash; `isOf` reads them back.
    public mutating func identify(_ ref: ModelRef, weightsSHA256: String?) {
        model = ref.repo; uid = ref.uid; hotkey = ref.hotkey; revision = ref.scoredRevision
        weights_sha256 = weightsSHA256
        identified(ref)
    }

    /// Whether the line is of model `ref`: the same repo, and the same hotkey and revision where the
    /// line names them. The revision may be the pinned commit (what `identify` writes) or the
    /// committed revision (a model scored by hand, `dl-kl --model --revision`).
    public func isOf(_ ref: ModelRef) -> Bool {
        guard model == ref.repo else { return false }
        if let h = hotkey, h != ref.hotkey { return false }
        if let v = revision, v != ref.revision, v != ref.commit { return false }
        return true
    }

    /// The key of the model as the line names it (for a line no check describes).
    public var namedKey: ModelRef.Key { ModelRef.Key(hotkey: hotkey ?? "", repo: model, commit: revision ?? "") }

    /// The check of a line without a uid: the first with its repo and, when it names one, hotkey.
    public func check(in checks: [CheckVerdict]) -> CheckVerdict? {
        checks.first { $0.repo == model && (hotkey == nil || $0.hotkey == hotkey) }
    }
}

extension KLRecord: NamesScoredModel {
    public mutating func identified(_ ref: ModelRef) { block = ref.block }
}

extension ScoringFailure: NamesScoredModel {}

/// dl-kl's record of a model it could not score: the one line of its `kl/UID.jsonl` in place of its
/// KL records (docs/FORMATS.md "Scoring failure"). It carries `fault`, which no KL record has.
public struct ScoringFailure: Codable, Equatable, Sendable {
    /// The model's identity, as its KL records would carry it (its commitment block is the check's).
    public var model: String
    public var uid: Int?
    public var hotkey: String?
    public var revision: String?
    /// The weight identity it was to be scored with: the check's (`Manifest.weights_sha256`).
    public var weights_sha256: String?
    /// Whose fault: the checkpoint's (`miner`) or ours / transient (`ours`).
    public var fault: ScoringFault
    /// One line: what failed.
    public var message: String
    /// The teacher stream it was to be scored against (its header), as in a KL record.
    public var teacher: TeacherRef?
    public var tool: String

    public init(model: String, fault: ScoringFault, message: String) {
        self.model = model; self.fault = fault; self.message = message
        tool = DistilVersion.tool
    }
}

/// One line of dl-kl's output: a KL record, or the model's scoring failure (the line with `fault`).
public enum KLLine: Decodable, Equatable, Sendable, CheckedRecord {
    case record(KLRecord)
    case failure(ScoringFailure)

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        if try decoder.container(keyedBy: Key.self).contains(Key(stringValue: "fault")) {
            self = .failure(try ScoringFailure(from: decoder))
        } else {
            self = .record(try KLRecord(from: decoder))
        }
    }

    public func invalidField() -> (field: String, problem: String)? {
        switch self {
        case .record(let r): return r.invalidField()
        case .failure(let f): return f.uid.flatMap(RecordRules.uid)
        }
    }
}
