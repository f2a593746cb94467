import DistilFormats
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Keeps a validator's disk in bounds (`dl-fetch prune`, docs/FORMATS.md "Prune"): removes from
/// the Hub cache the snapshots no epoch needs again, never the teacher or the king, and old epoch
/// folders, leaving a cache huggingface_hub's own scan reads without a warning. With
/// `keepEpochs` K, what pipelines/reproduce.sh needs for the last K epochs stays: their folders and
/// the snapshots their plans scored.
///
/// What is ours to remove: a snapshot the validator itself brought in — named in the judge's state,
/// in a commitment, or in a manifest of an epoch folder still on disk. Anything else in the cache
/// (the operator's own models) is never touched unless `removeUnlisted`. Of ours, a snapshot is
/// needed while it is the king, kept by `--keep`, or committed and not yet scored (it is scored
/// next epoch). Scores are permanent (the state keeps them and `plan` never scores a model
/// twice), so a scored model that is not the king is not needed again, committed or not.
public struct PruneOptions: Sendable {
    public var cacheDir: String
    public var state: String?
    public var commitments: [String] = []
    /// `REPO`, `REPO@COMMIT` or a snapshot directory: never removed (the teacher).
    public var keep: [String] = []
    /// Stop once this many bytes are free on the cache's file system (nil: remove all that may go).
    public var minFree: Int64?
    public var removeUnlisted = false
    /// The pipeline's working directory: its epoch folders' manifests say what is ours, and all
    /// but the last `keepEpochs` epoch folders are removed.
    public var work: String?
    public var keepEpochs: Int?
    public var dryRun = false
    public init(cacheDir: String) { self.cacheDir = cacheDir }
}

/// One line of prune's output (docs/FORMATS.md).
public struct PruneRecord: Codable, Equatable, Sendable {
    public var kind: String                 // snapshot, partial, epoch, summary
    public var repo: String?
    public var commit: String?
    public var path: String?
    public var reason: String?
    public var bytes: Int64?
    public var dry_run: Bool?
    // summary only
    public var free_before: Int64?
    public var free_after: Int64?
    public var min_free: Int64?
    public var floor_met: Bool?
    public var removed_bytes: Int64?
    public var kept: [String]?
    public var tool: String = DistilVersion.tool
}

public enum Prune {
    struct Snapshot {
        var repo: String, commit: String, folder: String
        var order: (Int, Int64)             // removal order: (reason rank, age)
        var reason: String
    }

    public static func run(_ o: PruneOptions, emit: (PruneRecord) throws -> Void) throws {
        var st = stat()
        if stat(o.cacheDir, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw DistilError.input(o.cacheDir, "not a directory") }
        } else {
            // Nothing was ever fetched from the Hub (local models only): nothing to prune there.
            Log.info("\(o.cacheDir): no Hub cache yet")
        }
        let freeBefore = try freeBytes(o.cacheDir)
        // What the validator knows about.
        var king: (String, String?)?
        var scored: [String: (outcome: String, block: Int64)] = [:]     // "repo@commit"
        var ours = Set<String>()                                        // repo ids
        if let s = o.state, FileManager.default.fileExists(atPath: s) {
            let obj = try parseJSON(s)
            if let k = obj["king"] as? [String: Any], let r = k["repo"] as? String {
                king = (r, (k["commit"] as? String) ?? (k["revision"] as? String))
                ours.insert(r)
            }
            for case let m as [String: Any] in (obj["models"] as? [Any]) ?? [] {
                guard let r = m["repo"] as? String else { continue }
                ours.insert(r)
                let c = (m["commit"] as? String) ?? (m["revision"] as? String) ?? ""
                let b = (m["scored_block"] as? NSNumber)?.int64Value ?? 0
                scored[r + "@" + c] = ((m["outcome"] as? String) ?? "", b)
            }
        }
        var committed = Set<String>(), committedRepos = Set<String>()
        for f in o.commitments {
            for c in try JSONLReader<Commitment>(path: f).readAll() {
                ours.insert(c.repo); committedRepos.insert(c.repo)
                committed.insert(c.repo + "@" + (c.revision ?? ""))
            }
        }
        let epochs = o.work.map(epochFolders) ?? []
        for (_, dir) in epochs {
            let m = dir + "/manifests.jsonl"
            guard FileManager.default.fileExists(atPath: m) else { continue }
            for line in try JSONLReader<Manifest>(path: m).readAll() { ours.insert(line.repo) }
        }
        // pipelines/reproduce.sh re-scores an epoch's planned models from their snapshots: those of
        // the epochs --keep-epochs keeps stay too.
        var reproduce: [String: Int] = [:]                                 // "repo@commit" → epoch block
        if let k = o.keepEpochs {
            for (block, dir) in epochs.suffix(k) {
                guard let text = try? readFile(dir + "/plan.jsonl", limit: 64 << 20) else { continue }
                for line in text.split(separator: 0x0A) {
                    guard let r = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                          let repo = r["repo"] as? String, let c = (r["commit"] as? String) ?? (r["revision"] as? String) else { continue }
                    reproduce[repo + "@" + c] = block
                }
            }
        }
        var keepRepos = Set<String>(), keepExact = Set<String>(), kept: [String] = []
        for k in o.keep {
            if k.hasPrefix("/") || k.hasPrefix(".") {
                let p = URL(fileURLWithPath: k).resolvingSymlinksInPath().path
                let parts = p.split(separator: "/").map(String.init)
                guard parts.count >= 3, parts[parts.count - 2] == "snapshots", parts[parts.count - 3].hasPrefix("models--") else {
                    Log.info("--keep \(k) is not a snapshot in a Hub cache: nothing to protect there"); continue
                }
                keepExact.insert(repoId(parts[parts.count - 3]) + "@" + parts[parts.count - 1])
            } else if k.contains("@") {
                keepExact.insert(k)
            } else { keepRepos.insert(k) }
        }

