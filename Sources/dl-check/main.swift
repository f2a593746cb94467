import ArgumentParser
import DistilCheck
import DistilCLI
import DistilFormats
import DistilHub
import DistilTokenizer
import Foundation

struct Check: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-check",
        abstract: "Pre-check fetched models before any compute: size, dtypes, quantization, tokenizer, code, copies.",
        discussion: """
        Reads manifests (dl-fetch's JSON lines) and writes one verdict per model: ok, a stable reason code (PARAMS, VOCAB, TOKENIZER, QUANTIZED, FORMAT, CUSTOM_CODE, ARCHITECTURE, COPY, NAN_WEIGHTS, SHAPE, CHAT_TEMPLATE, DUPLICATE_HOTKEY, REMOVED, CHANGED, RETRY, FETCH) and a message with the figure. Rejections are data: the exit status is 0 unless the tool itself cannot work.

        EXAMPLE
          dl-fetch commitments.jsonl | dl-check --teacher-tokenizer teacher/ > checks.jsonl
        """)

    @Option(help: "Parameter limit.") var maxParams: Int64 = 5_300_000_000
    @Option(help: "Vocabulary size every model must have.") var vocabSize = 248_320
    @Option(help: "The teacher's tokenizer.json (or its directory): models must match it.") var teacherTokenizer: String?
    @Flag(help: "A chat template that differs from the teacher's is a rejection (default: a CHAT_TEMPLATE warning).")
    var requireChatTemplate = false
    @Option(help: "Relative per-tensor difference below which a model is a near copy of an earlier one.") var nearCopyThreshold = 0.005
    @Option(help: "Registry of weight identities and hotkeys across epochs (read, then rewritten atomically).") var registry: String?
    @Option(name: .shortAndLong, help: "Output file (default: stdout).") var out: String?
    @Argument(help: "Manifests (JSON lines); '-' or none for stdin.") var manifests: String = "-"
    @Flag(help: "Ask the Hub again (or re-hash a local model) whether each model is still public, at its commit, with the same files: removed or private is REMOVED, changed is CHANGED, a transient failure is RETRY.")
    var recheck = false
    @Option(help: "With --recheck: attempts per request on 429, 5xx and connection failures.") var attempts = RetryPolicy().attempts
    @Option(help: "With --recheck: longest Retry-After (seconds) honoured before the verdict is RETRY.") var maxWait = RetryPolicy().maxWait
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        var options = CheckOptions()
        options.maxParams = maxParams
        options.vocabSize = vocabSize
        options.nearCopyThreshold = nearCopyThreshold
        options.teacherTokenizer = try teacherTokenizer.map { try Tokenizer.load(path: $0) }
        if let t = teacherTokenizer {
            var isDir: ObjCBool = false
            let file = FileManager.default.fileExists(atPath: t, isDirectory: &isDir) && isDir.boolValue ? t + "/tokenizer.json" : t
            options.teacherTokenizerSHA256 = try? Hashing.sha256Hex(file: file)
        }
        options.requireChatTemplate = requireChatTemplate
        if let t = teacherTokenizer {
            var isDir: ObjCBool = false
            let dir = FileManager.default.fileExists(atPath: t, isDirectory: &isDir) && isDir.boolValue ? t : (t as NSString).deletingLastPathComponent
            options.teacherChatTemplate = Checker.chatTemplate(directory: dir)
        }
        if recheck {
            var o = FetchOptions()
            o.retry.attempts = max(1, attempts)
            o.retry.maxWait = maxWait
            o.progress = false
            let hub = HubClient(config: HubConfig.fromEnvironment(), options: o)
            options.recheck = { hub.recheck($0) }
        }
        let input = try JSONLReader<Manifest>(path: manifests).readAll()
        let checker = Checker(options: options, registry: try registry.map { try Registry.load(path: $0) } ?? Registry())
        let verdicts = checker.check(input)
        let w = JSONLWriter(try FileWriter(path: out))
        for v in verdicts {
            try w.write(v)
            Log.info("uid \(v.uid) \(v.repo): \(v.ok ? "ok" : v.reason) \(v.message)")
        }
        try w.close()
        if let registry { try checker.registry.save(path: registry) }
    }
}

Check.runMain()
