import DistilFormats
import Foundation

/// A file on the Hub (or any HTTP server that honours Range) read piecewise with ranged GETs:
/// what the parquet reader uses to read a remote shard's footer and only the row groups it needs.
/// The token goes only to the Hub endpoint's host, never along a redirect to another host.
/// Thread-safe (one connection, used by one read at a time).
public final class RemoteFile: RandomAccessSource, @unchecked Sendable {
    public let name: String
    public private(set) var size: Int64 = 0
    /// Body bytes received and requests sent so far (what a benchmark reports).
    public private(set) var bytesFetched: Int64 = 0
    public private(set) var requests = 0
    /// Reads within this many bytes of the end fetch the whole tail once (footer and metadata
    /// in one request).
    public var tailBytes: Int64 = 64 << 10
    /// The largest single read allowed (a lying length in a remote file must not allocate more).
    public var maxRead = 1 << 30

    private let client: HTTPClient
    private let headers: [String: String]
    private let retry: RetryPolicy
    private let lock = NSLock()
    private var cached: (offset: Int64, bytes: [UInt8])?

    /// Opens `url`, learning its size with a one-byte ranged read.
    public init(url: String, config: HubConfig = .fromEnvironment(), retry: RetryPolicy = RetryPolicy(),
                timeouts: HTTPTimeouts = HTTPTimeouts()) throws {
        name = url
        if config.offline { throw DistilError.input(url, "HF_HUB_OFFLINE is set; remote shards cannot be read") }
        client = HTTPClient(timeouts: timeouts)
        self.retry = retry
        var h = ["Accept-Encoding": "identity"]
        if let t = config.token, let host = URLComponents(string: url)?.host,
           host.lowercased() == URLComponents(string: config.endpoint)?.host?.lowercased() {
            h["Authorization"] = "Bearer \(t)"
        }
        headers = h
        let (first, total) = try fetch(0, 1)
        guard let total else { throw DistilError.input(url, "the server did not say the file's size (no Content-Range)") }
        size = total
        cached = (0, first)
    }

    public func read(offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, Int64(count) <= size - offset else {
            throw DistilError.input(name, "read of \(count) bytes at offset \(offset) is outside the file (\(size) bytes)")
        }
        guard count <= maxRead else { throw DistilError.input(name, "a read of \(count) bytes is larger than the \(maxRead) allowed") }
        if count == 0 { return [] }
        lock.lock(); defer { lock.unlock() }
        if let c = cached, offset >= c.offset, offset + Int64(count) <= c.offset + Int64(c.bytes.count) {
            let start = Int(offset - c.offset)
            return Array(c.bytes[start..<(start + count)])
        }
        var from = offset, length = Int64(count)
        if size - offset <= tailBytes { from = max(0, size - tailBytes); length = size - from }
        let (bytes, _) = try fetch(from, length)
        cached = (from, bytes)
        let start = Int(offset - from)
        return Array(bytes[start..<(start + count)])
    }

    /// GET bytes [from, from+length): exactly those bytes, and the total size from Content-Range.
    private func fetch(_ from: Int64, _ length: Int64) throws -> ([UInt8], Int64?) {
        var out: [UInt8] = []
        let before = client.bytesReceived
        defer { bytesFetched += client.bytesReceived - before }
        let r = try withRetries(retry, what: name) { _ in
            out = []
            out.reserveCapacity(Int(length))
            var status = 0
            do {
                let (r, _) = try client.send(name, headers: headers, range: from...(from + length - 1), metadata: true) { buf, st, _ in
                    // A server that ignores Range would send the whole file: refuse rather than read it.
                    status = st
                    guard st == 206, out.count + buf.count <= Int(length) else { return false }
                    out += buf
                    return true
                }
                return r
            } catch is ReceiverStopped {
                if status == 200 { return HTTPResponse(status: 200, headers: [:], url: name) }
                throw DistilError.input(name, "the server sent more than the \(length) bytes asked for")
            }
        }
        requests = client.requestsSent
        switch r.status {
        case 206: break
        case 200: throw DistilError.input(name, "the server ignores Range requests; refusing to download the whole file")
        case 404: throw DistilError.input(name, "not found (HTTP 404)")
        case 401, 403: throw DistilError.input(name, "not accessible (HTTP \(r.status)); private or gated?")
        case 416: throw DistilError.input(name, "range \(from)-\(from + length - 1) not satisfiable (the file changed?)")
        default: throw DistilError.input(name, "unexpected HTTP \(r.status)")
        }
        guard out.count == Int(length) else {
            throw DistilError.input(name, "asked for \(length) bytes at \(from), got \(out.count)")
        }
        // "bytes a-b/total"
        let total = HubClient.contentRangeTotal(r.header("content-range"))
        if let total, size > 0, total != size { throw DistilError.input(name, "the file changed size while being read (\(size) → \(total))") }
        return (out, total)
    }
}
