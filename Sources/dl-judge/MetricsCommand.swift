import ArgumentParser
import DistilCLI
import DistilFormats
import DistilReport

struct MetricsCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Write an epoch's figures as Prometheus metrics (text format), atomically, for node_exporter's textfile collector.",
        discussion: """
        Reads the epoch folder (manifests, checks, verdict, state, timings.jsonl; whatever a failed epoch left) and writes the metrics listed in docs/FORMATS.md ("Metrics"): epoch block, success, seconds per stage, models committed / fetched / rejected by reason / scored, the king's uid and mean KL, teacher tokens per second, bytes fetched. The counter distil_epoch_runs_total is carried over from the file replaced. Name the file *.prom in the collector's directory.

        EXAMPLE
          dl-judge metrics --epoch /var/lib/distil/epoch-4200 --exit-status 0 --out /var/lib/node_exporter/textfile/distil.prom
        """)

    @Option(help: "The epoch folder (DIR/epoch-N).")
    var epoch: String
    @Option(help: "The pipeline's exit status (default: success iff the epoch has a verdict).")
    var exitStatus: Int?
    @Option(help: "The metrics file to write atomically (its counters are carried over); '-': stdout.")
    var out: String
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        if out == "-" {
            try writeFileAtomically("-", Array(Prometheus.render(try EpochMetrics.collect(epoch: epoch, exitStatus: exitStatus)).utf8))
        } else {
            try EpochMetrics.write(epoch: epoch, exitStatus: exitStatus, to: out)
        }
    }
}
