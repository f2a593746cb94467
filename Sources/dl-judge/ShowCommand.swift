import ArgumentParser
import DistilCLI
import DistilScore

struct ShowCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the judge's state: a table, or the canonical JSON with --json.",
        discussion: """
        EXAMPLE
          dl-judge show --state state.json
          dl-judge show --state state.json --json | jq '.king'
        """)

    @Option(help: "The judge's state file.")
    var state: String
    @Flag(help: "Print the state as canonical JSON (for jq).")
    var json = false

    func run() throws {
        try JudgeRun.show(state: state, json: json)
    }
}
