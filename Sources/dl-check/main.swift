import ArgumentParser
import DistilCheck
import DistilCLI
import DistilFormats
import DistilHub

struct Check: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-check",
        abstract: "Pre-check fetched models before any compute: size, dtypes, quantization, tokenizer, code, copies.",
        discussion: """
        Reads manifests (dl-fetch's JSON lines) and writes one verdict per model: ok, a stable reason code (PARAMS, VOCAB, TOKENIZER, QUANTIZED, FORMAT, CUSTOM_CODE, ARCHITECTURE, COPY, NAN_WEIGHTS, SHAPE, CHAT_TEMPLATE, DUPLICATE_HOTKEY, REMOVED, CHANGED, RETRY, FETCH) and a message with the figure. Rejections are data: the exit status is 0 unless the tool itself cannot work.

        Every text-model tensor must be exactly what config.json implies (SHAPE: a missing tensor or another shape; PARAMS: tensors the config does not explain, with the implied and the held parameter counts); this works from the safetensors headers alone.

        Before weights are set, --recheck-only asks again, for the models about to get weight, whether each is still public at its commit with the same files (a local directory is re-hashed instead): OK, REMOVED, CHANGED or RETRY (transient), nothing else repeated.

        EXAMPLE
          dl-fetch commitments.jsonl | dl-check --teacher-tokenizer teacher/ > checks.jsonl
          dl-check --recheck-only --only plan.jsonl manifests.jsonl > recheck.jsonl
        """)

    @Option(help: "Parameter limit.") var maxParams: Int64 = 5_300_000_000
    @Option(help: "Vocabulary size every model must have.") var vocabSize = 248_320
    @Option(help: "The teacher's tokenizer.json (or its directory): models must match it.") var teacherTokenizer: String?
    @Flag(help: "A chat template that differs from the teacher's is a rejection (default: a CHAT_TEMPLATE warning).")
    var requireChatTemplate = false
    @Option(help: "Relative per-tensor difference below which a model is a near copy of an earlier one.") var nearCopyThreshold = 0.005
    @Option(help: "Registry of weight identities and hotkeys across epochs (read, then rewritten atomically).") var registry: String?
    @OptionGroup var output: OutputOptions
    @Argument(help: "Manifests (JSON lines); '-' or none for stdin.") var manifests: String = "-"
    @Flag(help: "Ask the Hub again (or re-hash a local model) whether each model is still public, at its commit, with the same files: removed or private is REMOVED, changed is CHANGED, a transient failure is RETRY.")
    var recheck = false
    @Flag(help: "Only the integrity re-check (as --recheck), for models that already passed dl-check this epoch: OK, REMOVED, CHANGED or RETRY per model, no other check repeated.")
    var recheckOnly = false
    @Option(help: "Check only the models listed in this file (check verdicts, e.g. dl-judge plan's output), matched by uid, hotkey, repo and commit.")
    var only: String?
    @OptionGroup var retry: RetryOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if recheckOnly, registry != nil { throw ValidationError("--registry has no use with --recheck-only (nothing is recorded)") }
    }

    func run() throws {
        common.apply()
        var options = CheckOptions()
        options.maxParams = maxParams
        options.vocabSize = vocabSize
        options.nearCopyThreshold = nearCopyThreshold
        options.requireChatTemplate = requireChatTemplate
        if let teacherTokenizer { try options.useTeacherTokenizer(teacherTokenizer) }
        if recheck || recheckOnly {
            var o = FetchOptions()
            o.retry = retry.policy
            o.progress = false
            let hub = HubClient(config: HubConfig.fromEnvironment(), options: o)
            options.recheck = { hub.recheck($0) }
        }
        var run = CheckRun(options: options)
        run.registry = registry
        run.recheckOnly = recheckOnly
        run.only = only
        try run.run(manifests: manifests, out: output.out)
    }
}

Check.runMain()
