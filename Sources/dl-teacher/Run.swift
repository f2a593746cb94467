import ArgumentParser
import DistilCLI
import DistilEval

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
    @Flag(help: "Print the memory the run needs and whether it fits this machine (JSON, docs/FORMATS.md), load nothing; exit 1 when it does not fit.")
    var plan = false
    @OptionGroup var compute: ComputeOptions
    @Option(help: "Teacher repo id recorded in the header (default: the model directory).") var repo: String?
    @Option(help: "Teacher revision recorded in the header.") var revision: String?
    @Option(help: "Weights identity recorded in the header (default: computed from the weight files).") var weightsSha256: String?
    @OptionGroup var output: OutputOptions
    @Argument(help: "Prompt records (JSON lines, optionally zstd); '-' or none for stdin.") var prompts: String = "-"
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard maxNewTokens >= 0 && maxNewTokens <= 32768 else { throw ValidationError("--max-new-tokens must be in 0...32768") }
        guard temperature >= 0 && temperature.isFinite else { throw ValidationError("--temperature must be >= 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard batch >= 1 && batch <= 256 else { throw ValidationError("--batch must be in 1...256") }
    }

    func run() throws {
        common.apply()
        var job = TeacherJob(model: model)
        job.tokenizer = tokenizer
        job.options.maxNewTokens = maxNewTokens
        job.options.temperature = temperature
        job.options.topP = topP
        job.options.batch = batch
        job.seed = seed
        job.block = block
        job.blockHash = blockHash
        job.repo = repo
        job.revision = revision
        job.weightsSHA256 = weightsSha256
        job.threads = compute.threads
        if plan { return try job.printPlan(prompts: prompts) }
        try job.run(prompts: prompts, out: output.out)
    }
}
