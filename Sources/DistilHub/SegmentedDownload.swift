import DistilFormats
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// One large file over several ranged connections.
//
// The rest of the file [offset, size) is cut into chunks of `FetchOptions.segmentBytes`; each of
// `connectionsPerFile` workers takes the next chunk in file order, GETs exactly that range (206 with
// the matching Content-Range, or the server does not honour ranges and the download continues on one
// connection) and pwrites it at its offset. The hashing thread follows the frontier: the contiguous
// prefix of complete bytes, so SHA-256 still sees the file in order and finishes a few chunks after
// the last byte arrives.
//
// Because chunks land out of order, the partial file may have holes. huggingface_hub resumes an
// `ETAG.incomplete` from its size, so while chunks are in flight the file is named
// `ETAG.distil-part.incomplete` instead, with the frontier in `ETAG.distil-frontier.incomplete` (decimal). Whenever a
// segmented attempt ends — done, failed, or the server ignores ranges — the file is cut back to its
// frontier and renamed to `ETAG.incomplete`: a plain prefix again, resumable by either client. A run
// killed mid-download leaves the `.distil-part` pair, which the next run turns into that prefix first.

/// A ranged answer that was not the range asked for: the server does not honour ranges.
struct RangesUnsupported: Error {}
/// Another worker of the same download failed; this one stopped.
struct SegmentCancelled: Error {}

/// The chunks of one segmented download: which are taken, how much of each is written, and the
/// frontier (the end of the contiguous prefix of written bytes). Thread-safe.
final class SegmentBoard: @unchecked Sendable {
    let start: Int64, size: Int64, chunk: Int64
    let count: Int
    private let lock = NSLock()
    private var next = 0
    private var written: [Int64]
    private var head = 0              // the first chunk not yet complete
    private var signalled: Int64      // the frontier last handed to the hasher
    private var failedFlag = false
    private let sidecar: Int32        // fd of ETAG.distil-frontier.incomplete, or -1
    /// Body bytes written by all workers (counted in the progress line).
    private(set) var total: Int64 = 0

    init(start: Int64, size: Int64, chunk: Int64, sidecar: Int32) {
        self.start = start; self.size = size; self.chunk = max(1, chunk); self.sidecar = sidecar
        count = Int((size - start + self.chunk - 1) / self.chunk)
        written = Array(repeating: 0, count: count)
        signalled = start
        record(start)
    }

    /// Bytes [lo, hi) of chunk k.
    func range(_ k: Int) -> (lo: Int64, hi: Int64) {
        let lo = start + Int64(k) * chunk
        return (lo, min(size, lo + chunk))
    }

    /// The next chunk to fetch, or nil when all are taken or a worker failed.
    func take() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard !failedFlag, next < count else { return nil }
        next += 1
        return next - 1
    }

    /// Chunk k now has its first `n` bytes written. Returns the new frontier when the hasher
    /// should be told (once a megabyte, and at every chunk boundary), else nil.
    func wrote(_ k: Int, _ n: Int64, added: Int) -> Int64? {
        lock.lock(); defer { lock.unlock() }
        written[k] = n
        total += Int64(added)
        let before = head
        while head < count && written[head] == range(head).hi - range(head).lo { head += 1 }
        let f = frontierLocked
        if head != before { record(f) }
        guard f - signalled >= 1 << 20 || head != before else { return nil }
        signalled = f
        return f
    }

    var frontier: Int64 { lock.lock(); defer { lock.unlock() }; return frontierLocked }
    private var frontierLocked: Int64 { head < count ? range(head).lo + written[head] : size }

    func fail() { lock.lock(); failedFlag = true; lock.unlock() }
    var failed: Bool { lock.lock(); defer { lock.unlock() }; return failedFlag }

    /// Keeps the frontier on disk so a run killed mid-download can keep the verified-to-be prefix.
    private func record(_ f: Int64) {
        guard sidecar >= 0 else { return }
        let text = Array(String(f).utf8)
        _ = text.withUnsafeBytes { pwrite(sidecar, $0.baseAddress!, $0.count, 0) }
        _ = ftruncate(sidecar, off_t(text.count))
    }
}

