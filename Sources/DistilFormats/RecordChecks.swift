import Foundation

/// The ranges of the records' values that their Swift types cannot say (see docs/FORMATS.md):
/// a uid is a subnet slot (0...65535, the chain's u16), a block number and a size are not negative.
/// `decodeJSONLine` refuses a record that breaks one, naming the field.
extension Commitment: CheckedRecord {
    public func invalidField() -> (field: String, problem: String)? {
        RecordRules.uid(uid) ?? RecordRules.block(block) ?? (repo.isEmpty ? ("repo", "empty") : nil)
    }
}

extension ModelRef {
    /// The uid and block rules, for every record that holds a model.
    public func invalidField() -> (field: String, problem: String)? { RecordRules.uid(uid) ?? RecordRules.block(block) }
}

extension Manifest: CheckedRecord {
    public func invalidField() -> (field: String, problem: String)? {
        if let bad = model.invalidField() { return bad }
        for (i, f) in files.enumerated() {
            if f.size < 0 { return ("files[\(i)].size", "\(f.size) is negative") }
            if let p = RepoPath.problem(f.name) { return ("files[\(i)].name", "unsafe file name '\(f.name)' (\(p))") }
        }
        // A local model is re-hashed from its committed directory before weights are set: the
        // directory that was checked and scored must be that one.
        if model.commit == "local", let path, RepoPath.localDirectory(of: path) != RepoPath.localDirectory(of: model.repo) {
            return ("path", "'\(path)' is not the committed directory '\(RepoPath.localDirectory(of: model.repo))'")
        }
        return nil
    }
}

extension CheckVerdict: CheckedRecord {
    public func invalidField() -> (field: String, problem: String)? { model.invalidField() }
}

extension KLRecord: CheckedRecord {
    public func invalidField() -> (field: String, problem: String)? {
        if let u = uid, let bad = RecordRules.uid(u) { return bad }
        if let b = block, let bad = RecordRules.block(b) { return bad }
        return n_tokens < 0 ? ("n_tokens", "\(n_tokens) is negative") : nil
    }
}

extension PromptRecord: CheckedRecord {
    public func invalidField() -> (field: String, problem: String)? {
        if let b = block, let bad = RecordRules.block(b) { return bad }
        if let i = tokens?.firstIndex(where: { $0 < 0 }) { return ("tokens[\(i)]", "\(tokens![i]) is negative") }
        return nil
    }
}

enum RecordRules {
    static func uid(_ u: Int) -> (field: String, problem: String)? {
        (0...65535).contains(u) ? nil : ("uid", "\(u) is not a uid (0...65535)")
    }
    static func block(_ b: Int) -> (field: String, problem: String)? {
        b >= 0 ? nil : ("block", "\(b) is negative")
    }
}

/// The file-name rule of model repositories (dl-fetch refuses other names before downloading, and
/// every reader of a manifest applies it again): a relative path of ordinary components.
public enum RepoPath {
    /// Why `path` is not a safe repository file name, or nil when it is.
    public static func problem(_ path: String) -> String? {
        guard !path.isEmpty, path.utf8.count <= 1024 else { return "file name of \(path.utf8.count) bytes" }
        guard !path.hasPrefix("/"), !path.contains("\\") else { return "absolute or backslash" }
        guard path.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else { return "control characters" }
        for c in path.split(separator: "/", omittingEmptySubsequences: false) {
            guard !c.isEmpty, c != ".", c != "..", c.utf8.count <= 255 else { return "would leave the snapshot folder" }
        }
        return nil
    }

    /// The directory a local commitment's `repo` names (a path or a file:// URL), standardized:
    /// what dl-fetch records as the manifest's `path`.
    public static func localDirectory(of repo: String) -> String {
        var p = repo
        if p.hasPrefix("file://") { p.removeFirst(7) }
        return URL(fileURLWithPath: p).standardizedFileURL.path
    }
}
