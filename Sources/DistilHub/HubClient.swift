import Crypto
import DistilFormats
import DistilTensors
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How much dl-fetch fetches, and how hard it tries.
public struct FetchOptions: Sendable {
    /// Only the listing, the small files and each safetensors file's header (ranged reads), so
    /// dl-check can run before any weight is downloaded.
    public var metadataOnly = false
    /// Files downloaded (shell globs on the file's base name); the listing always names every file.
    public var include = ["*.safetensors", "*.json", "*.txt", "*.model", "*.tiktoken", "*.jinja", "*.md"]
    /// Refuse a model whose downloaded files add up to more than this.
    public var maxTotalBytes: Int64 = 24 << 30
    /// In metadata-only mode, files other than weights larger than this are refused.
    public var maxSmallFileBytes: Int64 = 64 << 20
    /// Concurrent transfers (files).
    public var parallel = 4
    /// Connections for one large file: its rest is fetched in `segmentBytes` ranges, in file order,
    /// by this many connections (1: one stream). Hashing still runs in order, behind the transfer.
    public var connectionsPerFile = 4
    /// The range each connection asks for at a time; files with less than twice this left use one stream.
    public var segmentBytes: Int64 = 32 << 20
    /// Where metadata-only mode keeps safetensors headers: <dir>/models--org--name/<commit>/<path>.
    public var headersDir: String?
    public var retry = RetryPolicy()
    public var timeouts = HTTPTimeouts()
    public var progress = true
    public init() {}
}

/// A Hugging Face Hub client on libcurl that keeps its files in huggingface_hub's cache.
public final class HubClient: @unchecked Sendable {
    public let config: HubConfig
    public var options: FetchOptions
    public static let maxFiles = 10_000
    static let maxListingBytes = 32 << 20
    /// Requests sent and body bytes received by this client's transfers (all threads).
    public private(set) var requests = 0
    public private(set) var bytesReceived: Int64 = 0
    private let statsLock = NSLock()

    public init(config: HubConfig = .fromEnvironment(), options: FetchOptions = FetchOptions()) {
        self.config = config
        self.options = options
    }

    func http() -> HTTPClient { HTTPClient(timeouts: options.timeouts) }

    func account(_ c: HTTPClient) {
        statsLock.lock(); requests += c.requestsSent; bytesReceived += c.bytesReceived; statsLock.unlock()
    }

    var authHeaders: [String: String] {
        var h = ["Accept-Encoding": "identity"]
        if let t = config.token { h["Authorization"] = "Bearer \(t)" }
        return h
    }

    public func resolveURL(_ repo: RepoRef, commit: String, path: String) -> String {
        "\(config.endpoint)/\(repo.id)/resolve/\(commit)/\(percentEncode(path, keepSlash: true))"
    }

    // MARK: listing

    /// Resolves the revision and lists the files with sizes and content hashes
    /// (GET /api/models/{repo}/revision/{revision}?blobs=true).
    public func listing(_ repo: RepoRef) throws -> (commit: String, files: [RepoFile]) {
        if config.offline { throw HubFailure.transient("\(repo.id): HF_HUB_OFFLINE is set and the listing is not in the cache") }
        let c = http()
        defer { account(c) }
        let url = "\(config.endpoint)/api/models/\(repo.id)/revision/\(percentEncode(repo.revision, keepSlash: false))?blobs=true"
        var body: [UInt8] = []
        var errorBody: [UInt8] = []
        let r = try withRetries(options.retry, what: repo.id) { _ in
            body = []
            do {
                let (r, eb) = try c.send(url, headers: authHeaders, metadata: true) { buf, _, _ in
                    if body.count + buf.count > HubClient.maxListingBytes { return false }
                    body += buf
                    return true
                }
                errorBody = eb
                return r
            } catch is ReceiverStopped {
                throw HubFailure.refused("\(repo.id): the listing is larger than \(HubClient.maxListingBytes >> 20) MB")
            }
        }
        try classify(r, errorBody, repo: repo, what: "listing")
        return try HubClient.parseListing(body, repo: repo)
    }

