import DistilFormats
import DistilModel
import DistilScore
import DistilTokenizer
import Foundation

/// How the teacher continues the prompts.
public struct TeacherOptions: Sendable {
    public var maxNewTokens = 512
    /// 0 = greedy.
    public var temperature = 0.0
    public var topP = 1.0
    /// Seed string for sampling (DistilRNG domain "sample", per prompt "SEED/PROMPT_ID").
    public var seed: String?
    /// Prompts decoded together as one batch.
    public var batch = 4
    /// Refuse prompts longer than this many tokens (no flag sets it: a bound on the decoding state,
    /// well above what dl-prompts draws).
    public var maxPromptTokens = 8192
    /// The ids that end a continuation; nil = the model directory's, as ModelDirectory.specialTokenIDs
    /// reads them (generation_config.json, then config.json, then tokenizer_config.json).
    public var eosTokenIDs: [Int]?
    public init() {}
}

/// dl-teacher's core: tokenizes prompts (unless they carry tokens), continues them with the teacher
/// (greedy or seeded sampling, stopping at max_new_tokens or an EOS id) and writes the teacher
/// stream: per prompt its tokens and, per continuation position, the teacher's full-vocabulary
/// log-probabilities at temperature 1 (the distribution students are scored against).
public final class TeacherRunner {
    let model: LanguageModel
    let tokenizer: Tokenizer?
    let options: TeacherOptions

    public init(model: LanguageModel, tokenizer: Tokenizer?, options: TeacherOptions) {
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
    }

    /// What running `prompts` asks of the engine, for the memory check before the teacher loads
    /// (`LanguageModel.load(…, request:)`, `dl-teacher plan`): the batch, the longest prompt plus the
    /// new tokens per sequence, the rows a batch holds encoded until its prompts are complete.
    public static func memoryRequest(_ prompts: [PromptRecord], tokenizer: Tokenizer?, options: TeacherOptions, threads: Int) -> MemoryRequest {
        // Without a tokenizer, a prompt's UTF-8 bytes bound its byte-level BPE tokens.
        let longest = prompts.map { $0.tokens?.count ?? tokenizer?.encode($0.text).count ?? $0.text.utf8.count }.max() ?? 1
        let batch = min(max(1, options.batch), max(1, prompts.count))
        return MemoryRequest(batch: batch, positions: longest + options.maxNewTokens, prefill: longest,
                             teacherRows: batch * options.maxNewTokens, threads: threads)
    }

    /// The token ids of a prompt record: its own `tokens`, else the tokenizer's encoding.
    public func tokens(for p: PromptRecord) throws -> [Int] {
        let ids: [Int]
        if let t = p.tokens {
            ids = t
        } else {
            guard let tokenizer else { throw DistilError.input(p.id, "prompt has no tokens and no tokenizer was given") }
            ids = tokenizer.encode(p.text)
        }
        guard !ids.isEmpty else { throw DistilError.input("prompt '\(p.id)'", "no tokens (empty text)") }
        guard ids.count <= options.maxPromptTokens else {
            throw DistilError.input("prompt '\(p.id)'", "\(ids.count) tokens, more than the teacher's limit of \(options.maxPromptTokens)")
        }
        for t in ids where t < 0 || t >= model.vocabSize {
            throw DistilError.input("prompt '\(p.id)'", "token id \(t) outside the teacher's vocabulary (\(model.vocabSize))")
        }
        return ids
    }

