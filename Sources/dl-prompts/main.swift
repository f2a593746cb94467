import ArgumentParser
import DistilCLI
import DistilCorpus
import DistilFormats
import DistilTokenizer
import Foundation

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
        subcommands: [Sample.self, Cat.self, Tokenize.self],
        defaultSubcommand: Sample.self)
}

struct Sample: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Write N prompts drawn from the corpus by the block hash (docs/FORMATS.md: prompt sampling).")

    @Option(help: "The epoch's block number.") var block: Int
    @Option(help: "The block's hash (hex); the seed of the draw.") var blockHash: String?
    @Flag(help: "Seed from the block number alone when no hash is known (predictable: never in production).")
    var insecureBlockNumberSeed = false
    @Option(help: "Prompts to draw.") var count = 40
    @Option(help: "Minimum characters (Unicode scalars) of a usable text.") var minChars = 200
    @Option(help: "Longer texts are cut at a whitespace before this many characters.") var maxChars = 2000
    @Option(name: .shortAndLong, help: "Output file (default: stdout).") var out: String?
    @Argument(help: "Corpus shards (.parquet, .jsonl, .jsonl.zst) or directories of them.") var corpus: [String]
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard !corpus.isEmpty else { throw ValidationError("name at least one corpus shard or directory") }
        guard count >= 1 && count <= 100_000 else { throw ValidationError("--count must be in 1...100000") }
        guard minChars >= 0, maxChars >= 1, minChars <= maxChars else { throw ValidationError("need 0 <= --min-chars <= --max-chars") }
        if let h = blockHash {
            let hex = DistilRNG.normalizeHex(h)
            guard !hex.isEmpty, hex.allSatisfy(\.isHexDigit) else { throw ValidationError("--block-hash must be hex, got '\(h)'") }
        } else if !insecureBlockNumberSeed {
            throw ValidationError("--block-hash is required (or --insecure-block-number-seed to seed from the block number alone)")
        }
    }

    func run() throws {
        common.apply()
        var o = SamplingOptions()
        o.count = count; o.minChars = minChars; o.maxChars = maxChars
        let seed = blockHash.map { DistilRNG.seed(blockHash: $0, block: block) } ?? "insecure/\(block)"
        let prompts = try PromptSampler(shards: try Corpus.shards(corpus), options: o).sample(block: block, seed: seed, blockHash: blockHash)
        let w = JSONLWriter(try FileWriter(path: out))
        for p in prompts { try w.write(p) }
        try w.close()
        Log.info("\(prompts.count) prompts for block \(block)")
    }
}

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
        let all = try Corpus.shards(shards)
        let w = JSONLWriter(try FileWriter(path: nil))
        for s in all {
            if let p = s as? ParquetShard {
                try p.forEachValue(column: column) { _, data, i in try w.write(ColumnLine(key: column, value: data.value(i))) }
            } else {
                guard column == "text" else { throw DistilError.input(s.name, "--column \(column): JSONL shards are read for \"text\" only") }
                try s.forEachText { _, t in try w.write(ColumnLine(key: column, value: t.map(ParquetValue.string) ?? .null)) }
            }
        }
        try w.close()
    }
}

/// One output line of `cat`: {"COLUMN": value}.
struct ColumnLine: Encodable {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    let key: String
    let value: ParquetValue
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(value, forKey: Key(stringValue: key))
    }
}

struct Tokenize: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Add \"tokens\" to prompt records (stdin → stdout) with a tokenizer.json.")
    @Option(help: "tokenizer.json or a model directory with one.") var tokenizer: String
    @Argument(help: "Prompt records; '-' or none for stdin.") var input: String = "-"
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        let tok = try Tokenizer.load(path: tokenizer)
        let r = try JSONLReader<PromptRecord>(path: input)
        let w = JSONLWriter(try FileWriter(path: nil))
        while var p = try r.next() {
            p.tokens = tok.encode(p.text)
            try w.write(p)
        }
        try w.close()
    }
}

Prompts.runMain()