/// The errors of a download's workers.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Error] = []
    func add(_ e: Error) { lock.lock(); list.append(e); lock.unlock() }
    var all: [Error] { lock.lock(); defer { lock.unlock() }; return list }
}

extension HubClient {
    // Both end in ".incomplete" so that huggingface_hub's scan (`*/blobs/*.incomplete`) and
    // `hf cache` see and can clean them; neither is the `ETAG.incomplete` it resumes by size.
    static let partSuffix = ".distil-part.incomplete"
    static let frontierSuffix = ".distil-frontier.incomplete"

    /// Whether the rest of a file is worth fetching over several connections.
    func segmented(_ file: RepoFile, from offset: Int64) -> Bool {
        options.connectionsPerFile > 1 && options.segmentBytes > 0 && file.size - offset >= 2 * options.segmentBytes
    }

    /// Turns what a killed segmented run left (`ETAG.distil-part` and its frontier) into a plain
    /// prefix at `ETAG.incomplete`, unless an `.incomplete` at least as long is already there.
    func recoverSegments(blob: String, size: Int64) {
        let part = blob + HubClient.partSuffix, side = blob + HubClient.frontierSuffix, inc = blob + ".incomplete"
        // Earlier versions named the pair ETAG.distil-part and ETAG.distil-part.frontier.
        if rename(blob + ".distil-part", part) == 0 { _ = rename(blob + ".distil-part.frontier", side) }
        defer { unlink(side) }
        var st = stat()
        guard stat(part, &st) == 0 else { return }
        var frontier: Int64 = 0
        if let b = try? readFile(side, limit: 32), let f = Int64(String(decoding: b, as: UTF8.self)), f >= 0 { frontier = f }
        frontier = min(frontier, Int64(st.st_size), size)
        var have = stat()
        if stat(inc, &have) == 0 && Int64(have.st_size) >= frontier { unlink(part); return }
        if frontier == 0 || truncate(part, off_t(frontier)) != 0 || rename(part, inc) != 0 { unlink(part); return }
        Log.info("\((blob as NSString).lastPathComponent): kept \(frontier) bytes of an interrupted segmented download")
    }

