import ArgumentParser
import DistilCLI
import DistilFormats
import DistilHub
import Foundation

struct Fetch: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "dl-fetch",
        abstract: "Fetch committed models and write one manifest per commitment (files, sizes, SHA-256).",
        discussion: """
        Reads commitment records (JSON lines) from files or stdin, or fetches one model named on the command line. A repo that is a local directory or a file:// URL is read in place. A model that cannot be fetched gets a manifest with its outcome (not_found, private, changed, transient, error): that is data, and the exit status stays 0.

        EXAMPLES
          dl-fetch commitments.jsonl > manifests.jsonl
          dl-fetch --model ./my-model | dl-check --teacher-tokenizer teacher/
        """)

    @Option(help: "Fetch this one model (a directory or file:// URL) instead of reading commitments.") var model: String?
    @Option(help: "With --model: the revision.") var revision: String?
    @Option(help: "With --model: the uid recorded.") var uid = 0
    @Option(help: "With --model: the hotkey recorded.") var hotkey = "local"
    @Option(help: "With --model: the commitment block recorded.") var block = 0
    @Option(name: .shortAndLong, help: "Output file (default: stdout).") var out: String?
    @Argument(help: "Commitment records (JSON lines); '-' or none for stdin.") var commitments: [String] = []
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        var list: [Commitment] = []
        if let model {
            list = [Commitment(uid: uid, hotkey: hotkey, block: block, repo: model, revision: revision)]
        } else {
            for path in commitments.isEmpty ? ["-"] : commitments { list += try JSONLReader<Commitment>(path: path).readAll() }
        }
        let w = JSONLWriter(try FileWriter(path: out))
        for c in list {
            let m: Manifest
            if LocalFetcher.isLocal(c.repo) {
                m = LocalFetcher.fetch(c)
            } else {
                m = Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: "transient",
                             message: "\(c.repo): fetching from the Hub is not available in this build")
            }
            Log.info("uid \(c.uid) \(c.repo): \(m.outcome)\(m.message.map { " (\($0))" } ?? "")")
            try w.write(m)
        }
        try w.close()
    }
}

Fetch.runMain()