    /// Turns a non-2xx answer into the failure it means.
    func classify(_ r: HTTPResponse, _ body: [UInt8], repo: RepoRef, what: String) throws {
        if (200..<300).contains(r.status) { return }
        let code = r.header("x-error-code") ?? ""
        let msg = r.header("x-error-message").map { " (\($0.prefix(200)))" } ?? ""
        switch r.status {
        case 404 where code == "RevisionNotFound":
            if repo.isCommit { throw HubFailure.changed("\(repo.id): commit \(repo.revision) no longer exists on the Hub (history rewritten)") }
            throw HubFailure.notFound("\(repo.id): revision '\(repo.revision)' not found")
        case 404 where code == "EntryNotFound":
            throw HubFailure.changed("\(repo.id): \(what) is listed at \(repo.revision) but no longer served")
        case 404, 410:
            throw HubFailure.notFound("\(repo.id): repository not found (HTTP \(r.status))\(msg)")
        case 401:
            throw HubFailure.privateOrGated("\(repo.id): not public (HTTP 401: private, gated or deleted)\(msg)")
        case 403:
            let kind = code == "GatedRepo" ? "gated" : "forbidden"
            throw HubFailure.privateOrGated("\(repo.id): \(kind) (HTTP 403)\(msg)")
        default:
            throw HubFailure.refused("\(repo.id): \(what): unexpected HTTP \(r.status)\(msg)")
        }
    }

