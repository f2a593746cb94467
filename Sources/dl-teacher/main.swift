import ArgumentParser
import DistilCLI
import DistilTensors

/// dl-teacher: prompts in, the teacher stream out. Each subcommand lives in its own file; a new one
/// is one file and one entry in `subcommands`.
struct Teacher: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-teacher",
        abstract: "Continue prompts with the teacher and write its full-vocabulary distributions (the teacher stream).",
        discussion: """
        Reads prompt records (JSON lines; a record with "tokens" skips tokenization), continues each prompt for up to --max-new-tokens tokens (greedy, or sampled with a seed from the block hash), and writes the teacher stream (zstd; docs/FORMATS.md) with one full-vocabulary log-prob row per continuation position. The file named by --out appears only when complete.

        EXAMPLES
          dl-prompts sample --block 4200 --block-hash $HASH corpus/ \\
            | dl-teacher --model teacher/ --block 4200 --block-hash $HASH > teacher.dlt
          dl-teacher inspect --tokenizer teacher/ teacher.dlt | head -3
        """,
        subcommands: [
            Run.self,
            Inspect.self,
        ],
        defaultSubcommand: Run.self)
}

BLASCore.ensureOptimisedKernels()
Teacher.runMain()
