import ArgumentParser
import DistilCLI
import DistilFormats
import DistilHub
import Foundation

struct FetchCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch committed models and write one manifest per commitment (the default subcommand).",
        discussion: """
        Reads commitment records (JSON lines) from files or stdin, or fetches one model named on the command line. Models on the Hugging Face Hub go into huggingface_hub's own cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub), so a cache made by either tool serves the other; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE are honoured. Every file is verified against the Hub's SHA-256 (LFS) or git blob id before it is placed; partial downloads resume. A repo that is a local directory or a file:// URL is read in place.

        A model that cannot be fetched gets a manifest with its outcome: not_found, private or changed (disqualifying), transient (rate limits, 5xx, timeouts, a body that failed verification: retried in a later epoch, never disqualifying) or error (refused: an unsafe file name, too large). That is data, and the exit status stays 0. A write into the cache that fails (a full disk, a quota, an I/O error) is the validator's trouble, not the model's: dl-fetch stops with exit 1 and one line naming the file.

        EXAMPLES
          dl-fetch commitments.jsonl > manifests.jsonl
          dl-fetch --metadata-only --headers-dir work/headers commitments.jsonl | dl-check --teacher-tokenizer teacher/
          dl-fetch --model Qwen/Qwen3-0.6B --revision main | jq .outcome
          HF_HUB_OFFLINE=1 dl-fetch commitments.jsonl      # serve from the cache only
        """)

    @Option(help: "Fetch this one model (Hub repo id, directory or file:// URL) instead of reading commitments.") var model: String?
    @OptionGroup var named: NamedModelOptions
    @Flag(help: "Fetch only the listing, the small files and each safetensors header (ranged reads): enough for dl-check.")
    var metadataOnly = false
    @Option(help: "Where --metadata-only keeps safetensors headers (default: $XDG_CACHE_HOME/distil/headers).") var headersDir: String?
    @Option(help: "Concurrent transfers.") var parallel = 4
    @Option(help: "Ranged connections for one large file (32 MB ranges; helps where a CDN limits each connection).")
    var connections = FetchOptions().connectionsPerFile
    @Option(help: "Files to download, as comma-separated globs on the base name (the manifest lists every file).")
    var include = FetchOptions().include.joined(separator: ",")
    @Option(help: "Refuse a model whose files to download add up to more than this many bytes.") var maxBytes: Int64 = FetchOptions().maxTotalBytes
    @OptionGroup var retry: RetryOptions
    @Option(help: "Cache folder (default: from HF_HUB_CACHE / HF_HOME).") var cacheDir: String?
    @Flag(help: "Send no request: serve from the cache (as HF_HUB_OFFLINE=1).") var offline = false
    @Option(help: "Write what this run transferred (requests and bytes received, per model) to this JSON file.") var stats: String?
    @OptionGroup var output: OutputOptions
    @Argument(help: "Commitment records (JSON lines); '-' or none for stdin.") var commitments: [String] = []
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard (1...32).contains(parallel) else { throw ValidationError("--parallel must be in 1...32") }
        guard (1...16).contains(connections) else { throw ValidationError("--connections must be in 1...16") }
        guard maxBytes > 0 else { throw ValidationError("--max-bytes must be positive") }
    }

    func run() throws {
        common.apply()
        let list = try model.map { [Commitment(uid: named.uid ?? 0, hotkey: named.hotkey ?? "local", block: named.block ?? 0,
                                               repo: $0, revision: named.revision)] }
            ?? FetchRun.readCommitments(commitments)
        var config = HubConfig.fromEnvironment()
        if let cacheDir { config.cacheDir = cacheDir }
        if offline { config.offline = true }
        var o = FetchOptions()
        o.metadataOnly = metadataOnly
        o.parallel = parallel
        o.connectionsPerFile = connections
        o.include = include.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        o.maxTotalBytes = maxBytes
        o.retry = retry.policy
        o.progress = !common.quiet
        o.headersDir = headersDir ?? FetchRun.defaultHeadersDir()
        let w = JSONLWriter(try FileWriter(path: output.out))
        let transferred = try FetchRun(config: config, options: o).run(list, into: w)
        // The statistics first: if they cannot be written the run fails before its manifests are placed.
        if let stats {
            let s = JSONLWriter(try FileWriter(path: stats))
            try s.write(transferred)
            try s.close()
        }
        try w.close()
    }
}
