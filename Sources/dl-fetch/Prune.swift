import ArgumentParser
import DistilCLI
import DistilFormats
import DistilHub
import Foundation

struct PruneCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove from the Hub cache the snapshots no epoch needs again, and old epoch folders.",
        discussion: """
        A snapshot the validator brought in (named in the judge's state, a commitment, or a manifest of an epoch folder still on disk) may go once it is scored and is not the king (scores are permanent), or once it is no longer committed. Never removed: the king, every --keep, a committed model not yet scored, and anything in the cache the validator did not bring (unless --remove-unlisted). Order: no longer committed (oldest first), then scored (earliest scored first); with --min-free, removal stops as soon as that many bytes are free. With --work and --keep-epochs K, all but the last K epoch folders go, and what pipelines/reproduce.sh needs to re-score those K stays: their folders and the snapshots their plan.jsonl scored. One JSON line per removal, then a summary (docs/FORMATS.md, "Prune").

        EXAMPLES
          dl-fetch prune --state /var/lib/distil/state.json --commitments commitments.jsonl \\
              --keep ~/.cache/huggingface/hub/models--Qwen--Qwen3.5-35B-A3B/snapshots/COMMIT --min-free 500G
          dl-fetch prune --work /var/lib/distil --keep-epochs 5 --state /var/lib/distil/state.json --dry-run
        """)

    @Option(help: "Cache folder (default: from HF_HUB_CACHE / HF_HOME).") var cacheDir: String?
    @Option(help: "The judge's state.json (the king; every scored model).") var state: String?
    @Option(help: "The current commitments (JSON lines); repeatable.") var commitments: [String] = []
    @Option(help: "Never remove this: REPO, REPO@COMMIT or a snapshot directory (the teacher); repeatable.") var keep: [String] = []
    @Option(help: "Stop removing once this many bytes are free (suffixes K, M, G, T: powers of 1024).") var minFree: String?
    @Flag(help: "Also remove snapshots the validator did not bring in (the cache is the validator's alone).") var removeUnlisted = false
    @Option(help: "The pipeline's working directory (its epoch folders).") var work: String?
    @Option(help: "With --work: keep the last K epoch folders, remove the older ones.") var keepEpochs: Int?
    @Flag(help: "Say what would be removed; remove nothing.") var dryRun = false
    @OptionGroup var output: OutputOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if let keepEpochs {
            guard keepEpochs >= 1 else { throw ValidationError("--keep-epochs must be at least 1") }
            guard work != nil else { throw ValidationError("--keep-epochs needs --work") }
        }
        if let minFree, Prune.parseBytes(minFree) == nil { throw ValidationError("--min-free: '\(minFree)' is not a byte count (e.g. 500G)") }
    }

    func run() throws {
        common.apply()
        var o = PruneOptions(cacheDir: cacheDir ?? HubConfig.fromEnvironment().cacheDir)
        o.state = state; o.commitments = commitments; o.keep = keep
        o.minFree = minFree.flatMap(Prune.parseBytes)
        o.removeUnlisted = removeUnlisted; o.work = work; o.keepEpochs = keepEpochs; o.dryRun = dryRun
        let w = JSONLWriter(try FileWriter(path: output.out))
        try Prune.run(o) { r in
            if r.kind != "summary" { Log.info("\(r.dry_run == true ? "would remove" : "removed") \(r.kind) \(r.path ?? "") (\(r.reason ?? ""), \(r.bytes ?? 0) bytes)") }
            try w.write(r)
        }
        try w.close()
    }
}
