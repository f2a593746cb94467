import ArgumentParser
import DistilCLI

/// dl-prompts: the epoch's prompts from a corpus. Each subcommand lives in its own file; a new one is
/// one file and one entry in `subcommands`.
struct Prompts: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-prompts",
        abstract: "Draw evaluation prompts from a corpus, deterministically from the block hash.",
        discussion: """
        EXAMPLES
          dl-prompts sample --block 4200 --block-hash 0x9f...e1 /data/fineweb/ > prompts.jsonl
          dl-prompts sample --block 4200 --block-hash 0x9f...e1 000_00000.parquet 001_00000.parquet
          dl-prompts cat 000_00000.parquet | head -3
          dl-prompts sample --block 4200 --block-hash $HASH corpus/ | dl-prompts tokenize --tokenizer teacher/
        """,
        subcommands: [
            Sample.self,
            Cat.self,
            Tokenize.self,
        ],
        defaultSubcommand: Sample.self)
}

Prompts.runMain()