    /// Fetches [offset, size) of `file` into `fd` over several connections. On return the file is
    /// back at `inc`, cut to its frontier, and `offset` is that frontier: true when the file is
    /// complete, false when the server turned out not to honour ranges (the caller continues on
    /// one connection). Throws the first worker's failure (after all workers stopped), with the
    /// frontier kept at `inc` for the next run to resume.
    func fetchSegments(_ file: RepoFile, fd: Int32, inc: String, blob: String, offset: inout Int64, url: String,
                       repo: RepoRef, commit: String, verifier: FileHasher, progress: ProgressReporter?) throws -> Bool {
        let part = blob + HubClient.partSuffix, sidePath = blob + HubClient.frontierSuffix
        let side = open(sidePath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard side >= 0 else { throw DistilError.input(sidePath, "cannot open: \(String(cString: strerror(errno)))") }
        guard rename(inc, part) == 0 else {
            let e = errno; close(side); unlink(sidePath)
            throw DistilError.input(inc, "cannot rename to \(part): \(String(cString: strerror(e)))")
        }
        let board = SegmentBoard(start: offset, size: file.size, chunk: options.segmentBytes, sidecar: side)
        let workers = max(1, min(options.connectionsPerFile, board.count))
        let failures = Failures()
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    try self.segmentWorker(file, board: board, fd: fd, writing: part, url: url, repo: repo, commit: commit,
                                           verifier: verifier, progress: progress)
                } catch {
                    board.fail()
                    failures.add(error)
                }
            }
        }
        group.wait()
        // Back to a plain prefix under the name huggingface_hub knows.
        let frontier = board.frontier
        let cut = ftruncate(fd, off_t(frontier)) == 0 || frontier == file.size
        let back = rename(part, inc) == 0
        close(side); unlink(sidePath)
        progress?.skip(-(board.total - (frontier - board.start)))   // bytes beyond the frontier were dropped
        offset = frontier
        verifier.written(upTo: frontier)
        guard back, cut else { throw DistilError.input(part, "cannot cut back and rename the partial file: \(String(cString: strerror(errno)))") }
        let errors = failures.all
        let real = errors.filter { !($0 is SegmentCancelled) }
        if real.isEmpty && errors.isEmpty { return frontier == file.size }
        if !real.isEmpty && real.allSatisfy({ $0 is RangesUnsupported }) {
            Log.info("\(repo.id): \(file.path): the server does not honour ranges; continuing on one connection at \(frontier)")
            return false
        }
        throw real.first(where: { !($0 is RangesUnsupported) }) ?? errors[0]
    }

    /// One connection of a segmented download: takes chunks until none are left.
    private func segmentWorker(_ file: RepoFile, board: SegmentBoard, fd: Int32, writing part: String, url resolve: String, repo: RepoRef,
                               commit: String, verifier: FileHasher, progress: ProgressReporter?) throws {
        let c = http()
        defer { account(c) }
        // After the first answer, the URL that served it (the CDN's) is asked directly; credentials
        // only ever go to the endpoint's own origin.
        var url = resolve
        let home = HTTPClient.origin(config.endpoint)
        while let k = board.take() {
            let (lo, hi) = board.range(k)
            var got: Int64 = 0
            var fellBack = false
            while true {
                let before = got
                enum Stop { case ranges, overlong, cancelled, write(String) }
                var stop: Stop?
                var errorBody: [UInt8] = []
                var headers = authHeaders
                if HTTPClient.origin(url) != home { headers.removeValue(forKey: "Authorization") }
                let what = "\(repo.id)/\(file.path) bytes \(lo)-\(hi - 1)"
                let r = try withRetries(options.retry, what: what) { _ in
                    if board.failed { throw SegmentCancelled() }
                    let from = lo + got
                    var first = true
                    do {
                        let (r, eb) = try c.send(url, headers: headers, range: from...(hi - 1)) { buf, status, hdrs in
                            if first {
                                first = false
                                guard status == 206, HubClient.contentRangeStart(hdrs["content-range"]) == from else { stop = .ranges; return false }
                            }
                            if got + Int64(buf.count) > hi - lo { stop = .overlong; return false }
                            var done = 0
                            while done < buf.count {
                                let n = pwrite(fd, buf.baseAddress! + done, buf.count - done, off_t(lo + got) + off_t(done))
                                if n < 0 { if errno == EINTR { continue }; stop = .write(String(cString: strerror(errno))); return false }
                                done += n
                            }
                            got += Int64(buf.count)
                            if let f = board.wrote(k, got, added: buf.count) { verifier.written(upTo: f) }
                            progress?.advance(buf.count)
                            if board.failed { stop = .cancelled; return false }
                            return true
                        }
                        errorBody = eb
                        return r
                    } catch is ReceiverStopped {
                        switch stop {
                        case .ranges?: throw RangesUnsupported()
                        case .cancelled?: throw SegmentCancelled()
                        case .write(let e)?: throw DistilError.input(part, "write failed: \(e)")
                        case .overlong?, nil:
                            throw HubFailure.transient("\(what): the server sent more than the range asked for")
                        }
                    }
                }
                if !(200..<300).contains(r.status) {
                    // A CDN link that stopped working (expired signature): go through the Hub once more.
                    if url != resolve && !fellBack { url = resolve; fellBack = true; continue }
                    try classify(r, errorBody, repo: RepoRef(repo.id, revision: commit), what: file.path)
                }
                url = r.url
                if got == hi - lo { break }
                // The body ended early without a transport error: ask for the rest, if it moved at all.
                if got == before { throw HubFailure.transient("\(what): the body ended after \(got) of \(hi - lo) bytes") }
            }
        }
    }
}
