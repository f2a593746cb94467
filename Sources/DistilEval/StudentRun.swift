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
    /// Scores one model directory into a writer (the engine by default; tests replace it).
    public var scoreModel: (StudentRun, String, StudentIdentity, JSONLWriter) throws -> Void = { run, directory, identity, w in
        Log.info("scoring \(identity.model)")
        let lm = try LanguageModel.load(directory: directory, threads: run.threads)
        Log.debug("\(identity.model): \(lm.vocabSize) vocabulary, chunk \(run.chunkRows) rows, \(run.threads) threads")
        let reader = try TeacherStreamReader(path: run.stream)
        try Scorer(model: lm, identity: identity, chunkRows: run.chunkRows).score(reader) { try w.write($0) }
    }

    public init(stream: String, chunkRows: Int = 128, threads: Int = 1) {
        self.stream = stream; self.chunkRows = chunkRows; self.threads = threads
    }

    /// One model: its KL records to `out` (nil: stdout).
    public func score(directory: String, identity: StudentIdentity, out: String?) throws {
        let w = JSONLWriter(try FileWriter(path: out))
        try scoreModel(self, directory, identity, w)
        try w.close()
    }

    /// One line of the summary `scoreAll` prints: which file holds which model's records.
    public struct Written: Codable, Equatable {
        public var uid: String
        public var model: String
        public var kl: String
    }

    /// Every model of `checks` with ok=true, each into `outDir/UID.jsonl`, in the file's order. A file
    /// that exists is kept: each appears only when complete (temp file + rename), so a killed run
    /// resumes where it stopped and never rescores a finished model. `emit` gets one `Written` per
    /// model as soon as its file is there.
    public func scoreAll(checks path: String, outDir: String, emit: (Written) throws -> Void) throws {
        let verdicts = try JSONLReader<CheckVerdict>(path: path).readAll().filter(\.ok)
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        for c in verdicts {
            guard let dir = c.path else { throw DistilError.input(path, "uid \(c.uid): no local path for \(c.repo)") }
            let file = "\(outDir)/\(c.uid).jsonl"
            if FileManager.default.fileExists(atPath: file) {
                Log.info("uid \(c.uid): \(file) exists, keeping it")
            } else {
                try score(directory: dir, identity: StudentIdentity(check: c), out: file)
            }
            try emit(Written(uid: "\(c.uid)", model: c.repo, kl: file))
        }
    }
}
