import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 that answers the Hub endpoints dl-fetch uses, with
/// faults injected on demand. For tests and the download benchmark only; never shipped in a tool.
///
///     GET  /api/models/{repo}/revision/{rev}?blobs=true    model info with the file listing
///     HEAD|GET /{repo}/resolve/{rev}/{path}                 small files served here; LFS files
///                                                           redirected (302) to /cdn/{sha256}
///     GET  /cdn/{sha256}                                    LFS content, with Range support
public final class LoopbackHub: @unchecked Sendable {
    public struct File {
        public var path: String
        public let data: [UInt8]
        public var lfs: Bool
        /// The content's SHA-256 and git blob id, computed once.
        public let sha256: String
        public let gitBlobId: String
        public init(_ path: String, _ data: [UInt8], lfs: Bool? = nil) {
            self.path = path; self.data = data
            self.lfs = lfs ?? (path.hasSuffix(".safetensors") || data.count > 1_000_000)
            sha256 = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            var h = Insecure.SHA1()
            h.update(data: Array("blob \(data.count)\0".utf8)); h.update(data: data)
            gitBlobId = h.finalize().map { String(format: "%02x", $0) }.joined()
        }
    }

    public struct Repo {
        public var id: String
        public var commit: String
        public var branch = "main"
        public var files: [File]
        /// When set, every request for this repo needs "Authorization: Bearer <token>" (else 401).
        public var token: String?
        /// Answer 403 with X-Error-Code: GatedRepo.
        public var gated = false
        public init(id: String, commit: String, files: [File], token: String? = nil) {
            self.id = id; self.commit = commit; self.files = files; self.token = token
        }
    }

    /// A fault applied to the next request whose path contains `match` (each fault fires once).
    public enum Fault {
        /// Answer with this status (and headers), no body but a short text.
        case status(Int, [String: String])
        /// Send the headers and the first `n` bytes of the body, then drop the connection.
        case dropAfter(Int)
        /// Flip a byte in the body.
        case corrupt
        /// Send the body at about this many bytes per second.
        case slow(Int)
        /// Ignore a Range header (answer 200 with the whole body).
        case ignoreRange
        /// Send more bytes than the listing says.
        case extraBytes
    }

    public struct Logged: Sendable {
        public var method: String
        public var target: String
        public var host: String
        public var headers: [String: String]
    }

    private let lock = NSLock()
    private var repos: [String: Repo] = [:]
    private var faults: [(match: String, fault: Fault)] = []
    private var log: [Logged] = []
    private var listener: Int32 = -1
    public private(set) var port: UInt16 = 0
    /// Redirect LFS downloads to this host name instead of the one asked (e.g. "localhost" when
    /// the client used 127.0.0.1): a different host, so credentials must not follow.
    public var cdnHost: String?
    /// When set, every body is paced to about this many bytes per second per connection (a WAN-like
    /// link for the benchmark); otherwise bodies go as fast as loopback allows.
    public var bytesPerSecond: Int?
    /// Bytes of response bodies sent.
    public private(set) var bodyBytesSent: Int64 = 0
    /// CPU seconds the server's connection threads have used (what the benchmark reports as the
    /// server's share of a machine it shares with the client), counted when each request is answered.
    public var cpuSeconds: Double { lock.lock(); defer { lock.unlock() }; return cpuUsed }
    private var cpuUsed = 0.0
    private var cpuMarks: [Int32: Double] = [:]

    public init(repos: [Repo]) {
        for r in repos { self.repos[r.id] = r }
    }

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    public func add(_ r: Repo) { lock.lock(); repos[r.id] = r; lock.unlock() }
    public func inject(_ match: String, _ f: Fault) { lock.lock(); faults.append((match, f)); lock.unlock() }
    public var requests: [Logged] { lock.lock(); defer { lock.unlock() }; return log }
    public func clearLog() { lock.lock(); log = []; lock.unlock() }
    public var pendingFaults: Int { lock.lock(); defer { lock.unlock() }; return faults.count }

