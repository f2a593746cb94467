import ArgumentParser
import DistilCLI
import DistilCorpus
import DistilFormats

struct Cat: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "cat",
        abstract: "Print every row's text (or another column) as JSON lines, in file order.",
        discussion: """
        Each line is {"COLUMN": value}: a string, a number, or null for a null. Parquet shards
        can name any flat BYTE_ARRAY, INT32, INT64, FLOAT or DOUBLE column; JSONL shards only "text".
        EXAMPLES
          dl-prompts cat 000_00000.parquet | head -3
          dl-prompts cat --column url 000_00000.parquet | jq -r .url | sort | uniq -c
        """)
    @Option(help: "The column to print.") var column = "text"
    @Argument(help: "Shards (.parquet, .jsonl, .jsonl.zst) or directories of them.") var shards: [String]
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard !shards.isEmpty else { throw ValidationError("name at least one shard") }
        guard !column.isEmpty else { throw ValidationError("--column must not be empty") }
    }

    func run() throws {
        common.apply()
        let w = JSONLWriter(try FileWriter(path: nil))
        try ColumnDump.run(shards: shards, column: column, into: w)
        try w.close()
    }
}
