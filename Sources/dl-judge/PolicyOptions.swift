import ArgumentParser
import DistilFormats
import DistilScore

/// The judge's rules, shared by `judge` and `plan` (both refuse a state written under another policy).
struct PolicyOptions: ParsableArguments {
    @Option(help: "The judge's policy file (docs/FORMATS.md, \"Judge policy\"; default: the README's rules).")
    var policy: String?
    @Option(help: "Relative margin a challenger must beat the king by (the default policy's epsilon rule; not with --policy). (default: 0.01)")
    var epsilon: Double?
    @Flag(help: "Judge a state written under another policy under this one (from now on); without it that is refused.")
    var acceptPolicyChange = false

    func validate() throws {
        if policy != nil, epsilon != nil { throw ValidationError("give --policy or --epsilon, not both (a policy file states its own rule)") }
        if let epsilon { guard epsilon.isFinite, epsilon >= 0, epsilon < 1 else { throw ValidationError("--epsilon must be in [0, 1)") } }
    }

    /// The policy the flags name.
    func load() throws -> JudgePolicy {
        var p = try policy.map { try JudgePolicy.load(path: $0) } ?? .default
        if let epsilon { p.dethrone = .epsilon(epsilon) }
        Log.debug("policy \(p.sha256.prefix(12))\(p.isDefault ? " (the default)" : "")")
        return p
    }

    func options(block: Int?) throws -> JudgeOptions {
        var o = JudgeOptions(policy: try load(), block: block)
        o.acceptPolicyChange = acceptPolicyChange
        return o
    }
}
