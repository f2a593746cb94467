import DistilFormats
import DistilModel
import DistilScore
import Foundation

/// Whom dl-kl scores: the name its lines carry as `model` and, for a checked model (or one the flags
/// name), its `ModelRef` and weights' hash, which `NamesScoredModel.identify` writes into each line.
public struct StudentIdentity: Sendable {
    public var model: String
    public var ref: ModelRef?
    public var weightsSHA256: String?

    public init(model: String, ref: ModelRef? = nil, weightsSHA256: String? = nil) {
        self.model = model; self.ref = ref; self.weightsSHA256 = weightsSHA256
    }

    /// A checked model: the check's reference, pinned commit included.
    public init(check c: CheckVerdict) { self.init(model: c.repo, ref: c.model, weightsSHA256: c.weights_sha256) }

    public var uid: Int? { ref?.uid }

    /// Names one of this student's lines (a KL record, a scoring failure).
    public func name<Line: NamesScoredModel>(_ line: inout Line) {
        line.model = model
        if let ref { line.identify(ref, weightsSHA256: weightsSHA256) } else { line.weights_sha256 = weightsSHA256 }
    }
}

/// dl-kl's core: runs a student over every prompt+continuation of a teacher stream and computes
/// KL(teacher || student) over the full vocabulary at every continuation position.
///
/// Logits at positions prompt_len-1 ... len-2 predict the continuation tokens; the LM head is run
/// only for those, `chunkRows` positions at a time, each chunk folded into the statistics against
/// the same number of teacher rows and the buffers reused: nothing of size [sequence x vocab] exists.
public final class Scorer {
    public let model: LanguageModel
    public let identity: StudentIdentity
    public let chunkRows: Int

    public init(model: LanguageModel, identity: StudentIdentity, chunkRows: Int = 128) {
        self.model = model
        self.identity = identity
        self.chunkRows = max(1, chunkRows)
    }

    /// Scores every prompt of the stream, calling `emit` with one record per prompt in stream order.
    public func score(_ stream: TeacherStreamReader, emit: (KLRecord) throws -> Void) throws {
        let h = stream.header
        guard model.vocabSize == h.vocab_size else {
            throw DistilError.input(identity.model, "vocabulary of \(model.vocabSize) does not match the teacher stream's \(h.vocab_size)")
        }
        let v = h.vocab_size
        let workersMax = max(1, min(model.threads, chunkRows))
        let progress = ProgressReporter("\(identity.model)", total: h.n_prompts, unit: " prompts")
        // What the teacher stream throws is no model's fault (ScoringStop), and neither is what
        // `emit` throws (our output); what the model does is.
        while let p = try ScoringStop.teacher({ try stream.nextPrompt() }) {
            let n = p.continuation_tokens.count
            var stats = KLStats()
            if n > 0 {
                let tokens = p.prompt_tokens + p.continuation_tokens
                guard !p.prompt_tokens.isEmpty else {
                    throw ScoringStop(DistilError.input(stream.name, "prompt '\(p.id)' has no prompt tokens"))
                }
                let from = p.prompt_tokens.count - 1
                var expectPos = from
                let rowsAhead = RowPrefetcher(stream, rows: n, piece: chunkRows, ahead: 2 * chunkRows, what: "prompt '\(p.id)'")
                do {
                    try model.forward(tokens: Array(tokens[0..<(tokens.count - 1)]), logitsFrom: from, chunkRows: chunkRows) { first, rows, logits in
                        guard first == expectPos, rows > 0, rows <= chunkRows else {
                            throw ModelFault(.ours, "\(identity.model): engine returned rows \(first)..<\(first + rows), expected from \(expectPos)")
                        }
                        expectPos += rows
                        let teacher = try ScoringStop.teacher { try rowsAhead.take(rows) }
                        // Positions in parallel (each computed whole by one thread, the kernel
                        // reading the teacher row in its stored binary16 form), added in order.
                        var points = [KLPoint](repeating: KLPoint(kl: 0, studentTop: 0, teacherTop: 0), count: rows)
                        points.withUnsafeMutableBufferPointer { out in
                            let lp = logits.baseAddress!, op = out.baseAddress!
                            let workers = min(workersMax, rows)
                            DispatchQueue.concurrentPerform(iterations: workers) { k in
                                var r = k
                                while r < rows {
                                    op[r] = teacher.withTeacherRow(r) { KLKernel.kl($0, studentLogits: lp + r * v, count: v) }
                                    r += workers
                                }
                            }
                        }
                        for p in points { stats.add(p) }
                    }
                } catch {
                    try? rowsAhead.finish()
                    throw error
                }
                try ScoringStop.teacher { try rowsAhead.finish() }
                guard expectPos - from == n else {
                    throw ModelFault(.ours, "\(identity.model): engine scored \(expectPos - from) of \(n) positions")
                }
                if let bad = stats.values.first(where: { !$0.isFinite }) {
                    throw DistilError.input(identity.model, "non-finite KL (\(bad)) on prompt '\(p.id)': the model's logits are not finite")
                }
            }
            var r = KLRecord(model: identity.model, promptID: p.id, klMean: stats.mean, klStd: stats.std, nTokens: stats.count)
            identity.name(&r)
            if stats.count > 0 {
                r.kl_max = stats.max; r.kl_p50 = stats.p50; r.kl_p90 = stats.p90
                r.kl_p99 = stats.p99; r.top1_agree = stats.top1Agreement
            }
            r.teacher = h.teacher
            Log.debug("\(identity.model) prompt '\(p.id)': mean KL \(stats.mean) over \(stats.count) positions")
            try emit(r)
            progress.advance()
        }
        progress.finish()
    }
}

