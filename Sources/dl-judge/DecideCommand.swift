import ArgumentParser
import DistilCLI
import DistilFormats
import DistilReport
import DistilScore

struct DecideCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "decide",
        abstract: "Say in one line whether a model would take the crown, by how much, with the paired test's p (pipelines/miner-check.sh).",
        discussion: """
        Prints "would take the crown, by X% below the king's mean KL (...), p = P" or "would not take the crown, ..." for the uid in the verdict. Exits 0 either way (and 1 when the uid was not scored).

        EXAMPLE
          dl-judge decide --verdict verdict.json --uid 2
        """)

    @Option(help: "The verdict (verdict.json).")
    var verdict: String
    @Option(help: "The model's uid in the verdict.")
    var uid: Int
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        let (_, line) = try Decision.describe(try decodeJSONFile(Verdict.self, path: verdict), uid: uid)
        try writeFileAtomically("-", Array((line + "\n").utf8))
    }
}