    public func start() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NSError(domain: "LoopbackHub", code: Int(errno)) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0, listen(fd, 64) == 0 else { close(fd); throw NSError(domain: "LoopbackHub", code: Int(errno)) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: addr.sin_port)
        listener = fd
        Thread.detachNewThread { [self] in
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { if errno == EINTR { continue }; return }
                Thread.detachNewThread { [self] in self.serve(c) }
            }
        }
    }

    public func stop() {
        if listener >= 0 { shutdown(listener, Int32(SHUT_RDWR)); close(listener); listener = -1 }
    }

    deinit { stop() }

    // MARK: connection handling

    private func serve(_ fd: Int32) {
        lock.lock(); cpuMarks[fd] = LoopbackHub.threadCPU(); lock.unlock()
        defer { charge(fd); lock.lock(); cpuMarks[fd] = nil; lock.unlock(); close(fd) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            // Read one request head.
            var end: Int?
            while end == nil {
                if let e = LoopbackHub.headEnd(pending) { end = e; break }
                if pending.count > 65536 { return }
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
                if n <= 0 { return }
                pending += buf[0..<n]
            }
            let head = String(decoding: pending[0..<end!], as: UTF8.self)
            pending.removeFirst(end! + 4)
            var lines = head.components(separatedBy: "\r\n")
            let requestLine = lines.removeFirst().split(separator: " ")
            guard requestLine.count >= 2 else { return }
            var headers: [String: String] = [:]
            for l in lines {
                guard let c = l.firstIndex(of: ":") else { continue }
                headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
            let method = String(requestLine[0]), target = String(requestLine[1])
            lock.lock()
            log.append(Logged(method: method, target: target, host: headers["host"] ?? "", headers: headers))
            lock.unlock()
            let ok = respond(fd, method: method, target: target, headers: headers)
            charge(fd)
            if !ok { return }
            if headers["connection"]?.lowercased() == "close" { return }
        }
    }

    /// Adds the CPU time this connection's thread used since its last charge (called on that thread,
    /// after every body slice too, so a reader sees the server's share of a transfer as soon as it ends).
    private func charge(_ fd: Int32) {
        let now = LoopbackHub.threadCPU()
        lock.lock(); cpuUsed += now - (cpuMarks[fd] ?? now); cpuMarks[fd] = now; lock.unlock()
    }

    static func threadCPU() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    private func takeFault(_ target: String) -> Fault? {
        lock.lock(); defer { lock.unlock() }
        guard let i = faults.firstIndex(where: { target.contains($0.match) }) else { return nil }
        return faults.remove(at: i).fault
    }

    /// Answers one request; false to close the connection.
    private func respond(_ fd: Int32, method: String, target: String, headers: [String: String]) -> Bool {
        let fault = takeFault(target)
        if case .status(let code, let extra)? = fault {
            return send(fd, status: code, headers: extra, body: Array("fault \(code)".utf8), head: method == "HEAD")
        }
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        let decoded = path.removingPercentEncoding ?? path
        lock.lock(); let allRepos = repos; lock.unlock()

        if decoded.hasPrefix("/cdn/") {
            let sha = String(decoded.dropFirst(5))
            guard let f = allRepos.values.flatMap(\.files).first(where: { $0.lfs && $0.sha256 == sha }) else {
                return send(fd, status: 404, headers: [:], body: Array("no such blob".utf8), head: method == "HEAD")
            }
            return sendBody(fd, f.data, method: method, headers: headers, extra: [:], fault: fault)
        }
        if decoded.hasPrefix("/api/models/") {
            let rest = String(decoded.dropFirst("/api/models/".count))
            guard let r = rest.range(of: "/revision/") else { return send(fd, status: 404, headers: [:], body: [], head: false) }
            let id = String(rest[..<r.lowerBound]), rev = String(rest[r.upperBound...])
            guard let repo = allRepos[id] else { return notFound(fd, "RepoNotFound", method) }
            if let denied = authFailure(repo, headers) { return send(fd, status: denied.0, headers: denied.1, body: Array("denied".utf8), head: false) }
            guard rev == repo.branch || rev == repo.commit else { return notFound(fd, "RevisionNotFound", method) }
            var siblings: [[String: Any]] = []
            for f in repo.files {
                var e: [String: Any] = ["rfilename": f.path, "size": f.data.count, "blobId": f.gitBlobId]
                if f.lfs { e["lfs"] = ["sha256": f.sha256, "size": f.data.count, "pointerSize": 134] }
                siblings.append(e)
            }
            let json: [String: Any] = ["id": repo.id, "modelId": repo.id, "sha": repo.commit, "private": repo.token != nil,
                                       "gated": repo.gated ? "manual" : false, "siblings": siblings]
            let body = (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])).map { Array($0) } ?? []
            return sendBody(fd, body, method: method, headers: headers, extra: ["Content-Type": "application/json"], fault: fault)
        }
        if let r = decoded.range(of: "/resolve/") {
            let id = String(decoded[decoded.index(after: decoded.startIndex)..<r.lowerBound])
            let rest = decoded[r.upperBound...]
            guard let slash = rest.firstIndex(of: "/") else { return notFound(fd, "EntryNotFound", method) }
            let rev = String(rest[..<slash]), filePath = String(rest[rest.index(after: slash)...])
            guard let repo = allRepos[id] else { return notFound(fd, "RepoNotFound", method) }
            if let denied = authFailure(repo, headers) { return send(fd, status: denied.0, headers: denied.1, body: Array("denied".utf8), head: method == "HEAD") }
            guard rev == repo.branch || rev == repo.commit else { return notFound(fd, "RevisionNotFound", method) }
            guard let f = repo.files.first(where: { $0.path == filePath }) else { return notFound(fd, "EntryNotFound", method) }
            var extra = ["X-Repo-Commit": repo.commit]
            if f.lfs {
                extra["X-Linked-Etag"] = "\"\(f.sha256)\""
                extra["X-Linked-Size"] = "\(f.data.count)"
                extra["ETag"] = "\"\(f.sha256)\""
                let host = cdnHost.map { "\($0):\(port)" } ?? (headers["host"] ?? "127.0.0.1:\(port)")
                extra["Location"] = "http://\(host)/cdn/\(f.sha256)"
                if let fault { reinject(fault) }   // faults on a file apply to its content
                return send(fd, status: 302, headers: extra, body: [], head: method == "HEAD")
            }
            extra["ETag"] = "\"\(f.gitBlobId)\""
            return sendBody(fd, f.data, method: method, headers: headers, extra: extra, fault: fault)
        }
        return send(fd, status: 404, headers: [:], body: Array("not found".utf8), head: method == "HEAD")
    }

    private func reinject(_ f: Fault) {
        // The fault was taken on the redirecting request; move it to the content request.
        lock.lock(); faults.insert(("/cdn/", f), at: 0); lock.unlock()
    }

    private func authFailure(_ repo: Repo, _ headers: [String: String]) -> (Int, [String: String])? {
        if repo.gated { return (403, ["X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model \(repo.id) is restricted."]) }
        if let t = repo.token, headers["authorization"] != "Bearer \(t)" {
            return (401, ["X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"])
        }
        return nil
    }

    private func notFound(_ fd: Int32, _ code: String, _ method: String) -> Bool {
        send(fd, status: 404, headers: ["X-Error-Code": code, "X-Error-Message": code], body: Array("\(code)".utf8), head: method == "HEAD")
    }

    private func sendBody(_ fd: Int32, _ data: [UInt8], method: String, headers: [String: String],
                          extra: [String: String], fault: Fault?) -> Bool {
        var status = 200
        var lo = 0, hi = data.count   // [lo, hi)
        var h = extra
        h["Accept-Ranges"] = "bytes"
        if let range = headers["range"], !(fault.map { if case .ignoreRange = $0 { return true }; return false } ?? false) {
            // bytes=a-b or bytes=a-
            let spec = range.replacingOccurrences(of: "bytes=", with: "").split(separator: "-", omittingEmptySubsequences: false)
            if spec.count == 2, let a = Int(spec[0]) {
                let b = Int(spec[1]).map { min($0 + 1, data.count) } ?? data.count
                if a >= data.count && data.count > 0 || a > b {
                    return send(fd, status: 416, headers: ["Content-Range": "bytes */\(data.count)"], body: [], head: method == "HEAD")
                }
                status = 206; lo = a; hi = b
                h["Content-Range"] = "bytes \(lo)-\(hi - 1)/\(data.count)"
            }
        }
        // The body is sent straight from `data` unless a fault alters it.
        var body = data[lo..<hi]
        if case .corrupt? = fault, !body.isEmpty { body = ArraySlice(body); body[body.startIndex + body.count / 2] ^= 0x55 }
        if case .extraBytes? = fault { body = ArraySlice(Array(body) + [UInt8](repeating: 0x41, count: 4096)) }
        var limit = body.count
        var bps: Int?
        if case .dropAfter(let n)? = fault { limit = min(n, body.count) }
        if case .slow(let rate)? = fault { bps = rate }
        h["Content-Length"] = "\(body.count)"
        guard writeHead(fd, status: status, headers: h) else { return false }
        if method == "HEAD" { return true }
        let pace = bps ?? bytesPerSecond
        let ok = body.withUnsafeBytes { raw -> Bool in
            var off = 0
            // Paced bodies go in 10 ms slices on a fixed schedule (no drift); others in 4 MB writes.
            let chunk = pace.map { max(1, $0 / 100) } ?? (4 << 20)
            let start = Date()
            var slices = 0
            while off < limit {
                let n = min(chunk, limit - off)
                if !writeAll(fd, raw.baseAddress! + off, n) { return false }
                off += n
                lock.lock(); bodyBytesSent += Int64(n); lock.unlock()
                charge(fd)
                if pace != nil {
                    slices += 1
                    let due = Double(slices) * 0.01 - Date().timeIntervalSince(start)
                    if due > 0 { usleep(useconds_t(due * 1e6)) }
                }
            }
            return true
        }
        if limit < body.count { shutdown(fd, Int32(SHUT_RDWR)); return false }
        return ok
    }

    private func send(_ fd: Int32, status: Int, headers: [String: String], body: [UInt8], head: Bool) -> Bool {
        var h = headers
        h["Content-Length"] = "\(body.count)"
        guard writeHead(fd, status: status, headers: h) else { return false }
        if head || body.isEmpty { return true }
        return body.withUnsafeBytes { writeAll(fd, $0.baseAddress!, $0.count) }
    }

    private func writeHead(_ fd: Int32, status: Int, headers: [String: String]) -> Bool {
        var s = "HTTP/1.1 \(status) \(LoopbackHub.reason(status))\r\n"
        for (k, v) in headers.sorted(by: { $0.key < $1.key }) { s += "\(k): \(v)\r\n" }
        s += "\r\n"
        let b = Array(s.utf8)
        return b.withUnsafeBytes { writeAll(fd, $0.baseAddress!, $0.count) }
    }

    private func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Bool {
        var off = 0
        while off < n {
            let w = Glibc.send(fd, p + off, n - off, Int32(MSG_NOSIGNAL))
            if w < 0 { if errno == EINTR { continue }; return false }
            off += w
        }
        return true
    }

    static func reason(_ s: Int) -> String {
        switch s {
        case 200: return "OK"
        case 206: return "Partial Content"
        case 302: return "Found"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 416: return "Range Not Satisfiable"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        default: return "Status"
        }
    }
}
