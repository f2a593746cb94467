import ArgumentParser
import DistilCLI
import DistilFormats
import DistilReport

struct ReportCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Draw an epoch as one self-contained HTML page (inline SVG and CSS, no script, nothing fetched).",
        discussion: """
        Reads an epoch folder as pipelines/epoch.sh leaves it (verdict.json, checks.jsonl, recheck.jsonl, kl/*.jsonl, prompts.jsonl, state.json; the sibling epoch-N folders' verdicts give the crown's history), or the same files named one by one. Sections: leaderboard with 95% CIs and the dethrone threshold, the king against each challenger prompt by prompt with the paired test, the KL distribution (per prompt, per position, top-1 agreement), a per-prompt table in several orderings, the crown's history, the pre-checks. Light and dark schemes, printable.

        EXAMPLE
          dl-judge report --epoch /var/lib/distil/epoch-4200 --out /var/lib/distil/epoch-4200/report.html
          dl-judge report --verdict verdict.json --checks checks.jsonl --state state.json --prompts prompts.jsonl kl/*.jsonl > report.html
        """)

    @Option(help: "An epoch folder (DIR/epoch-N) to read every input from.")
    var epoch: String?
    @Option(help: "The verdict (verdict.json), without --epoch.")
    var verdict: String?
    @Option(help: "dl-check's verdicts (JSON lines), without --epoch.")
    var checks: String?
    @Option(help: "The integrity re-check verdicts (JSON lines), without --epoch.")
    var recheck: String?
    @Option(help: "The prompts (JSON lines), without --epoch.")
    var prompts: String?
    @Option(help: "The judge's state after the epoch, without --epoch.")
    var state: String?
    @Option(help: "A working directory whose epoch-N/verdict.json files give the history, without --epoch.")
    var history: String?
    @OptionGroup var output: OutputOptions
    @OptionGroup var common: CommonOptions
    @Argument(help: "KL record files (JSON lines, zstd ok), without --epoch.")
    var kl: [String] = []

    func validate() throws {
        if epoch != nil, verdict != nil || checks != nil || recheck != nil || prompts != nil || state != nil || history != nil || !kl.isEmpty {
            throw ValidationError("give either --epoch DIR or the files one by one, not both")
        }
        if epoch == nil, verdict == nil { throw ValidationError("give --epoch DIR or --verdict FILE") }
    }

    func run() throws {
        common.apply()
        let input = try epoch.map { try ReportInput.load(epoch: $0) }
            ?? ReportInput.load(verdict: verdict!, checks: checks, recheck: recheck, kl: kl, prompts: prompts, state: state, historyRoot: history)
        // "-" is stdout; a file appears only when complete.
        try writeFileAtomically(output.out ?? "-", Array(EpochReport.render(input).utf8))
    }
}
