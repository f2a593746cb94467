import ArgumentParser
import DistilCLI
import DistilEval
import DistilFormats
import DistilTensors
import DistilModel
import DistilTokenizer
import Foundation

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
        subcommands: [Run.self, Inspect.self],
        defaultSubcommand: Run.self)
}

struct Run: DistilTool {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Write the teacher stream (the default).")

    @Option(help: "Teacher checkpoint directory (config.json, safetensors, tokenizer.json).") var model: String
    @Option(help: "tokenizer.json or a directory with one (default: the model directory).") var tokenizer: String?
    @Option(help: "Continuation length limit.") var maxNewTokens = 512
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature = 0.0
    @Option(help: "Nucleus sampling mass.") var topP = 1.0
    @Option(help: "Sampling seed (hex); default: from --block-hash and --block.") var seed: String?
    @Option(help: "The epoch's block number (provenance; sampling seed).") var block: Int?
    @Option(help: "The epoch's block hash (provenance; sampling seed).") var blockHash: String?
    @Option(help: "Prompts decoded together.") var batch = 4
    @Option(help: "Compute threads (default: all cores).") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Teacher repo id recorded in the header (default: the model directory).") var repo: String?
    @Option(help: "Teacher revision recorded in the header.") var revision: String?
    @Option(help: "Weights identity recorded in the header (default: computed from the weight files).") var weightsSha256: String?
    @Option(name: .shortAndLong, help: "Output file (default: stdout).") var out: String?
    @Argument(help: "Prompt records (JSON lines, optionally zstd); '-' or none for stdin.") var prompts: String = "-"
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard maxNewTokens >= 0 && maxNewTokens <= 32768 else { throw ValidationError("--max-new-tokens must be in 0...32768") }
        guard temperature >= 0 && temperature.isFinite else { throw ValidationError("--temperature must be >= 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard batch >= 1 && batch <= 256 else { throw ValidationError("--batch must be in 1...256") }
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
    }

    func run() throws {
        common.apply()
        let records = try JSONLReader<PromptRecord>(path: prompts).readAll()
        var seen = Set<String>()
        for p in records where !seen.insert(p.id).inserted {
            throw DistilError.input(prompts == "-" ? "stdin" : prompts, "duplicate prompt id '\(p.id)'")
        }
        var options = TeacherOptions()
        options.maxNewTokens = maxNewTokens
        options.temperature = temperature
        options.topP = topP
        options.batch = batch
        if temperature > 0 {
            if let seed { options.seed = seed } else if let blockHash, let block {
                options.seed = DistilRNG.seed(blockHash: blockHash, block: block)
            } else {
                throw DistilError.usage("sampling (--temperature > 0) needs --seed, or --block and --block-hash")
            }
        }
        let tok = try Tokenizer.load(path: tokenizer ?? model)
        let special = try tok.specialTokenIDs(modelDirectory: model)
        options.eosTokenIDs = special.eos
        Log.info("EOS ids \(special.eos) (from \(special.eosSource))")
        Log.info("loading \(model)")
        let lm = try LanguageModel.load(directory: model, threads: threads)
        let weights = try weightsSha256 ?? WeightFiles.identity(directory: model)
        let header = TeacherHeader(
            teacher: TeacherRef(repo: repo ?? model, revision: revision, weightsSHA256: weights, block: block,
                                blockHash: blockHash.map(DistilRNG.normalizeHex)),
            tokenizerSHA256: tok.identity.semanticHash,
            generation: GenerationSettings(maxNewTokens: maxNewTokens, temperature: temperature, topP: topP, seed: options.seed),
            vocabSize: lm.vocabSize, nPrompts: records.count)
        let file = try FileWriter(path: out)
        let writer = try TeacherStreamWriter(file, header: header)
        try TeacherRunner(model: lm, tokenizer: tok, options: options).run(records, into: writer)
        try writer.finish()
    }
}

struct Inspect: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a teacher stream as JSON lines: the header, then each prompt with its top tokens per position.")

    @Option(help: "tokenizer.json or a directory with one, to add the continuation's text.") var tokenizer: String?
    @Option(help: "Top tokens shown per position.") var top = 5
    @Argument(help: "Teacher stream; '-' or none for stdin.") var stream: String = "-"
    @OptionGroup var common: CommonOptions

    struct Line: Encodable {
        var id: String
        var prompt_tokens: [Int]
        var continuation_tokens: [Int]
        var continuation_text: String?
        var finish: String
        /// Per position: [[token id, log-prob], ...] best first.
        var top: [[[Double]]]
    }

    func run() throws {
        common.apply()
        let tok = try tokenizer.map { try Tokenizer.load(path: $0) }
        let r = try TeacherStreamReader(path: stream)
        let out = JSONLWriter(try FileWriter(path: nil))
        try out.write(r.header)
        let v = r.header.vocab_size
        var row = [Float](repeating: 0, count: v)
        while let p = try r.nextPrompt() {
            var tops: [[[Double]]] = []
            while try row.withUnsafeMutableBufferPointer({ try r.readRows(into: $0.baseAddress!, maxRows: 1) }) == 1 {
                let best = (0..<v).sorted { row[$0] != row[$1] ? row[$0] > row[$1] : $0 < $1 }.prefix(max(1, top))
                tops.append(best.map { [Double($0), (Double(row[$0]) * 1e4).rounded() / 1e4] })
            }
            try out.write(Line(id: p.id, prompt_tokens: p.prompt_tokens, continuation_tokens: p.continuation_tokens,
                               continuation_text: tok?.decode(p.continuation_tokens), finish: p.finish, top: tops))
        }
        try out.close()
    }
}

BLASCore.ensureOptimisedKernels()
Teacher.runMain()