        // Every snapshot in the cache, classified.
        var candidates: [Snapshot] = []
        let names = (try? FileManager.default.contentsOfDirectory(atPath: o.cacheDir)) ?? []
        for name in names.sorted() where name.hasPrefix("models--") {
            let folder = o.cacheDir + "/" + name
            let repo = repoId(name)
            let refs = refsByCommit(folder)
            let commits = ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/snapshots")) ?? []).sorted()
            for commit in commits {
                let id = repo + "@" + commit
                let isKing = king.map { $0.0 == repo && ($0.1 == nil || $0.1 == commit || refs[commit]?.contains($0.1!) == true) } ?? false
                if isKing || keepRepos.contains(repo) || keepExact.contains(id) {
                    kept.append(id + (isKing ? " (king)" : " (--keep)")); continue
                }
                if let b = reproduce[id] { kept.append(id + " (reproduce.sh: epoch \(b))"); continue }
                let isCommitted = committed.contains(id) || (refs[commit] ?? []).contains { committed.contains(repo + "@" + $0) }
                let age = Int64(mtime(folder + "/snapshots/" + commit))
                if let s = scored[id] {
                    candidates.append(Snapshot(repo: repo, commit: commit, folder: folder, order: (1, s.block), reason: "scored:\(s.outcome)"))
                } else if isCommitted {
                    kept.append(id + " (committed, not scored yet)")
                } else if ours.contains(repo) {
                    if o.commitments.isEmpty { kept.append(id + " (no --commitments: cannot tell whether committed)"); continue }
                    candidates.append(Snapshot(repo: repo, commit: commit, folder: folder, order: (0, age), reason: "not_committed"))
                } else if o.removeUnlisted {
                    candidates.append(Snapshot(repo: repo, commit: commit, folder: folder, order: (2, age), reason: "unlisted"))
                } else {
                    kept.append(id + " (not the validator's)")
                }
            }
        }
        candidates.sort { $0.order != $1.order ? $0.order < $1.order : ($0.repo, $0.commit) < ($1.repo, $1.commit) }

