import DistilFormats
import DistilModel
import DistilTokenizer
import Foundation

/// dl-teacher as one call: prompts in, the teacher stream out, with the provenance its header records.
public struct TeacherJob {
    /// The teacher checkpoint directory.
    public var model: String
    /// tokenizer.json or a directory with one (nil: the model directory).
    public var tokenizer: String?
    public var options = TeacherOptions()
    /// The sampling seed given by hand (hex); nil: from the block hash and block when sampling.
    public var seed: String?
    public var block: Int?
    public var blockHash: String?
    /// Provenance recorded in the header (nil: the model directory; no revision).
    public var repo: String?
    public var revision: String?
    /// The weights identity recorded in the header (nil: computed from the weight files).
    public var weightsSHA256: String?
    public var threads = 1

    public init(model: String) { self.model = model }

    /// The seed of a sampled run: the one given, else the block's (DistilRNG.seed); greedy needs none.
    public static func samplingSeed(temperature: Double, seed: String?, block: Int?, blockHash: String?) throws -> String? {
        guard temperature > 0 else { return nil }
        if let seed { return seed }
        guard let blockHash, let block else {
            throw DistilError.usage("sampling (--temperature > 0) needs --seed, or --block and --block-hash")
        }
        return DistilRNG.seed(blockHash: blockHash, block: block)
    }

    /// Prompt ids name a prompt's rows in the stream and in every KL record: a repeated id is refused.
    public static func checkUniqueIDs(_ records: [PromptRecord], source: String) throws {
        var seen = Set<String>()
        for p in records where !seen.insert(p.id).inserted {
            throw DistilError.input(source, "duplicate prompt id '\(p.id)'")
        }
    }

    /// `dl-teacher --plan`: prints the memory this job would need (MemoryPlan, one JSON object) before
    /// loading anything; throws its one-line message when it does not fit.
    public func printPlan(prompts: String) throws {
        let records = try JSONLReader<PromptRecord>(path: prompts).readAll()
        let tok = try Tokenizer.load(path: tokenizer ?? model)
        let plan = try MemoryPlan.plan(directory: model,
                                       request: TeacherRunner.memoryRequest(records, tokenizer: tok, options: options, threads: threads))
        FileHandle.standardOutput.write(Data(try encodeJSON(plan, pretty: true) + [10]))
        if let m = plan.message { throw DistilError("\(model): \(m)", kind: .runtime) }
    }

    /// Reads the prompts at `prompts` ("-": stdin) and writes the stream to `out` (nil: stdout).
    public func run(prompts: String, out: String?) throws {
        let records = try JSONLReader<PromptRecord>(path: prompts).readAll()
        try TeacherJob.checkUniqueIDs(records, source: prompts == "-" ? "stdin" : prompts)
        var options = self.options
        options.seed = try TeacherJob.samplingSeed(temperature: options.temperature, seed: seed, block: block, blockHash: blockHash)
        let tok = try Tokenizer.load(path: tokenizer ?? model)
        let special = try ModelDirectory(model).specialTokenIDs(tokenizer: tok)
        options.eosTokenIDs = special.eos
        Log.info("EOS ids \(special.eos) (from \(special.eosSource))")
        Log.info("loading \(model)")
        let lm = try LanguageModel.load(directory: model, threads: threads,
                                        request: TeacherRunner.memoryRequest(records, tokenizer: tok, options: options, threads: threads))
        let weights = try weightsSHA256 ?? WeightFiles.identity(directory: model)
        Log.debug("teacher weights \(weights), vocabulary \(lm.vocabSize), \(records.count) prompts, batch \(options.batch), "
            + (options.temperature > 0 ? "temperature \(options.temperature), top-p \(options.topP)" : "greedy"))
        let header = TeacherHeader(
            teacher: TeacherRef(repo: repo ?? model, revision: revision, weightsSHA256: weights, block: block,
                                blockHash: blockHash.map(DistilRNG.normalizeHex)),
            tokenizerSHA256: tok.identity.semanticHash,
            generation: GenerationSettings(maxNewTokens: options.maxNewTokens, temperature: options.temperature,
                                           topP: options.topP, seed: options.seed),
            vocabSize: lm.vocabSize, nPrompts: records.count)
        let file = try FileWriter(path: out)
        let writer = try TeacherStreamWriter(file, header: header)
        try TeacherRunner(model: lm, tokenizer: tok, options: options).run(records, into: writer)
        try writer.finish()
    }
}
