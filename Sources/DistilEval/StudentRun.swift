import DistilFormats
import DistilModel
import Foundation

/// dl-kl as one call: one student, or every ok model of a check (or plan) file, scored against one
/// teacher stream.
public struct StudentRun {
    /// The teacher stream (a file; "-" is stdin, read once, so only for one model).
    public var stream: String
    public var chunkRows = 128
    public var threads = 1
    /// Scores one model directory, each KL record to `emit` (the engine by default; tests replace it).
    /// What it throws decides the model's fate in `scoreAll`: a `ScoringStop` stops the run, a
    /// `ModelFault` says whose fault it is, anything else is looked at by `fault(of:directory:identity:)`.
    public var scoreModel: (StudentRun, String, StudentIdentity, (KLRecord) throws -> Void) throws -> Void = { run, directory, identity, emit in
        Log.info("scoring \(identity.model)")
        let reader = try ScoringStop.teacher { try TeacherStreamReader(path: run.stream) }
        // The plan that LanguageModel.load makes too, asked first so that a refusal is known as
        // one: whether the model fits is this machine's state, not the checkpoint's fault.
        let request = MemoryRequest.scoring(chunkRows: run.chunkRows, threads: run.threads)
        let plan = try MemoryPlan.plan(directory: directory, request: request)
        if let m = plan.message { throw ModelFault(.ours, "\(directory): \(m)") }
        let lm = try LanguageModel.load(directory: directory, threads: run.threads, request: request)
        Log.debug("\(identity.model): \(lm.vocabSize) vocabulary, chunk \(run.chunkRows) rows, \(run.threads) threads")
        try Scorer(model: lm, identity: identity, chunkRows: run.chunkRows).score(reader, emit: emit)
    }

    public init(stream: String, chunkRows: Int = 128, threads: Int = 1) {
        self.stream = stream; self.chunkRows = chunkRows; self.threads = threads
    }

    /// One model: its KL records to `out` (nil: stdout). Any failure is the run's (a miner's local
    /// check): one error line.
    public func score(directory: String, identity: StudentIdentity, out: String?) throws {
        do {
            try write(directory: directory, identity: identity, out: out)
        } catch let s as ScoringStop {
            throw s.underlying
        } catch let f as ModelFault {
            throw DistilError(f.message, kind: .runtime)
        }
    }

    func write(directory: String, identity: StudentIdentity, out: String?) throws {
        let file = try ScoringStop.ours { try FileWriter(path: out) }
        let w = JSONLWriter(file)
        do {
            try scoreModel(self, directory, identity) { r in try ScoringStop.ours { try w.write(r) } }
        } catch {
            file.abort()
            throw error
        }
        try ScoringStop.ours { try w.close() }
    }

    /// One line of the summary `scoreAll` prints: which file holds which model's records.
    public struct Written: Codable, Equatable {
        public var uid: String
        public var model: String
        public var kl: String
        /// Present when the file holds the model's scoring failure instead: whose fault.
        public var failed: ScoringFault?

        public init(uid: String, model: String, kl: String, failed: ScoringFault? = nil) {
            self.uid = uid; self.model = model; self.kl = kl; self.failed = failed
        }
    }

    /// Every model of `checks` with ok=true, each into `outDir/UID.jsonl`, in the file's order. A file
    /// that exists is kept: each appears only when complete (temp file + rename), so a killed run
    /// resumes where it stopped and never rescores a finished model. `emit` gets one `Written` per
    /// model as soon as its file is there.
    ///
    /// One model that cannot be scored does not stop the others: its file holds one `ScoringFailure`
    /// line instead (with whose fault it is), and the run goes on. What is no model's fault — the
    /// teacher stream damaged or unreadable, our output not writable — stops the run: every model
    /// would fail the same way. With `failure` set nothing is scored: every model without a file
    /// gets a failure record of ours with that message (the pipelines, after dl-kl was killed by a
    /// signal twice on the model).
    public func scoreAll(checks path: String, outDir: String, failure: String? = nil, emit: (Written) throws -> Void) throws {
        let verdicts = try JSONLReader<CheckVerdict>(path: path).readAll().filter(\.ok)
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        for c in verdicts {
            guard let dir = c.path else { throw DistilError.input(path, "uid \(c.uid): no local path for \(c.repo)") }
            let file = "\(outDir)/\(c.uid).jsonl"
            let identity = StudentIdentity(check: c)
            var failed: ScoringFault?
            if FileManager.default.fileExists(atPath: file) {
                Log.info("uid \(c.uid): \(file) exists, keeping it")
                if case .failure(let f)? = try? JSONLReader<KLLine>(path: file).next() { failed = f.fault }
            } else if let failure {
                failed = try recordFailure(identity, .ours, failure, file: file)
            } else {
                do {
                    try write(directory: dir, identity: identity, out: file)
                } catch let s as ScoringStop {
                    throw s.underlying
                } catch {
                    let (fault, message) = fault(of: error, directory: dir, identity: identity)
                    failed = try recordFailure(identity, fault, message, file: file)
                }
            }
            try emit(Written(uid: "\(c.uid)", model: c.repo, kl: file, failed: failed))
        }
    }