    /// Parses the model-info JSON, bounding and validating everything in it.
    public static func parseListing(_ body: [UInt8], repo: RepoRef) throws -> (commit: String, files: [RepoFile]) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw HubFailure.transient("\(repo.id): the listing is not a JSON object")
        }
        guard let sha = obj["sha"] as? String, RepoRef.isCommitHash(sha) else {
            throw HubFailure.transient("\(repo.id): the listing has no commit hash")
        }
        if repo.isCommit && sha != repo.revision {
            throw HubFailure.changed("\(repo.id): asked for commit \(repo.revision), the Hub answered \(sha)")
        }
        guard let siblings = obj["siblings"] as? [Any] else { throw HubFailure.transient("\(repo.id): the listing has no files") }
        guard siblings.count <= maxFiles else { throw HubFailure.refused("\(repo.id): \(siblings.count) files (at most \(maxFiles))") }
        var files: [RepoFile] = []
        var seen = Set<String>()
        for s in siblings {
            guard let e = s as? [String: Any], let path = e["rfilename"] as? String else {
                throw HubFailure.transient("\(repo.id): a listing entry has no file name")
            }
            try RepoCache.validate(path: path)
            guard seen.insert(path).inserted else { throw HubFailure.refused("\(repo.id): file '\(path)' listed twice") }
            guard let sizeNum = e["size"] as? NSNumber, !isBool(sizeNum), sizeNum.int64Value >= 0 else {
                throw HubFailure.transient("\(repo.id): \(path): no size in the listing")
            }
            let blob = e["blobId"] as? String
            guard let blob, RepoCache.validate(etag: blob), blob.utf8.count == 40 else {
                throw HubFailure.transient("\(repo.id): \(path): no valid blob id in the listing")
            }
            var sha256: String?
            var size = sizeNum.int64Value
            if let lfs = e["lfs"] as? [String: Any] {
                guard let s = lfs["sha256"] as? String, s.utf8.count == 64, RepoCache.validate(etag: s) else {
                    throw HubFailure.transient("\(repo.id): \(path): LFS entry without a valid sha256")
                }
                sha256 = s
                if let ls = lfs["size"] as? NSNumber, !isBool(ls), ls.int64Value >= 0 { size = ls.int64Value }
            }
            files.append(RepoFile(path: path, size: size, blobId: blob, lfsSHA256: sha256))
        }
        // A name that is both a file and a folder ("a" and "a/b") cannot be laid out.
        for f in files {
            var prefix = ""
            for c in f.path.split(separator: "/").dropLast() {
                prefix += (prefix.isEmpty ? "" : "/") + c
                if seen.contains(prefix) { throw HubFailure.refused("\(repo.id): '\(prefix)' is both a file and a folder") }
            }
        }
        files.sort { Array($0.path.utf8).lexicographicallyPrecedes(Array($1.path.utf8)) }
        return (sha, files)
    }

    static func isBool(_ n: NSNumber) -> Bool { String(describing: type(of: n)).contains("Bool") }

    // MARK: downloads

    /// Downloads one file into the cache (resuming a partial blob, verifying its hash, placing it
    /// atomically) and links it into the snapshot. A blob already complete is reused untouched.
    public func download(_ file: RepoFile, repo: RepoRef, commit: String, progress: ProgressReporter? = nil) throws {
        let cache = RepoCache(root: config.cacheDir, repo: repo)
        guard let etag = file.etag, RepoCache.validate(etag: etag) else { throw HubFailure.refused("\(file.path): no valid blob id") }
        if cache.isCached(file, commit: commit) { progress?.skip(file.size); return }
        try makeDirs(cache.folder + "/blobs")
        try cache.withLock(etag) {
            // A blob already there is used only if it is still what the listing says (CacheIntegrity.swift).
            switch cache.verifyBlob(file) {
            case .valid: try cache.link(file, commit: commit); progress?.skip(file.size); return
            case .corrupt(let why): Log.warn("\(repo.id): \(file.path): \(why): fetching it again")
            case .missing: break
            }
            if config.offline { throw HubFailure.transient("\(repo.id): \(file.path) is not in the cache and HF_HUB_OFFLINE is set") }
            try fetchBlob(file, etag: etag, repo: repo, commit: commit, cache: cache, progress: progress)
            cache.writeStamp(etag)
            try cache.link(file, commit: commit)
        }
    }

    private func fetchBlob(_ file: RepoFile, etag: String, repo: RepoRef, commit: String, cache: RepoCache,
                           progress: ProgressReporter?) throws {
        let inc = cache.blob(etag) + ".incomplete"
        recoverSegments(blob: cache.blob(etag), size: file.size)
        let fd = open(inc, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DistilError.input(inc, "cannot open: \(String(cString: strerror(errno)))") }
        var closed = false
        defer {
            if !closed {
                // Keep a partial body for the next run to resume; an empty file is just litter.
                var st = stat()
                if fstat(fd, &st) == 0 && st.st_size == 0 { unlink(inc) }
                close(fd)
            }
        }
        // Resume from what an earlier run left, unless it is already too long to be right.
        var offset = Int64(lseek(fd, 0, SEEK_END))
        if offset > file.size || offset < 0 { _ = ftruncate(fd, 0); offset = 0 }
        if offset > 0 { Log.info("\(repo.id): \(file.path): resuming at \(offset) of \(file.size) bytes") }
        let verifier = FileHasher(file, fd: fd)
        verifier.written(upTo: offset)
        var verified = false
        var signalled = offset
        defer { if !verified { verifier.cancel() } }
        progress?.skip(offset)
        let url = resolveURL(repo, commit: commit, path: file.path)
        let c = http()
        defer { account(c) }
        if segmented(file, from: offset) {
            let complete = try fetchSegments(file, fd: fd, inc: inc, blob: cache.blob(etag), offset: &offset, url: url,
                                             repo: repo, commit: commit, verifier: verifier, progress: progress)
            signalled = offset
            if complete { return try place(file, fd: fd, closed: &closed, verified: &verified, verifier: verifier, inc: inc,
                                           blob: cache.blob(etag), offset: offset, repo: repo) }
        }
        var errorBody: [UInt8] = []
        var writeError: String?
        while true {
            let r = try withRetries(options.retry, what: "\(repo.id)/\(file.path)") { _ in
                let start = offset
                var first = true
                do {
                    let (r, eb) = try c.send(url, headers: authHeaders, rangeFrom: start > 0 ? start : nil) { buf, status, hdrs in
                        if first {
                            first = false
                            // The server ignored or misread the range: start again from zero.
                            if start > 0 && (status != 206 || HubClient.contentRangeStart(hdrs["content-range"]) != start) {
                                _ = ftruncate(fd, 0); offset = 0; signalled = 0; verifier.reset(); progress?.skip(-start)
                            }
                        }
                        if offset + Int64(buf.count) > file.size { return false }
                        var done = 0
                        while done < buf.count {
                            let n = pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(offset) + off_t(done))
                            if n < 0 { if errno == EINTR { continue }; writeError = String(cString: strerror(errno)); return false }
                            done += n
                        }
                        offset += Int64(buf.count)
                        // Wake the hashing thread once a megabyte, not on every chunk.
                        if offset - signalled >= 1 << 20 { verifier.written(upTo: offset); signalled = offset }
                        progress?.advance(buf.count)
                        return true
                    }
                    errorBody = eb
                    return r
                } catch is ReceiverStopped {
                    if let writeError { throw DistilError.input(inc, "write failed: \(writeError)") }
                    throw HubFailure.transient("\(repo.id): \(file.path): the server sent more than the \(file.size) bytes listed")
                }
            }
            if r.status == 416 && offset > 0 {
                // Our partial file is not a prefix the server recognises: start over.
                _ = ftruncate(fd, 0); progress?.skip(-offset); offset = 0; signalled = 0; verifier.reset()
                continue
            }
            do { try classify(r, errorBody, repo: RepoRef(repo.id, revision: commit), what: file.path) }
            catch { verifier.cancel(); _ = ftruncate(fd, 0); close(fd); closed = true; unlink(inc); throw error }
            break
        }
        try place(file, fd: fd, closed: &closed, verified: &verified, verifier: verifier, inc: inc, blob: cache.blob(etag),
                  offset: offset, repo: repo)
    }

    /// The end of a download: all `file.size` bytes are at `inc`; wait for the hash, and only if it
    /// is the Hub's, fsync and rename the file into place (a mismatch deletes it).
    private func place(_ file: RepoFile, fd: Int32, closed: inout Bool, verified: inout Bool, verifier: FileHasher,
                       inc: String, blob: String, offset: Int64, repo: RepoRef) throws {
        guard offset == file.size else {
            // The body ended early without a transport error: keep the prefix for the next attempt.
            throw HubFailure.transient("\(repo.id): \(file.path): got \(offset) of \(file.size) bytes")
        }
        let got = verifier.finish(size: offset) ?? "(unreadable)"
        verified = true
        guard got == verifier.expected else {
            close(fd); closed = true; unlink(inc)
            throw HubFailure.transient("\(repo.id): \(file.path): content hash \(got) does not match the Hub's \(verifier.expected); discarded")
        }
        guard fsync(fd) == 0 else { throw DistilError.input(inc, "fsync failed: \(String(cString: strerror(errno)))") }
        close(fd); closed = true
        guard rename(inc, blob) == 0 else {
            throw DistilError.input(blob, "cannot place the blob: \(String(cString: strerror(errno)))")
        }
    }

    public static func contentRangeStart(_ v: String?) -> Int64? {
        // "bytes 100-199/200"
        guard let v, v.hasPrefix("bytes ") else { return nil }
        let rest = v.dropFirst(6)
        guard let dash = rest.firstIndex(of: "-") else { return nil }
        return Int64(rest[..<dash])
    }

    /// The total size a Content-Range states ("bytes 100-199/200": 200; "*" or garbage: nil).
    public static func contentRangeTotal(_ v: String?) -> Int64? {
        guard let v, let slash = v.lastIndex(of: "/") else { return nil }
        return Int64(v[v.index(after: slash)...])
    }

    // MARK: safetensors headers

    /// The first 8 + N bytes of a safetensors file (its length prefix and JSON header), read with
    /// at most two ranged requests through `SafetensorsHeader.headerBytes`, which bounds N by
    /// safetensors' 100 MB and by the file's size as for a local file.
    public func safetensorsHeader(_ file: RepoFile, repo: RepoRef, commit: String) throws -> [UInt8] {
        guard file.size >= 8 else { throw HubFailure.refused("\(file.path): \(file.size) bytes, too small for safetensors") }
        let url = resolveURL(repo, commit: commit, path: file.path)
        let c = http()
        defer { account(c) }
        func ranged(_ from: Int64, _ count: Int64) throws -> [UInt8] {
            var out: [UInt8] = []
            var errorBody: [UInt8] = []
            let r = try withRetries(options.retry, what: "\(repo.id)/\(file.path) header") { _ in
                out = []
                do {
                    let (r, eb) = try c.send(url, headers: authHeaders, range: from...(from + count - 1), metadata: true) { buf, status, _ in
                        // A server that ignores Range sends the whole file: take what we need and stop.
                        out += buf.prefix(Int(count) - out.count)
                        return out.count < Int(count) || status == 206
                    }
                    errorBody = eb
                    return r
                } catch is ReceiverStopped {
                    return HTTPResponse(status: 200, headers: [:], url: url)
                }
            }
            try classify(r, errorBody, repo: RepoRef(repo.id, revision: commit), what: file.path)
            guard out.count == Int(count) else {
                throw HubFailure.transient("\(repo.id): \(file.path): asked for \(count) bytes at \(from), got \(out.count)")
            }
            return out
        }
        // A transfer's own failure passes through as it is; only the header's bound refuses the file.
        struct Transfer: Error { let error: Error }
        do {
            return try SafetensorsHeader.headerBytes(name: file.path, fileSize: file.size, firstRead: Int(min(file.size, 256 << 10))) { offset, count in
                do { return try ranged(Int64(offset), Int64(count)) } catch { throw Transfer(error: error) }
            }
        } catch let t as Transfer {
            throw t.error
        } catch let e as DistilError {
            throw HubFailure.refused(e.message)
        }
    }
}

