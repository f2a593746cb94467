import ArgumentParser
import DistilCLI
import DistilEval
import DistilFormats
import DistilTokenizer

struct Inspect: DistilTool {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a teacher stream as JSON lines: the header, then each prompt with its top tokens per position.")

    @Option(help: "tokenizer.json or a directory with one, to add the continuation's text.") var tokenizer: String?
    @Option(help: "Top tokens shown per position.") var top = 5
    @Argument(help: "Teacher stream; '-' or none for stdin.") var stream: String = "-"
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply()
        let out = JSONLWriter(try FileWriter(path: nil))
        try TeacherInspect.run(stream: stream, tokenizer: try tokenizer.map { try Tokenizer.load(path: $0) }, top: top, into: out)
        try out.close()
    }
}