    /// Writes `file` (atomically) with the model's one failure line, and says so on stderr.
    func recordFailure(_ id: StudentIdentity, _ fault: ScoringFault, _ message: String, file: String) throws -> ScoringFault {
        var f = ScoringFailure(model: id.model, fault: fault, message: message)
        id.name(&f)
        // The stream the model was to be scored against, as its KL records would name it; a stream
        // that cannot be read stops the run.
        f.teacher = try TeacherStreamReader(path: stream).header.teacher
        try writeFileAtomically(file, try encodeJSON(f) + [0x0A])
        Log.warn("uid \(id.uid.map(String.init) ?? "-") (\(id.model)) cannot be scored, "
            + (fault == .miner ? "the checkpoint's fault" : "ours or transient") + ": \(message)")
        return fault
    }

    /// Whose fault a model's failure is. The scorer's own verdict when it gave one; else the engine
    /// failed on the model's files, which dl-check passed: the checkpoint's fault, unless the files
    /// are no longer the checked ones (a file we cannot read, or another weight identity than the
    /// check's: our copy was damaged after the check, and a refetch may mend it). Error path only:
    /// it reads every file of the model once.
    public func fault(of error: Error, directory: String, identity: StudentIdentity) -> (ScoringFault, String) {
        if let f = error as? ModelFault { return (f.fault, f.message) }
        let message = (error as? DistilError)?.message ?? "\(error)"
        switch ModelFiles.compare(directory: directory, weightsSHA256: identity.weightsSHA256) {
        case .unreadable(let why): return (.ours, "our copy of its files cannot be read: \(why)")
        case .changed(let why): return (.ours, "\(message) (\(why))")
        case .asChecked: return (.miner, message)
        }
    }
}

/// A failure that is no model's — the teacher stream damaged or unreadable, our own output not
/// writable — so that every model would fail the same way: it stops the run.
public struct ScoringStop: Error, CustomStringConvertible {
    public let underlying: Error
    public init(_ underlying: Error) { self.underlying = underlying }
    public var description: String { "\(underlying)" }

    /// Runs a read of the teacher stream: what it throws stops the run.
    public static func teacher<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let s as ScoringStop { throw s } catch { throw ScoringStop(error) }
    }

    /// Runs a write of our own output: what it throws stops the run.
    public static func ours<T>(_ body: () throws -> T) throws -> T { try teacher(body) }
}

/// A model that cannot be scored, where the scorer knows whose fault it is.
public struct ModelFault: Error, CustomStringConvertible {
    public let fault: ScoringFault
    public let message: String
    public init(_ fault: ScoringFault, _ message: String) { self.fault = fault; self.message = message }
    public var description: String { message }
}

/// The model's files against what dl-check checked.
enum ModelFiles {
    enum Comparison: Equatable {
        /// Every file reads, and the weight files have the check's identity (or none was given).
        case asChecked
        /// A file (or the folder) cannot be read: why.
        case unreadable(String)
        /// The weight files read, with another identity than the check's.
        case changed(String)
    }

    /// The files in `directory` against the check's weight identity (`weightsSHA256`; nil: the
    /// files are only read).
    static func compare(directory: String, weightsSHA256: String?) -> Comparison {
        guard let names = FileManager.default.subpaths(atPath: directory) else { return .unreadable("\(directory): cannot list the folder") }
        var weights: [(name: String, sha256: String)] = []
        for n in names.sorted() where !n.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
            let path = directory + "/" + n
            var isDir: ObjCBool = false
            // A dangling link is listed but does not exist: it is one of the files we cannot read.
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { continue }
            do {
                // Regular files only: a FIFO in the model's place would block the read.
                let r = try FileReader(path: path, regularOnly: true)
                var h = Hashing.Hasher()
                let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64)
                defer { buf.deallocate() }
                while true {
                    let k = try r.read(into: buf)
                    if k == 0 { break }
                    h.update(UnsafeRawBufferPointer(rebasing: buf[0..<k]))
                }
                if WeightFiles.isWeightFile(n) { weights.append((n, h.finalizeHex())) }
            } catch {
                return .unreadable((error as? DistilError)?.message ?? "\(path): \(error)")
            }
        }
        if let want = weightsSHA256, WeightFiles.identity(weights) != want {
            return .changed("our copy of its weights is not the one checked: weight identity \(WeightFiles.identity(weights).prefix(12)), checked \(want.prefix(12))")
        }
        return .asChecked
    }
}
