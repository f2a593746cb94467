import DistilFormats
import DistilTokenizer
import Foundation

extension CheckOptions {
    /// Takes the teacher's tokenizer (a tokenizer.json or its directory): its identity, the SHA-256
    /// of its file (a byte-identical model tokenizer is accepted without loading it) and the chat
    /// template beside it.
    public mutating func useTeacherTokenizer(_ path: String) throws {
        let where_ = TokenizerPath(path)
        teacherTokenizer = try Tokenizer.load(path: path)
        teacherTokenizerSHA256 = try? Hashing.sha256Hex(file: where_.file)
        teacherChatTemplate = Checker.chatTemplate(directory: where_.directory)
        Log.debug("teacher tokenizer \(where_.file): identity \(teacherTokenizer!.identity.semanticHash.prefix(12)), "
            + "chat template \(teacherChatTemplate == nil ? "none" : "found")")
    }
}

/// dl-check as one call: manifests in, one verdict per model out, the registry carried across epochs.
public struct CheckRun {
    public var options: CheckOptions
    /// The registry file (read, then rewritten atomically); nil: none kept.
    public var registry: String?
    /// Only the integrity re-check (dl-check --recheck-only).
    public var recheckOnly = false
    /// Check only the models listed in this file (check verdicts or a plan).
    public var only: String?

    public init(options: CheckOptions) { self.options = options }

    /// Reads the manifests at `manifests` ("-": stdin) and writes the verdicts to `out` (nil: stdout).
    public func run(manifests: String, out: String?) throws {
        var input = try JSONLReader<Manifest>(path: manifests).readAll()
        if let only { input = try CheckRun.select(input, listedIn: only, from: manifests == "-" ? "the input" : manifests) }
        let checker = Checker(options: options, registry: try registry.map { try Registry.load(path: $0) } ?? Registry())
        let verdicts = recheckOnly ? input.map(checker.recheckOnly) : checker.check(input)
        // The verdicts and the registry are placed together or not at all: both are written and
        // synced before either is renamed, so a full disk places neither. The verdicts go first: a
        // kill between the two renames leaves the registry as it was, and checking again gives the
        // same verdicts (the other order would check the models against their own registration).
        let file = try FileWriter(path: out)
        let w = JSONLWriter(file)
        let registryFile = try registry.map { try FileWriter(path: $0) }
        for v in verdicts {
            try w.write(v)
            Log.info("uid \(v.uid) \(v.repo): \(v.ok ? "ok" : v.reason.rawValue) \(v.message)")
        }
        try registryFile?.write(checker.registry.encoded())
        try file.sync()
        try registryFile?.sync()
        try w.close()
        try registryFile?.close()
    }

    /// A line of a listing: a uid and the model's identity (`ModelRef.Key`), read from the same flat
    /// fields every record that names a model has; nothing else of the line is needed.
    struct Listed: Decodable {
        var uid: Int
        var key: ModelRef.Key
        enum CodingKeys: String, CodingKey { case uid, hotkey, repo, revision, commit }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            uid = try c.decode(Int.self, forKey: .uid)
            let commit = try c.decodeIfPresent(String.self, forKey: .commit) ?? c.decodeIfPresent(String.self, forKey: .revision)
            key = ModelRef.Key(hotkey: try c.decode(String.self, forKey: .hotkey), repo: try c.decode(String.self, forKey: .repo),
                               commit: commit ?? "")
        }
    }

    /// The manifests of the models listed in `path` (check verdicts, a plan), matched by uid and
    /// identity (hotkey, repo, commit), in the listing's order; a listed model without a manifest is
    /// an error (the listing and the manifests are not of the same epoch).
    public static func select(_ manifests: [Manifest], listedIn path: String, from source: String) throws -> [Manifest] {
        var out: [Manifest] = []
        for l in try JSONLReader<Listed>(path: path).readAll() {
            guard let m = manifests.first(where: { $0.uid == l.uid && $0.model.key == l.key }) else {
                throw DistilError.input(path, "uid \(l.uid) (\(l.key.repo) at \(l.key.commit.isEmpty ? "no commit" : l.key.commit)) has no manifest in \(source)")
            }
            out.append(m)
        }
        Log.debug("\(path): \(out.count) of \(manifests.count) manifests listed")
        return out
    }
}
