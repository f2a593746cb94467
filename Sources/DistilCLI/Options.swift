import ArgumentParser
import DistilFormats
import DistilHub
import Foundation

// Flag groups several tools share (`@OptionGroup var x: Group`): each flag is declared, defaulted
// and validated once, and hands the library its options value.

/// Flags every tool shares.
public struct CommonOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Only errors on stderr.")
    public var quiet = false
    @Flag(name: .shortAndLong, help: "More detail on stderr (what each stage decided, and why).")
    public var verbose = false

    public init() {}

    public func apply() {
        Log.quiet = quiet
        Log.verbose = verbose && !quiet
    }
}

/// `-o/--out`: where a tool writes its one output (default stdout; a file appears only when complete).
public struct OutputOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "Output file (default: stdout).")
    public var out: String?

    public init() {}
}

/// The engine's compute threads (dl-teacher, dl-kl).
public struct ComputeOptions: ParsableArguments {
    @Option(help: "Compute threads (default: all cores).")
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init() {}

    public func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
    }
}

/// How hard to try a Hub request (dl-fetch, and dl-check's integrity re-check).
public struct RetryOptions: ParsableArguments {
    @Option(help: "Attempts per request on 429, 5xx and connection failures.")
    public var attempts = RetryPolicy().attempts
    @Option(help: "Longest Retry-After (seconds) honoured; a longer one makes the outcome transient (RETRY).")
    public var maxWait = RetryPolicy().maxWait

    public init() {}

    public func validate() throws {
        guard (1...20).contains(attempts) else { throw ValidationError("--attempts must be in 1...20") }
        guard maxWait >= 0 else { throw ValidationError("--max-wait must be >= 0") }
    }

    public var policy: RetryPolicy {
        var p = RetryPolicy()
        p.attempts = attempts
        p.maxWait = maxWait
        return p
    }
}

/// What to record of a model named on the command line (`--model`) rather than by a commitment
/// or a check verdict (dl-fetch, dl-kl).
public struct NamedModelOptions: ParsableArguments {
    @Option(help: "With --model: the uid recorded.")
    public var uid: Int?
    @Option(help: "With --model: the hotkey recorded.")
    public var hotkey: String?
    @Option(help: "With --model: the commitment block recorded.")
    public var block: Int?
    @Option(help: "With --model: the revision (branch, tag or commit) fetched or recorded.")
    public var revision: String?

    public init() {}

    /// The model the flags name, at `repo`: nil unless --uid, --hotkey and --block are all given.
    public func ref(repo: String) -> ModelRef? {
        guard let uid, let hotkey, let block else { return nil }
        return ModelRef(uid: uid, hotkey: hotkey, repo: repo, revision: revision, commit: nil, block: block)
    }
}