/// The hash the Hub lists for a file (SHA-256 for LFS files, the git blob SHA-1 otherwise),
/// computed on a thread of its own from the bytes already written to the partial file, so
/// verification overlaps the transfer instead of slowing the receiving thread.
final class FileHasher: @unchecked Sendable {
    let expected: String
    private let file: RepoFile
    private let fd: Int32
    private let cond = NSCondition()
    private var target: Int64 = 0       // bytes of the file known to be written
    private var hashed: Int64 = 0
    private var generation = 0          // bumped by reset(): work in flight is discarded
    private var finishing = false
    private var exited = false
    private var readFailed = false
    private var sha256: SHA256?
    private var sha1: Insecure.SHA1?

    init(_ f: RepoFile, fd: Int32) {
        file = f
        self.fd = fd
        expected = f.lfsSHA256 ?? f.blobId ?? ""
        fresh()
        Thread.detachNewThread { [self] in self.loop() }
    }

    private func fresh() {
        if file.lfsSHA256 != nil { sha256 = SHA256(); sha1 = nil } else {
            var h = Insecure.SHA1()
            h.update(data: Array("blob \(file.size)\0".utf8))
            sha1 = h; sha256 = nil
        }
    }

    /// Bytes [0, n) are in the file (a smaller n than already known is ignored: workers race).
    func written(upTo n: Int64) { cond.lock(); target = max(target, n); cond.signal(); cond.unlock() }

