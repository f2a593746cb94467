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
            failExit(e.kind == .usage ? 2 : 1)
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
                failExit(2)
            }
            Log.error(msg.replacingOccurrences(of: "Error: ", with: ""))
            failExit(1)
        }
    }

    /// A failed run ends at once: its temporaries are removed and its line is written, and nothing
    /// else is owed. exit() would run the libraries' destructors, and OpenBLAS's joins its worker
    /// threads, which under a memory limit too small for their buffers (a run the memory plan has
    /// just refused) retry their allocation forever: the refused run never exited.
    static func failExit(_ code: Int32) -> Never {
        Glibc._exit(code)
    }
}
