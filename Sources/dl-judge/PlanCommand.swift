import ArgumentParser
import DistilCLI
import DistilScore

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
    @OptionGroup var rules: PolicyOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        try JudgeRun.plan(checks: checks, state: state, options: try rules.options(block: nil))
    }
}