    /// The file was truncated to zero: start over.
    func reset() {
        cond.lock(); generation += 1; target = 0; hashed = 0; readFailed = false; fresh(); cond.signal(); cond.unlock()
    }

    /// Waits until the first `size` bytes are hashed; the hex digest (nil if the file could not be read).
    func finish(size: Int64) -> String? {
        cond.lock()
        target = size; finishing = true; cond.broadcast()
        while !exited { cond.wait() }
        defer { cond.unlock() }
        guard !readFailed, hashed == size else { return nil }
        if let s = sha256 { return Hashing.hex(s.finalize()) }
        return sha1.map { Hashing.hex($0.finalize()) }
    }

    /// Stops the thread without a result (the transfer failed).
    func cancel() { cond.lock(); finishing = true; target = hashed; cond.broadcast(); while !exited { cond.wait() }; cond.unlock() }

    private func loop() {
        // Small reads that stay in the core's L2 cache: 256 KB pread+hash measured 5-10% less CPU than 4 MB.
        var buf = [UInt8](repeating: 0, count: 256 << 10)
        cond.lock()
        while true {
            while hashed >= target && !finishing { cond.wait() }
            if hashed >= target && finishing { break }
            let gen = generation, from = hashed
            let want = Int(min(Int64(buf.count), target - hashed))
            cond.unlock()
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, want, off_t(from)) }
            cond.lock()
            guard gen == generation else { continue }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                readFailed = true
                break
            }
            // Hash outside the lock: the transfer thread's written(upTo:) must not wait for a block's
            // hash. The state is moved out (so updating it copies nothing) and put back unless a
            // reset() came in meanwhile (which installed a fresh one).
            var h256 = sha256, h1 = sha1
            sha256 = nil; sha1 = nil
            cond.unlock()
            buf.withUnsafeBytes { raw in
                let part = UnsafeRawBufferPointer(rebasing: raw.prefix(n))
                if h256 != nil { h256!.update(bufferPointer: part) } else { h1?.update(bufferPointer: part) }
            }
            cond.lock()
            guard gen == generation else { continue }
            sha256 = h256; sha1 = h1
            hashed += Int64(n)
        }
        exited = true
        cond.broadcast()
        cond.unlock()
    }
}

