import ArgumentParser
import DistilCLI
import DistilEval
import DistilFormats
import DistilTensors

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

        With --checks, a model that cannot be scored does not stop the others: its UID.jsonl holds one scoring-failure record instead (docs/FORMATS.md "Scoring failure": whose fault — the checkpoint's, "miner", or ours/transient, "ours" — and why), its summary line says "failed", and the run goes on. A teacher stream that is damaged or unreadable, or output that cannot be written, stops the run (exit 1): it is no model's fault. With --model any failure is one error line and exit 1.
        """)

    @Option(help: "A student checkpoint directory.") var model: String?
    @Option(help: "Score every model (with ok=true) of these check verdicts; needs --out-dir.") var checks: String?
    @Option(help: "With --checks: the directory for one UID.jsonl per model.") var outDir: String?
    @Option(help: "Model name in the records (default: the directory).") var name: String?
    @Option(help: ArgumentHelp("With --checks: score nothing; every model without a UID.jsonl gets a scoring-failure record of ours (fault \"ours\") with this message (the pipelines, after dl-kl was killed by a signal twice on the model).", valueName: "MESSAGE")) var recordFailure: String?
    @OptionGroup var named: NamedModelOptions
    @Option(help: "Continuation positions per LM-head chunk (memory: up to 3 x chunk x vocab x 4 bytes: the logits, and the teacher rows read ahead in binary16; the LM head's weights are read once per chunk; the same chunk reproduces results bit for bit).") var chunk = 128
    @OptionGroup var compute: ComputeOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "Teacher stream (from dl-teacher); '-' or none for stdin.") var stream: String = "-"
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard (model == nil) != (checks == nil) else { throw ValidationError("give exactly one of --model and --checks") }
        if checks != nil && outDir == nil { throw ValidationError("--checks needs --out-dir") }
        if recordFailure != nil && checks == nil { throw ValidationError("--record-failure goes with --checks") }
        if named.uid != nil || named.hotkey != nil || named.block != nil || named.revision != nil, named.ref(repo: "") == nil {
            throw ValidationError("--uid, --hotkey and --block name the model together (--revision goes with them)")
        }
        if checks != nil && stream == "-" { throw ValidationError("--checks reads the stream once per model: name the stream file") }
        guard chunk >= 1 && chunk <= 4096 else { throw ValidationError("--chunk must be in 1...4096") }
    }

    func run() throws {
        common.apply()
        let run = StudentRun(stream: stream, chunkRows: chunk, threads: compute.threads)
        if let model {
            let identity = StudentIdentity(model: name ?? model, ref: named.ref(repo: name ?? model))
            try run.score(directory: model, identity: identity, out: output.out)
        } else if let checks, let outDir {
            let summary = JSONLWriter(try FileWriter(path: nil))
            try run.scoreAll(checks: checks, outDir: outDir, failure: recordFailure) { try summary.write($0) }
            try summary.close()
        }
    }
}

BLASCore.ensureOptimisedKernels()
KL.runMain()
