import ArgumentParser
import DistilCLI

/// dl-judge: king against challengers on identical prompts; the winner takes weight 1.0.
/// Each subcommand lives in its own file; a new one is one file and one entry in `subcommands`.
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
        subcommands: [
            JudgeCommand.self,
            PlanCommand.self,
            ShowCommand.self,
            ReportCommand.self,
            MetricsCommand.self,
            DecideCommand.self,
            PolicyCommand.self,
        ],
        defaultSubcommand: JudgeCommand.self)
}

Main.runMain()
