import ArgumentParser
import DistilCLI
import DistilFormats
import DistilReport
import Foundation

struct MetricsCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Write an epoch's figures as Prometheus metrics (text format), atomically, for node_exporter's textfile collector.",
        discussion: """
        Reads the epoch folder (manifests, checks, verdict, state, timings.jsonl; whatever a failed epoch left) and writes the metrics listed in docs/FORMATS.md ("Metrics"): epoch block, success, seconds per stage, models committed / fetched / rejected by reason / scored, the king's uid and mean KL, teacher tokens per second, bytes fetched. The counter distil_epoch_runs_total is carried over from the file replaced. Name the file *.prom in the collector's directory. With --validator-exit-status (and --validator-stage NAME=STATUS per stage) pipelines/validator.sh's run is added; without --epoch the file's last epoch figures stand.

        EXAMPLE
          dl-judge metrics --epoch /var/lib/distil/epoch-4200 --exit-status 0 --out /var/lib/node_exporter/textfile/distil.prom
          dl-judge metrics --validator-exit-status 0 --validator-stage block=skipped --out /var/lib/node_exporter/textfile/distil.prom
        """)

    @Option(help: "The epoch folder (DIR/epoch-N); absent: no epoch ran (the file's last epoch figures stand).")
    var epoch: String?
    @Option(help: "The epoch pipeline's exit status (default: success iff the epoch has a verdict).")
    var exitStatus: Int?
    @Option(help: "pipelines/validator.sh's exit status: adds the validator's metrics.")
    var validatorExitStatus: Int?
    @Option(help: "A validator stage's outcome, NAME=ok|failed|refused|skipped (repeatable, in order).")
    var validatorStage: [String] = []
    @Option(help: "The metrics file to write atomically (its counters are carried over); '-': stdout.")
    var out: String
    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard epoch != nil || validatorExitStatus != nil else { throw ValidationError("give --epoch DIR, --validator-exit-status N, or both") }
        if validatorExitStatus == nil, !validatorStage.isEmpty { throw ValidationError("--validator-stage goes with --validator-exit-status") }
        for s in validatorStage {
            let parts = s.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty, ["ok", "failed", "refused", "skipped"].contains(parts[1]) else {
                throw ValidationError("--validator-stage wants NAME=ok|failed|refused|skipped, got '\(s)'")
            }
        }
    }

    func run() throws {
        common.apply()
        let validator = validatorExitStatus.map { code in
            EpochMetrics.ValidatorRun(exitStatus: code, stages: validatorStage.map { s in
                let p = s.split(separator: "=", maxSplits: 1)
                return (String(p[0]), String(p[1]))
            })
        }
        if out == "-" {
            var families = try epoch.map { try EpochMetrics.collect(epoch: $0, exitStatus: exitStatus) } ?? []
            if let validator { families += EpochMetrics.validatorFamilies(validator, previous: [], now: Date().timeIntervalSince1970) }
            try writeFileAtomically("-", Array(Prometheus.render(families).utf8))
        } else {
            try EpochMetrics.write(epoch: epoch, exitStatus: exitStatus, validator: validator, to: out)
        }
    }
}
