import ArgumentParser
import DistilCLI

/// dl-fetch: commitments in, manifests out. Each subcommand lives in its own file; a new one is one
/// file and one entry in `subcommands`.
struct Main: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-fetch",
        abstract: "Fetch committed models and write one manifest per commitment (files, sizes, SHA-256).",
        discussion: """
        EXAMPLES
          dl-fetch commitments.jsonl > manifests.jsonl
          dl-fetch --metadata-only --headers-dir work/headers commitments.jsonl | dl-check --teacher-tokenizer teacher/
          dl-fetch --model Qwen/Qwen3-0.6B --revision main | jq .outcome
          dl-fetch help fetch                              # every flag of the fetch
          dl-fetch prune --state work/state.json --commitments commitments.jsonl --keep /models/teacher --min-free 200G
        """,
        subcommands: [
            FetchCommand.self,
            PruneCommand.self,
        ],
        defaultSubcommand: FetchCommand.self)
}

Main.runMain()
