import Foundation

/// The one error type every stage reports: a single line naming the input and what is wrong.
///
/// `usage` errors exit with status 2, everything else with 1 (see `DistilTool.runMain` in DistilCLI).
public struct DistilError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable { case input, runtime, usage }
    public let kind: Kind
    public let message: String

    public init(_ message: String, kind: Kind = .input) {
        self.kind = kind
        self.message = message
    }

    /// An error about a named input ("prompts.jsonl:12: missing field 'text'").
    public static func input(_ name: String, _ what: String) -> DistilError {
        DistilError("\(name): \(what)", kind: .input)
    }

    public static func usage(_ what: String) -> DistilError { DistilError(what, kind: .usage) }

    public var description: String { message }
}
