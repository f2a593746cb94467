import ArgumentParser
import DistilCLI
import DistilFormats
import DistilScore

struct JudgeCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Score every model in the KL records and pick the winner (the default subcommand).",
        discussion: """
        Reads KL records (dl-kl's JSON lines) from the files given, or stdin. Every model must have been scored on the same prompts against the same teacher stream; prompts with an empty continuation are dropped for all. Under the default policy a challenger takes the crown only with mean KL < (1 - epsilon) x the king's and the winner takes all the weight; --policy FILE states other rules (a paired t-test, the weight split over the last N kings), and a state written under one policy is refused under another unless --accept-policy-change. Writes the verdict (JSON) to stdout or --out, updates --state in place (atomically), and prints a short table on stderr.

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
    @OptionGroup var rules: PolicyOptions
    @Option(help: "The epoch block (default: the teacher stream's block).")
    var block: Int?
    @Option(help: "Write the verdict here (atomically) instead of stdout.")
    var out: String?
    @Flag(help: "Do not rewrite --state (dry run).")
    var noStateUpdate = false
    @OptionGroup var common: CommonOptions
    @Argument(help: "KL record files (JSON lines, zstd ok); none or '-': stdin.")
    var kl: [String] = []

    func run() throws {
        common.apply()
        let verdict = try JudgeRun.judge(checks: checks, recheck: recheck, state: state, kl: kl,
                                         options: try rules.options(block: block), out: out, updateState: !noStateUpdate)
        if !Log.quiet { Log.writeStderr(JudgeIO.summary(verdict)) }
    }
}
