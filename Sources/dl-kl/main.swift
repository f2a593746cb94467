import ArgumentParser
import DistilCLI
import DistilEval
import DistilFormats
import DistilTensors
import DistilModel
import Foundation

struct KL: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-kl",
        abstract: "Score students against a teacher stream: KL(teacher || student) over the full vocabulary.",
        discussion: """
        Runs each student over exactly the teacher's prompt + continuation tokens and writes one KL record per prompt (JSON lines): mean and std of the per-position KL over the continuation positions, the number of positions, max/p50/p90/p99 and how often the student's top token is the teacher's.

        One model (a miner checking locally against the king's score):
          dl-kl --model ./my-model teacher.dlt > kl.jsonl
        Every model of a check/plan file, one output file per uid (existing files are kept: a killed run resumes):
          dl-judge plan --checks checks.jsonl --state state.json > plan.jsonl
          dl-kl --checks plan.jsonl --out-dir kl/ teacher.dlt
        """)

    @Option(help: "A student checkpoint directory.") var model: String?
    @Option(help: "Score every model (with ok=true) of these check verdicts; needs --out-dir.") var checks: String?
    @Option(help: "With --checks: the directory for one UID.jsonl per model.") var outDir: String?
    @Option(help: "Model name in the records (default: the directory).") var name: String?
    @Option(help: "uid recorded in the records.") var uid: Int?
    @Option(help: "Hotkey recorded in the records.") var hotkey: String?
    @Option(help: "Commitment block recorded in the records.") var block: Int?
    @Option(help: "Revision recorded in the records.") var revision: String?
    @Option(help: "Continuation positions per LM-head chunk (memory: up to 3 x chunk x vocab x 4 bytes: the logits, and the teacher rows read ahead in binary16; the LM head's weights are read once per chunk; the same chunk reproduces results bit for bit).") var chunk = 128
    @Option(help: "Compute threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(name: .shortAndLong, help: "Output file with --model (default: stdout).") var out: String?
    @Argument(help: "Teacher stream (from dl-teacher); '-' or none for stdin.") var stream: String = "-"
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard (model == nil) != (checks == nil) else { throw ValidationError("give exactly one of --model and --checks") }
        if checks != nil && outDir == nil { throw ValidationError("--checks needs --out-dir") }
        if checks != nil && stream == "-" { throw ValidationError("--checks reads the stream once per model: name the stream file") }
        guard chunk >= 1 && chunk <= 4096 else { throw ValidationError("--chunk must be in 1...4096") }
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
    }

    func run() throws {
        common.apply()
        if let model {
            let identity = StudentIdentity(model: name ?? model, uid: uid, hotkey: hotkey, block: block, revision: revision)
            let w = JSONLWriter(try FileWriter(path: out))
            try score(directory: model, identity: identity, into: w)
            try w.close()
            return
        }
        let verdicts = try JSONLReader<CheckVerdict>(path: checks!).readAll().filter(\.ok)
        try FileManager.default.createDirectory(atPath: outDir!, withIntermediateDirectories: true)
        let summary = JSONLWriter(try FileWriter(path: nil))
        for c in verdicts {
            guard let dir = c.path else { throw DistilError.input(checks!, "uid \(c.uid): no local path for \(c.repo)") }
            let file = "\(outDir!)/\(c.uid).jsonl"
            if FileManager.default.fileExists(atPath: file) {
                Log.info("uid \(c.uid): \(file) exists, keeping it")
            } else {
                let w = JSONLWriter(try FileWriter(path: file))
                try score(directory: dir, identity: StudentIdentity(check: c), into: w)
                try w.close()
            }
            try summary.write(["uid": "\(c.uid)", "model": c.repo, "kl": file])
        }
        try summary.close()
    }

    func score(directory: String, identity: StudentIdentity, into w: JSONLWriter) throws {
        Log.info("scoring \(identity.model)")
        let lm = try LanguageModel.load(directory: directory, threads: threads)
        let reader = try TeacherStreamReader(path: stream)
        try Scorer(model: lm, identity: identity, chunkRows: chunk).score(reader) { try w.write($0) }
    }
}

BLASCore.ensureOptimisedKernels()
KL.runMain()
