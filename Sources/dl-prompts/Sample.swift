import ArgumentParser
import DistilCLI
import DistilCorpus
import DistilFormats

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
    @OptionGroup var output: OutputOptions
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
        let w = JSONLWriter(try FileWriter(path: output.out))
        for p in prompts { try w.write(p) }
        try w.close()
        Log.info("\(prompts.count) prompts for block \(block)")
    }
}
