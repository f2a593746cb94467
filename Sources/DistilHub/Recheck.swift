import DistilFormats
import Foundation

extension HubClient {
    /// The integrity re-check before weights are set: is the model still where it was fetched
    /// from, public, at the same commit, with the same files and hashes? Returns a fetch outcome
    /// (ok, not_found, private, changed, transient) and a message naming the difference.
    /// This is a question about what the Hub holds now, so the cache never answers it: with
    /// HF_HUB_OFFLINE set the outcome is "transient" (RETRY), never a pass.
    public func recheck(_ m: Manifest) -> (outcome: FetchOutcome, message: String?) {
        if LocalFetcher.isLocal(m.repo) {
            let now = LocalFetcher.fetch(m.commitment, progress: false)
            guard now.outcome == .ok else { return (now.outcome, now.message) }
            return HubClient.compare(m, commit: now.commit ?? "local", files: now.files)
        }
        do {
            let repo = try RepoRef(m.repo, revision: m.revision)
            let (commit, files) = try listing(repo)
            return HubClient.compare(m, commit: commit, files: files.map { ManifestFile(name: $0.path, size: $0.size, sha256: $0.lfsSHA256) })
        } catch let f as HubFailure {
            return (f.outcome == .error ? .changed : f.outcome, f.description)
        } catch {
            return (.transient, "\(m.repo): \(error)")
        }
    }

    /// Same commit, and the same names, sizes and SHA-256 values (where listed) as the manifest.
    static func compare(_ m: Manifest, commit: String, files: [ManifestFile]) -> (outcome: FetchOutcome, message: String?) {
        if let was = m.commit, was != commit {
            return (.changed, "\(m.repo): now at commit \(commit.prefix(12)), fetched at \(was.prefix(12))")
        }
        let before = Dictionary(m.files.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(files.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in Set(before.keys).union(after.keys).sorted() {
            guard let a = before[name] else { return (.changed, "\(m.repo): \(name) was added") }
            guard let b = after[name] else { return (.changed, "\(m.repo): \(name) was removed") }
            if a.size != b.size || (a.sha256 != nil && b.sha256 != nil && a.sha256 != b.sha256) {
                return (.changed, "\(m.repo): \(name) changed")
            }
        }
        return (.ok, nil)
    }
}
