import ArgumentParser
import DistilCLI
import DistilFormats
import DistilScore

struct PolicyCommand: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Print a judge policy in its canonical form with its SHA-256 (the hash verdicts and states record).",
        discussion: """
        Without --policy: the default policy (the README's rules). With --fields: NAME=VALUE lines of the epoch's shape (prompts, max_new_tokens, temperature, max_params, vocab_size), for a shell script to read.

        EXAMPLE
          dl-judge policy --policy policy.json
          dl-judge policy --policy policy.json --fields | while IFS== read -r k v; do echo "$k is $v"; done
        """)

    @Option(help: "The policy file (default: the default policy).")
    var policy: String?
    @Flag(help: "Print NAME=VALUE lines of the epoch's shape instead.")
    var fields = false

    func run() throws {
        let p = try policy.map { try JudgePolicy.load(path: $0) } ?? .default
        let w = try FileWriter(path: nil)
        if fields {
            try w.write(p.shapeFields.map { "\($0.0)=\($0.1)\n" }.joined())
        } else {
            try w.write(String(decoding: p.canonicalBytes, as: UTF8.self) + "\n")
            try w.write("sha256 \(p.sha256)\(p.isDefault ? " (the default policy)" : "")\n")
        }
        try w.close()
    }
}
