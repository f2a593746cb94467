import DistilFormats
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One file of a repo listing: its path in the repo, size, and content ids. `blobId` is the git
/// blob SHA-1; LFS files also have the SHA-256 of their content. The cache names a blob by the
/// ETag the Hub serves: the SHA-256 for LFS files, the git blob id otherwise.
public struct RepoFile: Sendable, Equatable {
    public var path: String
    public var size: Int64
    public var blobId: String?
    public var lfsSHA256: String?
    public var etag: String? { lfsSHA256 ?? blobId }
    public init(path: String, size: Int64, blobId: String?, lfsSHA256: String?) {
        self.path = path; self.size = size; self.blobId = blobId; self.lfsSHA256 = lfsSHA256
    }
}

/// The huggingface_hub cache layout for one repo:
///
///     <cache>/models--org--name/refs/<revision>            the commit a branch or tag pointed to
///     <cache>/models--org--name/blobs/<etag>               content, named by SHA-256 (LFS) or git blob id
///     <cache>/models--org--name/blobs/<etag>.incomplete    while downloading
///     <cache>/models--org--name/snapshots/<commit>/<path>  relative symlink to ../../blobs/<etag>
///     <cache>/models--org--name/trees/<commit>.json        the listing (huggingface_hub ≥ 2.x)
///     <cache>/.locks/models--org--name/<etag>.lock         flock(2), shared with huggingface_hub
public struct RepoCache {
    public let root: String
    public let repo: RepoRef
    public var folder: String { root + "/" + repo.folderName }

    public init(root: String, repo: RepoRef) { self.root = root; self.repo = repo }

    public func blob(_ etag: String) -> String { folder + "/blobs/" + etag }
    public func snapshot(_ commit: String) -> String { folder + "/snapshots/" + commit }
    public func ref(_ revision: String) -> String { folder + "/refs/" + revision }
    public func tree(_ commit: String) -> String { folder + "/trees/" + commit + ".json" }
    public func lock(_ etag: String) -> String { root + "/.locks/" + repo.folderName + "/" + etag + ".lock" }

    /// A repo file name is untrusted: it must be a relative path of ordinary components that
    /// stays inside the snapshot folder.
    public static func validate(path: String) throws {
        if let p = RepoPath.problem(path) {
            throw HubFailure.refused(p.hasPrefix("file name of") ? p : "unsafe file name '\(escaped(path))' (\(p))")
        }
    }

    /// An ETag used as a blob file name: 40 or 64 lower-case hex digits, nothing else.
    public static func validate(etag: String) -> Bool {
        (etag.utf8.count == 40 || etag.utf8.count == 64)
            && etag.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    static func escaped(_ s: String) -> String {
        String(s.unicodeScalars.prefix(200).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
    }

    /// The commit a revision resolves to from the cache alone (a commit hash is itself).
    public func cachedCommit() -> String? {
        if repo.isCommit { return repo.revision }
        guard let b = try? readFile(ref(repo.revision), limit: 256) else { return nil }
        let c = String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return RepoRef.isCommitHash(c) ? c : nil
    }

    /// The listing huggingface_hub saved for a commit (trees/<commit>.json, format_version 1).
    public func cachedTree(_ commit: String) -> [RepoFile]? {
        guard let bytes = try? readFile(tree(commit), limit: 64 << 20),
              let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let version = obj["format_version"] as? NSNumber, version.intValue == 1,
              let files = obj["files"] as? [String: Any], files.count <= HubClient.maxFiles
        else { return nil }
        var out: [RepoFile] = []
        for (path, v) in files {
            guard let e = v as? [String: Any], let size = (e["size"] as? NSNumber)?.int64Value, size >= 0,
                  (try? RepoCache.validate(path: path)) != nil else { return nil }
            let blob = e["blob_id"] as? String
            let sha = e["lfs_sha256"] as? String
            if let blob, !RepoCache.validate(etag: blob) { return nil }
            if let sha, !(sha.utf8.count == 64 && RepoCache.validate(etag: sha)) { return nil }
            out.append(RepoFile(path: path, size: (e["lfs_size"] as? NSNumber)?.int64Value ?? size, blobId: blob, lfsSHA256: sha))
        }
        return out.sorted { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
    }

    /// Writes trees/<commit>.json the way huggingface_hub does, so it can reuse our listing.
    public func saveTree(_ commit: String, _ files: [RepoFile]) throws {
        var entries: [String: Any] = [:]
        for f in files {
            var e: [String: Any] = ["size": f.size, "blob_id": f.blobId ?? NSNull()]
            if let s = f.lfsSHA256 { e["lfs_sha256"] = s; e["lfs_size"] = f.size }
            entries[f.path] = e
        }
        let data = try JSONSerialization.data(withJSONObject: ["format_version": 1, "files": entries],
                                              options: [.sortedKeys, .prettyPrinted])
        try makeDirs((tree(commit) as NSString).deletingLastPathComponent)
        try writeFileAtomically(tree(commit), Array(data))
    }

    /// Records that `revision` pointed at `commit` (refs/<revision>), as huggingface_hub does.
    public func saveRef(_ commit: String) throws {
        guard !repo.isCommit else { return }
        let path = ref(repo.revision)
        try makeDirs((path as NSString).deletingLastPathComponent)
        try writeFileAtomically(path, Array(commit.utf8))
    }

    /// True when the snapshot entry for `file` is exactly our symlink to its blob and the blob is
    /// the one that was verified (CacheIntegrity.swift); anything else is looked at under the lock.
    public func isCached(_ file: RepoFile, commit: String) -> Bool {
        linkIsExact(file, commit: commit) && hasValidStamp(file)
    }

    /// Points snapshots/<commit>/<path> at blobs/<etag> with a relative symlink, atomically (an
    /// entry that was a file, a dangling link or a link elsewhere is replaced).
    public func link(_ file: RepoFile, commit: String) throws {
        guard let etag = file.etag else { throw HubFailure.refused("\(file.path): no blob id") }
        let dst = snapshot(commit) + "/" + file.path
        let target = RepoCache.linkTarget(file.path, etag: etag)
        try makeDirs((dst as NSString).deletingLastPathComponent)
        let tmp = dst + ".distil-link-\(getpid())"
        unlink(tmp)
        guard symlink(target, tmp) == 0 else { throw DistilError.input(dst, "cannot create symlink: \(String(cString: strerror(errno)))") }
        guard rename(tmp, dst) == 0 else {
            let e = errno; unlink(tmp)
            throw DistilError.input(dst, "cannot place symlink: \(String(cString: strerror(e)))")
        }
    }

    /// Runs `body` holding the blob's lock (the same lock file huggingface_hub's filelock uses).
    public func withLock<T>(_ etag: String, _ body: () throws -> T) throws -> T {
        let path = lock(etag)
        try makeDirs((path as NSString).deletingLastPathComponent)
        // Group-writable, as huggingface_hub's WeakFileLock creates them (mode 0o664, whatever the
        // umask), so validators sharing a cache through a group can all take the lock.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o664)
        guard fd >= 0 else { throw DistilError.input(path, "cannot open lock: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 0o777) != 0o664 { _ = fchmod(fd, 0o664) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw DistilError.input(path, "cannot lock: \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

func makeDirs(_ path: String) throws {
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    catch { throw DistilError.input(path, "cannot create directory: \(error.localizedDescription)") }
}
