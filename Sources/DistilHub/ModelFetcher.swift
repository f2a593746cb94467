import DistilFormats
import Foundation

/// One commitment in, one manifest out: resolve, list, then fetch (everything, or metadata and
/// safetensors headers only). Failures become the manifest's outcome, never a thrown error:
/// a model that cannot be fetched is data.
extension HubClient {
    /// As `fetchStoppingOnLocalFailure`, with a failure of our own disk recorded as `transient` too.
    public func fetch(_ c: Commitment) -> Manifest {
        do { return try fetchStoppingOnLocalFailure(c) } catch let e as DistilError {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .transient, message: e.message)
        } catch {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .transient, message: "\(c.repo): \(error)")
        }
    }

    /// The model's manifest, whatever the Hub or the model did; throws (a `DistilError` naming the
    /// file) only when writing into the cache or the headers folder failed (a full disk, a quota,
    /// EIO, permissions): that is the validator's trouble, it would fail every model alike, so
    /// dl-fetch stops on it (exit 1) instead of recording it against one model.
    public func fetchStoppingOnLocalFailure(_ c: Commitment) throws -> Manifest {
        let repo: RepoRef
        do { repo = try RepoRef(c.repo, revision: c.revision) } catch {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .error, message: "\(error)")
        }
        do {
            return try fetchOrThrow(c, repo: repo)
        } catch let f as HubFailure {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: f.outcome, message: f.description,
                            metadataOnly: options.metadataOnly ? true : nil)
        } catch let e as DistilError where writesOurs(e) {
            throw e
        } catch {
            // Below HTTP (no connection, a timeout, a bad redirect): the Hub's side, retried later.
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .transient, message: "\(c.repo): \(error)")
        }
    }

    /// Whether `e` is about a file of ours: the cache's and the headers folder's own writes (open,
    /// write, fsync, rename, symlink, lock, mkdir) name the file they failed on, under those folders.
    func writesOurs(_ e: DistilError) -> Bool {
        [config.cacheDir, options.headersDir].compactMap { $0 }.contains { !$0.isEmpty && e.message.hasPrefix($0 + "/") }
    }

    func fetchOrThrow(_ c: Commitment, repo: RepoRef) throws -> Manifest {
        let cache = RepoCache(root: config.cacheDir, repo: repo)
        // The listing: from the cache when the revision is pinned (or offline) and known there,
        // otherwise from the Hub.
        var commit: String
        var files: [RepoFile]
        if let known = cache.cachedCommit(), (repo.isCommit || config.offline), let tree = cache.cachedTree(known) {
            commit = known; files = tree
        } else if config.offline {
            guard let known = cache.cachedCommit() else {
                throw HubFailure.transient("\(repo.id)@\(repo.revision): not in the cache \(config.cacheDir) and HF_HUB_OFFLINE is set")
            }
            commit = known
            files = try HubClient.snapshotListing(cache, commit: commit)
        } else {
            (commit, files) = try listing(repo)
            try? cache.saveTree(commit, files)
        }
        let wanted = files.filter { f in
            let base = (f.path as NSString).lastPathComponent
            guard options.include.contains(where: { fnmatch($0, base, 0) == 0 }) else { return false }
            return !(options.metadataOnly && WeightFiles.isWeightFile(f.path))
        }
        let weights = files.filter { $0.path.hasSuffix(".safetensors") }
        if options.metadataOnly {
            if let big = wanted.first(where: { $0.size > options.maxSmallFileBytes }) {
                throw HubFailure.refused("\(repo.id): \(big.path) is \(big.size) bytes; files other than weights are limited to \(options.maxSmallFileBytes)")
            }
        }
        let total = wanted.reduce(Int64(0)) { $0 + $1.size }
        if total > options.maxTotalBytes {
            throw HubFailure.refused("\(repo.id): \(total) bytes to download, more than the \(options.maxTotalBytes) allowed")
        }
        // huggingface_hub's scan calls a repo folder without snapshots/ corrupted: make it with the
        // folder, so a model whose every download fails still leaves a cache it reads.
        try makeDirs(cache.folder + "/snapshots")
        let progress = ProgressReporter("\(repo.id)@\(commit.prefix(8))", total: total, unit: .bytes, enabled: options.progress)
        try runParallel(wanted.sorted { $0.size > $1.size }, workers: options.parallel) { f in
            try self.download(f, repo: repo, commit: commit, progress: progress)
        }
        progress.finish()
        if !config.offline { try? cache.saveRef(commit) }

        var headersPath: String?
        if options.metadataOnly && !weights.isEmpty {
            guard let root = options.headersDir else { throw HubFailure.refused("metadata-only mode needs a headers directory") }
            let dir = "\(root)/\(repo.folderName)/\(commit)"
            try runParallel(weights, workers: options.parallel) { f in
                let dst = dir + "/" + f.path
                var st = stat()
                if stat(dst, &st) == 0 && st.st_size >= 8 { return }
                let header = try self.safetensorsHeader(f, repo: repo, commit: commit)
                try makeDirs((dst as NSString).deletingLastPathComponent)
                try writeFileAtomically(dst, header)
            }
            headersPath = dir
        }
        let mfiles = files.map { ManifestFile(name: $0.path, size: $0.size, sha256: $0.lfsSHA256) }
        // The cheap weight identity needs every weight file's SHA-256; the Hub lists it for LFS files.
        let weightHashes = files.filter { WeightFiles.isWeightFile($0.path) }.map { ($0.path, $0.lfsSHA256) }
        let identity = weightHashes.allSatisfy({ $0.1 != nil }) && !weightHashes.isEmpty
            ? WeightFiles.identity(weightHashes.map { ($0.0, $0.1!) }) : nil
        var m = Manifest(commitment: c, commit: commit, path: cache.snapshot(commit), files: mfiles, outcome: .ok,
                         weightsSHA256: identity, metadataOnly: options.metadataOnly ? true : nil)
        m.headers_path = headersPath
        return m
    }

    /// Lists a snapshot folder made by huggingface_hub (offline, no trees file): each entry's
    /// blob name is its ETag, which for LFS files is the SHA-256 of the content.
    static func snapshotListing(_ cache: RepoCache, commit: String) throws -> [RepoFile] {
        let dir = cache.snapshot(commit)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue,
              let names = FileManager.default.enumerator(atPath: dir) else {
            throw HubFailure.transient("\(cache.repo.id)@\(commit): no snapshot in the cache and HF_HUB_OFFLINE is set")
        }
        var out: [RepoFile] = []
        while let n = names.nextObject() as? String {
            let full = dir + "/" + n
            guard let dest = try? FileManager.default.destinationOfSymbolicLink(atPath: full) else { continue }
            let etag = (dest as NSString).lastPathComponent
            guard RepoCache.validate(etag: etag), dest == RepoCache.linkTarget(n, etag: etag) else {
                throw HubFailure.refused("\(full): snapshot entry points to \(RepoCache.escaped(dest)), not into this repo's blobs/")
            }
            var st = stat()
            guard stat(full, &st) == 0 else {
                throw HubFailure.transient("\(full): dangling symlink (blobs/\(etag) is missing) and HF_HUB_OFFLINE is set")
            }
            let size = Int64(st.st_size)
            out.append(RepoFile(path: n, size: size, blobId: etag.utf8.count == 40 ? etag : nil,
                                lfsSHA256: etag.utf8.count == 64 ? etag : nil))
        }
        // An empty snapshot is a model that was never fetched here, not a model without files.
        guard !out.isEmpty else { throw HubFailure.transient("\(cache.repo.id)@\(commit): the cached snapshot is empty and HF_HUB_OFFLINE is set") }
        return out.sorted { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
    }
}

/// Runs `body` on each item with up to `workers` threads; the first error (in item order) is thrown
/// after all have finished, so no transfer is left running.
func runParallel<T>(_ items: [T], workers: Int, _ body: @escaping (T) throws -> Void) throws {
    if items.isEmpty { return }
    let state = WorkQueueState()
    let group = DispatchGroup()
    for _ in 0..<max(1, min(workers, items.count)) {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            while let i = state.take(items.count) {
                do { try body(items[i]) } catch { state.fail(i, error) }
            }
        }
    }
    group.wait()
    if let first = state.errors.min(by: { $0.0 < $1.0 }) { throw first.1 }
}

/// Shared state of runParallel's workers.
final class WorkQueueState: @unchecked Sendable {
    let lock = NSLock()
    var next = 0
    var errors: [(Int, Error)] = []
    /// The next item's index, or nil when done or after a failure.
    func take(_ count: Int) -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard errors.isEmpty, next < count else { return nil }
        next += 1
        return next - 1
    }
    func fail(_ i: Int, _ e: Error) { lock.lock(); errors.append((i, e)); lock.unlock() }
}