    public func run(_ prompts: [PromptRecord], into writer: TeacherStreamWriter) throws {
        let v = model.vocabSize
        let eos = Set(try options.eosTokenIDs
            ?? ModelDirectory(model.directory).specialTokenIDs(tokenizer: tokenizer ?? Tokenizer.load(path: model.directory)).eos)
        let all = try prompts.map { try tokens(for: $0) }
        let progress = ProgressReporter("teacher", total: prompts.count, unit: " prompts")
        var start = 0
        while start < prompts.count {
            let end = min(prompts.count, start + max(1, options.batch))
            let batch = Array(all[start..<end])
            let n = batch.count
            var continuation = [[Int]](repeating: [], count: n)
            var rows = [[[UInt8]]](repeating: [], count: n)
            var finished = [Bool](repeating: false, count: n)
            var finish = [String](repeating: "length", count: n)
            var rngs = (start..<end).map { i in
                DistilRNG(domain: "sample", seed: "\(options.seed ?? "")/\(prompts[i].id)")
            }
            if options.maxNewTokens > 0 {
                let decoder = try model.makeDecoder(batch: n, maxLength: (batch.map(\.count).max() ?? 0) + options.maxNewTokens)
                var logits = try decoder.start(batch)
                for _ in 0..<options.maxNewTokens {
                    var next = [Int](repeating: eos.min() ?? 0, count: n)
                    // Each row's log-softmax, pick and encoding (~5 ms of one core for 248,320 entries)
                    // on all threads: rows are independent (each its own RNG), results land by index.
                    let live = (0..<n).filter { !finished[$0] }
                    var picked = [(token: Int, row: [UInt8])?](repeating: nil, count: n)
                    var failure: (row: Int, error: DistilError)?     // the first row's, as a serial loop would report
                    let lock = NSLock()
                    let workers = min(model.threads, live.count)
                    Profile.time("rows: log-softmax, pick, encode") {
                    picked.withUnsafeMutableBufferPointer { pk in rngs.withUnsafeMutableBufferPointer { rg in
                        let pk = UncheckedSendable(pk), rg = UncheckedSendable(rg), logits = UncheckedSendable(logits)
                        DispatchQueue.concurrentPerform(iterations: workers) { w in
                            var logProbs = [Float](repeating: 0, count: v)
                            for li in stride(from: w, to: live.count, by: workers) {
                                let b = live[li], row = logits.value.baseAddress! + b * v
                                logProbs.withUnsafeMutableBufferPointer { _ = KLKernel.logSoftmax(row, into: $0.baseAddress!, count: v) }
                                if let bad = logProbs.first(where: { !$0.isFinite && $0 != -.infinity }) {
                                    lock.lock()
                                    if failure.map({ b < $0.row }) ?? true {
                                        failure = (b, DistilError("teacher produced a non-finite log-prob (\(bad)) on prompt '\(prompts[start + b].id)'", kind: .runtime))
                                    }
                                    lock.unlock()
                                    continue
                                }
                                let tok = Sampler.pick(row, count: v, temperature: options.temperature, topP: options.topP, rng: &rg.value[b])
                                pk.value[b] = (tok, logProbs.withUnsafeBufferPointer { TeacherStreamWriter.encodeRow($0.baseAddress!, vocab: v) })
                            }
                        }
                    } }
                    }
                    if let failure { throw failure.error }
                    for b in live {
                        let (tok, row) = picked[b]!
                        rows[b].append(row)
                        continuation[b].append(tok)
                        next[b] = tok
                        if eos.contains(tok) { finished[b] = true; finish[b] = "eos" }
                    }
                    if finished.allSatisfy({ $0 }) { break }
                    if continuation.allSatisfy({ $0.count >= options.maxNewTokens }) { break }
                    logits = try Profile.time("decode step") { try decoder.step(next) }
                }
            }
            for b in 0..<n {
                try writer.beginPrompt(TeacherPrompt(id: prompts[start + b].id, promptTokens: batch[b],
                                                     continuationTokens: continuation[b], finish: finish[b]))
                for r in rows[b] { try writer.writeEncodedRow(r) }
            }
            progress.advance(n)
            start = end
        }
        progress.finish()
    }
}

/// Picks the next token: argmax when temperature is 0 (lowest id on ties), else a draw from
/// softmax(logits / T) restricted to the top-p nucleus (tokens by probability, ties by id).
public enum Sampler {
    public static func pick(_ logits: UnsafePointer<Float>, count v: Int, temperature: Double, topP: Double,
                            rng: inout DistilRNG) -> Int {
        if temperature <= 0 {
            var best = 0
            for i in 1..<v where logits[i] > logits[best] { best = i }
            return best
        }
        var m = -Float.infinity
        for i in 0..<v { m = max(m, logits[i]) }
        var p = [Double](repeating: 0, count: v)
        var total = 0.0
        for i in 0..<v { p[i] = exp(Double(logits[i] - m) / temperature); total += p[i] }
        var order = Array(0..<v)
        if topP < 1 {
            order.sort { p[$0] != p[$1] ? p[$0] > p[$1] : $0 < $1 }
            var cum = 0.0, keep = 0
            while keep < v { cum += p[order[keep]]; keep += 1; if cum >= topP * total { break } }
            order.removeLast(v - keep)
            total = cum
        }
        let u = rng.nextDouble() * total
        var acc = 0.0
        for i in order {
            acc += p[i]
            if u < acc { return i }
        }
        return order.last!
    }
}

/// Lets a buffer the workers write at disjoint indices cross into concurrentPerform.
struct UncheckedSendable<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}
