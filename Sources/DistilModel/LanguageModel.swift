import DistilFormats
import DistilTensors
import Foundation

/// A causal language model loaded from a checkpoint directory (config.json + safetensors).
/// config.json decides the architecture; one the engine cannot run is refused, never run wrongly.
public final class LanguageModel {
    public let config: ModelConfig
    /// The checkpoint directory it was loaded from.
    public let directory: String
    let net: Transformer
    public let threads: Int

    public var vocabSize: Int { config.vocabSize }
    public var architecture: String { config.architecture }

    /// Checks that the engine can run the checkpoint's architecture, reading only config.json.
    public static func validate(directory: String) throws {
        _ = try ModelConfig.load(directory: directory)
    }

    /// Loads the checkpoint, first refusing (before anything is mapped) a run that does not fit this
    /// machine's memory (`MemoryPlan`): `request` says how the run will use it (default: one
    /// sequence, the weights and the smallest buffers).
    public static func load(directory: String, threads: Int, request: MemoryRequest? = nil) throws -> LanguageModel {
        var r = request ?? MemoryRequest()
        r.threads = max(1, threads)
        let plan = try MemoryPlan.plan(directory: directory, request: r)
        if let m = plan.message { throw DistilError("\(directory): \(m)", kind: .runtime) }
        let config = try ModelConfig.load(directory: directory)
        let weights = try WeightStore(directory: directory)
        let (tensors, _) = try ModelTensors.declare(config: config, layout: TensorLayout(names: weights.tensorNames))
        let net = try config.family!.architecture.load(config, tensors, weights, Compute(threads: threads))
        return LanguageModel(config: config, directory: directory, net: net, threads: threads)
    }

    init(config: ModelConfig, directory: String, net: Transformer, threads: Int) {
        self.config = config
        self.directory = directory
        self.net = net
        self.threads = max(1, threads)
    }

    /// Full-sequence prefill. Calls `body` with f32 logits (row-major [rows x vocabSize]) for the
    /// positions logitsFrom..<tokens.count in chunks of at most chunkRows rows, reusing one buffer;
    /// positions before logitsFrom get no LM head.
    public func forward(tokens: [Int], logitsFrom: Int, chunkRows: Int,
                        body: (_ firstPosition: Int, _ rows: Int, _ logits: UnsafeBufferPointer<Float>) throws -> Void) throws {
        guard !tokens.isEmpty else { return }
        guard logitsFrom >= 0 && logitsFrom <= tokens.count else {
            throw DistilError("logitsFrom \(logitsFrom) outside 0...\(tokens.count)", kind: .runtime)
        }
        let hidden = try Compute.flushingSubnormals { try net.forward(tokens, state: net.makeState(capacity: tokens.count)) }
        let chunk = max(1, chunkRows)
        var buf = [Float](repeating: 0, count: chunk * vocabSize)
        var pos = logitsFrom
        while pos < tokens.count {
            let rows = min(chunk, tokens.count - pos)
            try buf.withUnsafeMutableBufferPointer { b in
                Compute.flushingSubnormals { net.logits(hidden, from: pos, rows: rows, into: b.baseAddress!) }
                try body(pos, rows, UnsafeBufferPointer(start: b.baseAddress!, count: rows * vocabSize))
            }
            pos += rows
        }
    }

    /// Batched incremental decode with a KV cache per sequence.
    public func makeDecoder(batch: Int, maxLength: Int) throws -> Decoder {
        guard batch >= 1, maxLength >= 1, maxLength <= 1 << 20 else {
            throw DistilError("decoder batch \(batch) / length \(maxLength) out of range", kind: .runtime)
        }
        return Decoder(model: self, batch: batch, maxLength: maxLength)
    }
}

/// Incremental decoding of several sequences.
public final class Decoder {
    let model: LanguageModel
    let batch: Int
    let maxLength: Int
    var states: [SequenceState] = []
    var logits: [Float]

    init(model: LanguageModel, batch: Int, maxLength: Int) {
        self.model = model
        self.batch = batch
        self.maxLength = maxLength
        logits = [Float](repeating: 0, count: batch * model.vocabSize)
    }

    /// Prefills each sequence; returns logits [batch x vocab] of each sequence's last position.
    public func start(_ prompts: [[Int]]) throws -> UnsafeBufferPointer<Float> {
        guard prompts.count == batch else { throw DistilError("decoder expects \(batch) prompts, got \(prompts.count)", kind: .runtime) }
        let c = model.config
        states = prompts.map { _ in model.net.makeState(capacity: maxLength) }
        for (b, p) in prompts.enumerated() {
            guard !p.isEmpty else { throw DistilError.input("prompt \(b)", "empty prompt") }
            try Compute.flushingSubnormals {
                let hidden = try model.net.forward(p, state: states[b])
                logits.withUnsafeMutableBufferPointer { model.net.logits(hidden, from: p.count - 1, rows: 1, into: $0.baseAddress! + b * c.vocabSize) }
            }
        }
        return logits.withUnsafeBufferPointer { $0 }
    }

    /// Appends one token per sequence; returns the next logits [batch x vocab].
    public func step(_ tokens: [Int]) throws -> UnsafeBufferPointer<Float> {
        guard tokens.count == batch, states.count == batch else {
            throw DistilError("decoder step expects \(batch) tokens after start", kind: .runtime)
        }
        // One batched step, then the LM head once for all B rows.
        try Compute.flushingSubnormals {
            let hidden = try model.net.forward(tokens, states: states)
            logits.withUnsafeMutableBufferPointer { model.net.logits(hidden, from: 0, rows: batch, into: $0.baseAddress!) }
        }
        return logits.withUnsafeBufferPointer { $0 }
    }
}
