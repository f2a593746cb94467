import ArgumentParser
import DistilFormats
import Foundation

/// The shared entry point of every dl-* tool: parse flags, run, and turn every failure into
/// one line on stderr with the project's exit codes (0 ok, 1 input or runtime error, 2 usage).
public protocol DistilTool: ParsableCommand {}

extension DistilTool {
    public static func runMain() -> Never {
        signal(SIGPIPE, SIG_IGN)
        Log.tool = configuration.commandName ?? "distil"
        do {
            var command = try parseAsRoot()
            try command.run()
            Glibc.exit(0)
        } catch let e as DistilError {
            FileWriter.removePendingTemps()
            Log.error(e.message)
            Glibc.exit(e.kind == .usage ? 2 : 1)
        } catch {
            FileWriter.removePendingTemps()
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            // ArgumentParser's own usage errors (unknown flag, missing value, validation).
            let msg = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if code == .validationFailure {
                Log.error(msg.replacingOccurrences(of: "Error: ", with: ""))
                Log.writeStderr("Run '\(Log.tool) --help' for usage.\n")
                Glibc.exit(2)
            }
            Log.error(msg.replacingOccurrences(of: "Error: ", with: ""))
            Glibc.exit(1)
        }
    }
}
