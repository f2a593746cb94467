/// The pipeline's closed vocabularies, each a string-backed `Codable` enum: the raw values are the
/// exact strings the records carry (docs/FORMATS.md), and every `switch` over them is checked by the
/// compiler, so a new case cannot be forgotten in one place and handled in another.

/// How a fetch ended (`Manifest.outcome`, and the integrity re-check's answer).
public enum FetchOutcome: String, Codable, Sendable, CaseIterable {
    case ok
    /// The repository or the revision does not exist (any more).
    case notFound = "not_found"
    /// Private or gated: nobody else can score it.
    case `private`
    /// The repository moved away from the committed or fetched state.
    case changed
    /// Rate limits, 5xx, timeouts, a body that failed verification: try again in a later epoch.
    case transient
    /// Refused by us: an unsafe file name, too large.
    case error

    /// The check verdict a fetch outcome amounts to (dl-check; the re-check uses the same table).
    public var reason: ReasonCode {
        switch self {
        case .ok: return .ok
        case .notFound, .private: return .removed
        case .changed: return .changed
        case .transient: return .retry
        case .error: return .fetch
        }
    }
}

/// A check verdict's reason (`CheckVerdict.reason`): `OK`, or the stable code of a rejection.
public enum ReasonCode: String, Codable, Sendable, CaseIterable {
    case ok = "OK"
    /// More parameters than allowed, or tensors the config does not explain.
    case params = "PARAMS"
    /// vocab_size is not the teacher's.
    case vocab = "VOCAB"
    /// No tokenizer.json, or not the teacher's tokenizer.
    case tokenizer = "TOKENIZER"
    /// A quantization_config, a dtype other than BF16/F16/F32, or a quantized tensor layout.
    case quantized = "QUANTIZED"
    /// Not a well-formed safetensors model (file names, headers, sizes, index).
    case format = "FORMAT"
    /// Code in the repository (*.py, auto_map): never run.
    case customCode = "CUSTOM_CODE"
    /// An architecture the engine does not run.
    case architecture = "ARCHITECTURE"
    /// The same (or nearly the same) weights as an earlier commitment.
    case copy = "COPY"
    /// A tensor holds NaN or infinite values.
    case nanWeights = "NAN_WEIGHTS"
    /// A tensor the config implies is missing or has another shape.
    case shape = "SHAPE"
    /// The chat template differs from the teacher's (with --require-chat-template; else a warning).
    case chatTemplate = "CHAT_TEMPLATE"
    /// The hotkey already committed another model.
    case duplicateHotkey = "DUPLICATE_HOTKEY"
    /// Gone or private (fetch or re-check).
    case removed = "REMOVED"
    /// Changed since its commitment or its fetch.
    case changed = "CHANGED"
    /// A transient failure: never a rejection; checked again in a later epoch.
    case retry = "RETRY"
    /// The fetch was refused for another reason.
    case fetch = "FETCH"
    /// Passed the checks, but dl-kl could not score it for a reason of the checkpoint's own (the
    /// engine refuses its config or weights, its output is not finite): the judge's rejection of a
    /// `ScoringFault.miner` failure (never written by dl-check).
    case unscorable = "UNSCORABLE"

    /// The codes as dl-check --help lists them (UNSCORABLE is the judge's, after scoring).
    public static var documented: String { allCases.filter { $0 != .ok && $0 != .unscorable }.map(\.rawValue).joined(separator: ", ") }
}

/// What the judge made of a scored model this epoch (`ModelVerdict.outcome`; the state keeps the
/// last one, `new_king` stored as `king`).
public enum ModelOutcome: String, Codable, Sendable, CaseIterable {
    /// The king kept the crown.
    case king
    case newKing = "new_king"
    case dethroned
    case lost
    /// Flagged: cannot get weight.
    case noWeight = "no_weight"
    /// Not judged this epoch (its re-check, or the king's check or re-check, was RETRY): not
    /// recorded, planned again.
    case pending

    /// The outcome the state records.
    public var recorded: ModelOutcome { self == .newKing ? .king : self }
}

/// Whose fault it is that dl-kl could not score a model (`ScoringFailure.fault`).
public enum ScoringFault: String, Codable, Sendable, CaseIterable {
    /// The checkpoint's, as checked: the engine refuses its config or weights, or its output is not
    /// finite. Deterministic: the judge rejects the model for good (`UNSCORABLE`).
    case miner
    /// Ours, or transient: our copy of its files cannot be read or is no longer the checked one, the
    /// memory plan refuses it on this machine, the engine broke its own contract, dl-kl was killed
    /// by a signal twice. The judge treats it as a RETRY: not judged this epoch, planned again.
    case ours

    /// The reason the judge gives the model: UNSCORABLE (rejected) or RETRY (planned again).
    public var reason: ReasonCode { self == .miner ? .unscorable : .retry }
}

/// A safetensors dtype (the header's "dtype" strings).
public enum DType: String, Codable, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case u16 = "U16", u32 = "U32", u64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }

    /// The dtypes a student's weights may have (anything else is a quantized or foreign layout).
    public static let allowedWeights: Set<DType> = [.bf16, .f16, .f32]
}

/// A layer's kind in a hybrid model's `layer_types` (Qwen3.5: Gated DeltaNet linear attention
/// between full-attention layers).
public enum LayerType: String, Codable, Sendable, CaseIterable {
    case linearAttention = "linear_attention"
    case fullAttention = "full_attention"
}

// Interpolated into messages and tables as the records spell them ("not_found", "PARAMS").
extension FetchOutcome: CustomStringConvertible { public var description: String { rawValue } }
extension ReasonCode: CustomStringConvertible { public var description: String { rawValue } }
extension ModelOutcome: CustomStringConvertible { public var description: String { rawValue } }
extension ScoringFault: CustomStringConvertible { public var description: String { rawValue } }
extension DType: CustomStringConvertible { public var description: String { rawValue } }
extension LayerType: CustomStringConvertible { public var description: String { rawValue } }