        var removed: Int64 = 0
        func floorMet() throws -> Bool {
            guard let f = o.minFree else { return false }
            return (o.dryRun ? freeBefore + removed : try freeBytes(o.cacheDir)) >= f
        }
        var touched = Set<String>(), gone = Set<String>()
        for c in candidates {
            if try floorMet() { break }
            let bytes = try removeSnapshot(c, cacheRoot: o.cacheDir, dryRun: o.dryRun)
            removed += bytes
            touched.insert(c.folder)
            gone.insert(c.folder + "/snapshots/" + c.commit)
            try emit(PruneRecord(kind: "snapshot", repo: c.repo, commit: c.commit, path: c.folder + "/snapshots/" + c.commit,
                                 reason: c.reason, bytes: bytes, dry_run: o.dryRun ? true : nil))
        }
        // Partial downloads of repos nobody needs any more (every snapshot of theirs went, or none was
        // ever made and the repo is no longer committed).
        for name in names.sorted() where name.hasPrefix("models--") {
            let folder = o.cacheDir + "/" + name
            let repo = repoId(name)
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/snapshots")) ?? []).filter {
                !gone.contains(folder + "/snapshots/" + $0)
            }
            let orphan = left.isEmpty && (touched.contains(folder)
                || (ours.contains(repo) && !o.commitments.isEmpty && !committedRepos.contains(repo) && !keepRepos.contains(repo)))
            guard orphan else { continue }
            let (bytes, paths) = try removeRepoRemains(folder, cacheRoot: o.cacheDir, name: name, dryRun: o.dryRun)
            if bytes > 0 || !paths.isEmpty {
                removed += bytes
                try emit(PruneRecord(kind: "partial", repo: repo, path: folder, reason: "no snapshot needed", bytes: bytes,
                                     dry_run: o.dryRun ? true : nil))
            }
        }
        if let k = o.keepEpochs, o.work != nil {
            for (block, dir) in epochs.dropLast(k) {
                let bytes = diskUsage(dir)
                if !o.dryRun { try removeTree(dir) }
                removed += bytes
                try emit(PruneRecord(kind: "epoch", path: dir, reason: "older than the last \(k) epochs (block \(block))",
                                     bytes: bytes, dry_run: o.dryRun ? true : nil))
            }
        }
        let freeAfter = o.dryRun ? freeBefore + removed : try freeBytes(o.cacheDir)
        let met = o.minFree.map { freeAfter >= $0 }
        if met == false { Log.warn("\(o.cacheDir): \(freeAfter) bytes free after pruning, below the --min-free floor of \(o.minFree!): nothing more may be removed") }
        try emit(PruneRecord(kind: "summary", dry_run: o.dryRun ? true : nil, free_before: freeBefore, free_after: freeAfter,
                             min_free: o.minFree, floor_met: met, removed_bytes: removed, kept: kept))
    }

    /// A byte count with an optional K, M, G or T suffix (powers of 1024); nil if not one.
    public static func parseBytes(_ s: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(s), mult: Int64 = 1
        if let u = s.last.flatMap({ units[Character($0.uppercased())] }) { mult = u; digits = s.dropLast() }
        guard let n = Int64(digits), n >= 0 else { return nil }
        let (v, overflow) = n.multipliedReportingOverflow(by: mult)
        return overflow ? nil : v
    }

    /// `models--org--name` → `org/name` (huggingface_hub's mapping; repo ids hold no "--" pairs
    /// that would make it ambiguous in practice, and the Hub forbids "--" in names).
    static func repoId(_ folder: String) -> String {
        String(folder.dropFirst("models--".count)).replacingOccurrences(of: "--", with: "/")
    }

    static func refsByCommit(_ folder: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        let refs = folder + "/refs"
        guard let e = FileManager.default.enumerator(atPath: refs) else { return out }
        while let n = e.nextObject() as? String {
            guard let b = try? readFile(refs + "/" + n, limit: 256) else { continue }
            out[String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), default: []].append(n)
        }
        return out
    }

    /// The `epoch-N` folders of a working directory, by block.
    static func epochFolders(_ work: String) -> [(Int, String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: work)) ?? []
        return names.compactMap { n -> (Int, String)? in
            guard n.hasPrefix("epoch-"), let b = Int(n.dropFirst(6)) else { return nil }
            return (b, work + "/" + n)
        }.sorted { $0.0 < $1.0 }
    }

    /// Removes one snapshot: its folder, the refs and trees file naming it, and every blob no other
    /// snapshot of the repo links to (each under its lock, skipped while another process holds it).
    /// The repo folder goes too when nothing is left in it. Returns the bytes freed.
    static func removeSnapshot(_ s: Snapshot, cacheRoot: String, dryRun: Bool) throws -> Int64 {
        let snap = s.folder + "/snapshots/" + s.commit
        let mine = linkedBlobs(snap)
        var others = Set<String>()
        for c in (try? FileManager.default.contentsOfDirectory(atPath: s.folder + "/snapshots")) ?? [] where c != s.commit {
            others.formUnion(linkedBlobs(s.folder + "/snapshots/" + c))
        }
        let gone = mine.subtracting(others)
        var bytes: Int64 = 0
        let cache = RepoCache(root: cacheRoot, repo: try RepoRef(s.repo, revision: s.commit))
        for etag in gone.sorted() { bytes += diskUsage(cache.blob(etag)) }
        bytes += diskUsage(snap) + diskUsage(cache.tree(s.commit))
        if dryRun { return bytes }
        // The snapshot first: a crash after this point leaves unreferenced blobs, which the scan
        // does not mind, never a link to a missing blob, which it calls corrupted.
        for (commit, names) in refsByCommit(s.folder) where commit == s.commit {
            for n in names { unlink(s.folder + "/refs/" + n) }
        }
        try removeTree(snap)
        unlink(cache.tree(s.commit))
        for etag in gone.sorted() {
            _ = try? tryLocked(cache, etag) { unlink(cache.blob(etag)); unlink(cache.stamp(etag)) }
        }
        return bytes
    }

    /// A repo folder left with no snapshot: its partial files, blobs and locks go, then the folder.
    static func removeRepoRemains(_ folder: String, cacheRoot: String, name: String, dryRun: Bool) throws -> (Int64, [String]) {
        let blobs = ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/blobs")) ?? []).sorted()
        var bytes: Int64 = 0
        for b in blobs { bytes += diskUsage(folder + "/blobs/" + b) }
        if dryRun { return (bytes, blobs) }
        let cache = RepoCache(root: cacheRoot, repo: try RepoRef(repoId(name), revision: "main"))
        var busy = false
        for b in blobs {
            let etag = String(b.prefix { $0 != "." })
            let ok = (try? tryLocked(cache, etag) { unlink(folder + "/blobs/" + b) }) != nil
            if !ok { busy = true }
        }
        if !busy {
            try removeTree(folder)
            try? removeTree(cacheRoot + "/.locks/" + name)
        }
        return (bytes, blobs)
    }

    /// Runs `body` holding the blob's lock if nobody else holds it; nil when someone does.
    static func tryLocked<T>(_ cache: RepoCache, _ etag: String, _ body: () throws -> T) throws -> T? {
        let path = cache.lock(etag)
        let fd = open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 { return try body() }         // no lock file: nobody is writing it
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return nil }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    static func linkedBlobs(_ snap: String) -> Set<String> {
        var out = Set<String>()
        guard let e = FileManager.default.enumerator(atPath: snap) else { return out }
        while let n = e.nextObject() as? String {
            if let d = try? FileManager.default.destinationOfSymbolicLink(atPath: snap + "/" + n) {
                let etag = (d as NSString).lastPathComponent
                if RepoCache.validate(etag: etag) && d.hasSuffix("blobs/" + etag) { out.insert(etag) }
            }
        }
        return out
    }

    static func parseJSON(_ path: String) throws -> [String: Any] {
        let b = try readFile(path, limit: 256 << 20)
        guard let o = try? JSONSerialization.jsonObject(with: Data(b)) as? [String: Any] else {
            throw DistilError.input(path, "not a JSON object")
        }
        return o
    }

    /// Free bytes for unprivileged users on the file system that holds `path` (or would: the
    /// nearest existing folder above it).
    public static func freeBytes(_ path: String) throws -> Int64 {
        var s = statvfs()
        var p = path
        while statvfs(p, &s) != 0 && errno == ENOENT && p.count > 1 { p = (p as NSString).deletingLastPathComponent }
        guard statvfs(p, &s) == 0 else { throw DistilError.input(path, "statvfs failed: \(String(cString: strerror(errno)))") }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    static func mtime(_ path: String) -> Int {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mtim.tv_sec : 0
    }

    /// Bytes a file or tree occupies on disk (allocated blocks, not following symlinks).
    static func diskUsage(_ path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        var total = Int64(st.st_blocks) * 512
        if (st.st_mode & S_IFMT) == S_IFDIR, let e = FileManager.default.enumerator(atPath: path) {
            while let n = e.nextObject() as? String {
                var s2 = stat()
                if lstat(path + "/" + n, &s2) == 0 { total += Int64(s2.st_blocks) * 512 }
            }
        }
        return total
    }

    static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        do { try FileManager.default.removeItem(atPath: path) }
        catch { throw DistilError.input(path, "cannot remove: \(error.localizedDescription)") }
    }
}
