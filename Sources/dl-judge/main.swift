import ArgumentParser
import DistilCLI
import DistilFormats
import DistilScore
import Foundation

/// dl-judge: king against challengers on identical prompts; the winner takes weight 1.0.
struct Main: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-judge",
        abstract: "Judge an epoch: mean KL per model, the epsilon rule, the winner's weights.",
        discussion: """
        EXAMPLE
          dl-judge plan --checks checks.jsonl --state state.json > plan.jsonl
          dl-kl --checks plan.jsonl --out-dir kl teacher.dlt
          dl-check --recheck-only --only plan.jsonl manifests.jsonl > recheck.jsonl
          dl-judge --checks checks.jsonl --recheck recheck.jsonl --state state.json --block 4200 kl/*.jsonl > verdict.json
          dl-judge show --state state.json
        """,
        subcommands: [JudgeCommand.self, PlanCommand.self, ShowCommand.self, ReportCommand.self, MetricsCommand.self, DecideCommand.self],
        defaultSubcommand: JudgeCommand.self)
}

struct JudgeCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Score every model in the KL records and pick the winner (the default subcommand).",
        discussion: """
        Reads KL records (dl-kl's JSON lines) from the files given, or stdin. Every model must have been scored on the same prompts against the same teacher stream; prompts with an empty continuation are dropped for all. A challenger takes the crown only with mean KL < (1 - epsilon) x the king's. Writes the verdict (JSON) to stdout or --out, updates --state in place (atomically), and prints a short table on stderr.

        With --recheck (the integrity re-check of the scored models, taken just before the weights are set): a model REMOVED or CHANGED since it was checked is disqualified; one whose re-check is RETRY is not judged this epoch (pending: not recorded, planned again); a king whose re-check is RETRY keeps the crown and the weight while every challenger scored this epoch waits.

        EXAMPLE
          dl-judge --checks checks.jsonl --recheck recheck.jsonl --state state.json --block 4200 --out verdict.json kl/*.jsonl
        """)

    @Option(help: "dl-check's verdicts (JSON lines): who may get weight.")
    var checks: String
    @Option(help: "The integrity re-check of the scored models (dl-check --recheck-only verdicts, JSON lines).")
    var recheck: String?
    @Option(help: "The judge's state file (read, then rewritten atomically); absent: first epoch.")
    var state: String?
    @Option(help: "Relative margin a challenger must beat the king by.")
    var epsilon: Double = 0.01
    @Option(help: "The epoch block (default: the teacher stream's block).")
    var block: Int?
    @Option(help: "Write the verdict here (atomically) instead of stdout.")
    var out: String?
    @Flag(help: "Do not rewrite --state (dry run).")
    var noStateUpdate = false
    @OptionGroup var common: CommonOptions
    @Argument(help: "KL record files (JSON lines, zstd ok); none or '-': stdin.")
    var kl: [String] = []

    func validate() throws {
        guard epsilon.isFinite, epsilon >= 0, epsilon < 1 else { throw ValidationError("--epsilon must be in [0, 1)") }
    }

    func run() throws {
        common.apply()
        let checks = try JudgeIO.readChecks(self.checks)
        let records = try JudgeIO.readKL(kl)
        let before = try JudgeIO.readState(state)
        let rechecked = try recheck.map { try JudgeIO.readChecks($0) }
        let (verdict, after) = try Judge.judge(checks: checks, records: records, state: before, recheck: rechecked,
                                               options: JudgeOptions(epsilon: epsilon, block: block))
        if let b = block, let tb = verdict.teacher?.block, b != tb {
            Log.warn("--block \(b) differs from the teacher stream's block \(tb)")
        }
        let bytes = try JudgeIO.encode(verdict)
        if let out {
            try writeFileAtomically(out, bytes)
        } else {
            let w = try FileWriter(path: nil)
            try w.write(bytes)
            try w.close()
        }
        if let state, !noStateUpdate { try writeFileAtomically(state, try JudgeIO.encode(after)) }
        if !Log.quiet { Log.writeStderr(JudgeIO.summary(verdict)) }
    }
}

struct PlanCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "List the models to score this epoch: the king and every new ok model.",
        discussion: """
        Prints the check verdicts (JSON lines) of the current king (if its check is still ok) and of every ok model never scored before. Prints nothing when there is no new challenger: then the epoch needs no teacher or student compute.

        EXAMPLE
          dl-judge plan --checks checks.jsonl --state state.json > plan.jsonl
          [ -s plan.jsonl ] || echo "no new challenger"
        """)

    @Option(help: "dl-check's verdicts (JSON lines).")
    var checks: String
    @Option(help: "The judge's state file; absent: first epoch.")
    var state: String?
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        let plan = Judge.plan(checks: try JudgeIO.readChecks(checks), state: try JudgeIO.readState(state))
        let w = JSONLWriter(try FileWriter(path: nil))
        for c in plan { try w.write(c) }
        try w.close()
        if plan.isEmpty {
            Log.info("no new challenger: nothing to score this epoch")
        } else {
            Log.info("\(plan.count) model\(plan.count == 1 ? "" : "s") to score: uids \(plan.map { String($0.uid) }.joined(separator: ", "))")
        }
    }
}

struct ShowCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the judge's state: a table, or the canonical JSON with --json.",
        discussion: """
        EXAMPLE
          dl-judge show --state state.json
          dl-judge show --state state.json --json | jq '.king'
        """)

    @Option(help: "The judge's state file.")
    var state: String
    @Flag(help: "Print the state as canonical JSON (for jq).")
    var json = false

    func run() throws {
        guard FileManager.default.fileExists(atPath: state) else { throw DistilError.input(state, "no such file") }
        let s = try JudgeIO.readState(state)
        let w = try FileWriter(path: nil)
        if json { try w.write(try JudgeIO.encode(s)) } else { try w.write(JudgeIO.describe(s)) }
        try w.close()
    }
}

Main.runMain()
