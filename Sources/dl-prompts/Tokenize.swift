import ArgumentParser
import DistilCLI
import DistilFormats
import DistilTokenizer

struct Tokenize: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "tokenize", abstract: "Add \"tokens\" to prompt records (stdin → stdout) with a tokenizer.json.")
    @Option(help: "tokenizer.json or a model directory with one.") var tokenizer: String
    @Argument(help: "Prompt records; '-' or none for stdin.") var input: String = "-"
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        let tok = try Tokenizer.load(path: tokenizer)
        let r = try JSONLReader<PromptRecord>(path: input)
        let w = JSONLWriter(try FileWriter(path: nil))
        while var p = try r.next() {
            p.tokens = tok.encode(p.text)
            try w.write(p)
        }
        try w.close()
    }
}
