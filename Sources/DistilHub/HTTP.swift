import CCurl
import DistilFormats
import Foundation

/// One HTTP response: the status and headers of the final hop (names lower-cased) and the URL that
/// answered. The body goes to the request's sink, never into memory unless the caller asks.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var url: String
    public func header(_ name: String) -> String? { headers[name.lowercased()] }
    public init(status: Int, headers: [String: String], url: String) { self.status = status; self.headers = headers; self.url = url }
}

/// What went wrong below HTTP: no connection, a dropped body, a timeout. Always transient.
public struct TransportError: Error, CustomStringConvertible {
    public var url: String
    public var code: Int
    public var message: String
    public var description: String { "\(url): \(message)" }
}

/// Thrown when a body sink returned false: the receiver had what it needed or refused the body.
public struct ReceiverStopped: Error {}

/// Timeouts for one client. A transfer that moves less than `lowSpeedBytes` per second for
/// `lowSpeedSeconds` is abandoned (a stalled or very slow server), as is one whose connection
/// is not up within `connectSeconds`. Metadata requests also have a total limit.
public struct HTTPTimeouts: Sendable {
    public var connectSeconds = 10.0
    public var lowSpeedBytes = 1024
    public var lowSpeedSeconds = 30
    public var metadataSeconds = 30.0
    public init() {}
}

/// A libcurl easy handle with the project's defaults: HTTP(S) only, no automatic redirects
/// (HTTPClient follows them itself so credentials never leave the host they were meant for),
/// keep-alive across requests, a large receive buffer. Not thread-safe: one per worker.
public final class HTTPClient {
    private let handle: UnsafeMutableRawPointer
    public var timeouts: HTTPTimeouts
    public var userAgent = "distil/\(DistilVersion.tool)"
    /// Bytes of bodies received, over the client's life (what a benchmark or a test counts).
    public private(set) var bytesReceived: Int64 = 0
    /// Requests sent (each redirect hop counts).
    public private(set) var requestsSent = 0

    static let globalInit: Void = { _ = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    public init(timeouts: HTTPTimeouts = HTTPTimeouts()) {
        _ = HTTPClient.globalInit
        guard let h = curl_easy_init() else { fatalError("curl_easy_init failed (out of memory)") }
        handle = h
        self.timeouts = timeouts
    }

    deinit { curl_easy_cleanup(handle) }

    final class Context {
        var status = 0
        var headers: [String: String] = [:]
        var sink: ((UnsafeRawBufferPointer) -> Bool)?
        var aborted = false
        var received: Int64 = 0
    }

    /// Sends one request and follows redirects (at most 10). `Authorization` is sent only to the
    /// host of the first URL; a redirect from https to http is refused. Bodies of 2xx answers
    /// go to `sink` (return false to abort the transfer); bodies of other answers are read into
    /// the returned error text (at most 4 KB kept). `metadata` bounds the whole request by
    /// `timeouts.metadataSeconds`.
    public func send(_ url: String, method: String = "GET", headers: [String: String] = [:],
                     range: ClosedRange<Int64>? = nil, rangeFrom: Int64? = nil, metadata: Bool = false,
                     sink: ((UnsafeRawBufferPointer, Int, [String: String]) -> Bool)? = nil) throws -> (HTTPResponse, [UInt8]) {
        var current = url
        guard let origin = HTTPClient.origin(url) else { throw DistilError.input(url, "not a valid URL") }
        for _ in 0...10 {
            guard let comps = URLComponents(string: current), let here = HTTPClient.origin(current) else {
                throw DistilError.input(current, "not a valid URL")
            }
            var h = headers
            if here != origin { h.removeValue(forKey: "Authorization") }
            var errorBody: [UInt8] = []
            let (status, respHeaders) = try perform(current, method: method, headers: h, range: range,
                                                    rangeFrom: rangeFrom, metadata: metadata) { buf, status, hdrs in
                if (200..<300).contains(status) { return sink?(buf, status, hdrs) ?? true }
                if errorBody.count < 4096 { errorBody += buf.prefix(4096 - errorBody.count) }
                return true
            }
            if [301, 302, 303, 307, 308].contains(status), let loc = respHeaders["location"] {
                guard let next = URL(string: loc, relativeTo: URL(string: current))?.absoluteURL.absoluteString else {
                    throw DistilError.input(current, "redirect to an invalid location '\(loc.prefix(200))'")
                }
                if comps.scheme == "https" && next.hasPrefix("http:") {
                    throw DistilError.input(current, "refusing a redirect from https to plain http")
                }
                current = next
                continue
            }
            return (HTTPResponse(status: status, headers: respHeaders, url: current), errorBody)
        }
        throw DistilError.input(url, "more than 10 redirects")
    }

    static func defaultPort(_ scheme: String?) -> Int { scheme == "http" ? 80 : 443 }

    /// "scheme://host:port" of a URL (host lower-cased, default port filled in): what credentials are scoped to.
    static func origin(_ url: String) -> String? {
        guard let c = URLComponents(string: url), let host = c.host else { return nil }
        return "\(c.scheme ?? "")://\(host.lowercased()):\(c.port ?? defaultPort(c.scheme))"
    }

    private func perform(_ url: String, method: String, headers: [String: String], range: ClosedRange<Int64>?,
                         rangeFrom: Int64?, metadata: Bool,
                         body: @escaping (UnsafeRawBufferPointer, Int, [String: String]) -> Bool) throws -> (Int, [String: String]) {
        let h = handle
        curl_easy_reset(h)
        let ctx = Context()
        ctx.sink = { [unowned ctx] buf in body(buf, ctx.status, ctx.headers) }
        let unmanaged = Unmanaged.passRetained(ctx)
        defer { unmanaged.release() }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        defer { curl_slist_free_all(list) }
        for (k, v) in headers.sorted(by: { $0.key < $1.key }) {
            // Header values are ours or the user's; strip CR/LF so nothing can be injected.
            let clean = v.filter { $0 != "\r" && $0 != "\n" }
            list = curl_slist_append(list, "\(k): \(clean)")
        }
        list = curl_slist_append(list, "Expect:")
        var errbuf = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let code: CURLcode = errbuf.withUnsafeMutableBufferPointer { eb in
            _ = dl_curl_setopt_ptr(h, CURLOPT_ERRORBUFFER, eb.baseAddress)
            _ = url.withCString { dl_curl_setopt_ptr(h, CURLOPT_URL, $0) }
            _ = "http,https".withCString { dl_curl_setopt_ptr(h, CURLOPT_PROTOCOLS_STR, $0) }
            _ = userAgent.withCString { dl_curl_setopt_ptr(h, CURLOPT_USERAGENT, $0) }
            _ = dl_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
            _ = dl_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0)
            _ = dl_curl_setopt_long(h, CURLOPT_BUFFERSIZE, 512 * 1024)
            _ = dl_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
            _ = dl_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(timeouts.connectSeconds * 1000))
            _ = dl_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, timeouts.lowSpeedBytes)
            _ = dl_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, timeouts.lowSpeedSeconds)
            if metadata { _ = dl_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(timeouts.metadataSeconds * 1000)) }
            if method == "HEAD" { _ = dl_curl_setopt_long(h, CURLOPT_NOBODY, 1) }
            if let r = range { _ = "\(r.lowerBound)-\(r.upperBound)".withCString { dl_curl_setopt_ptr(h, CURLOPT_RANGE, $0) } }
            else if let from = rangeFrom { _ = "\(from)-".withCString { dl_curl_setopt_ptr(h, CURLOPT_RANGE, $0) } }
            _ = dl_curl_setopt_ptr(h, CURLOPT_HTTPHEADER, list)
            _ = dl_curl_setopt_write(h, CURLOPT_HEADERFUNCTION, headerCallback)
            _ = dl_curl_setopt_ptr(h, CURLOPT_HEADERDATA, unmanaged.toOpaque())
            _ = dl_curl_setopt_write(h, CURLOPT_WRITEFUNCTION, writeCallback)
            _ = dl_curl_setopt_ptr(h, CURLOPT_WRITEDATA, unmanaged.toOpaque())
            requestsSent += 1
            return curl_easy_perform(h)
        }
        bytesReceived += ctx.received
        if code != CURLE_OK {
            if ctx.aborted && code == CURLE_WRITE_ERROR { throw ReceiverStopped() }
            let detail = String(cString: errbuf)
            let text = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw TransportError(url: url, code: Int(code.rawValue), message: text)
        }
        return (ctx.status, ctx.headers)
    }
}

private let headerCallback: dl_curl_write_cb = { ptr, size, n, user in
    let count = size * n
    guard let ptr, let user else { return count }
    let ctx = Unmanaged<HTTPClient.Context>.fromOpaque(user).takeUnretainedValue()
    let line = String(decoding: UnsafeRawBufferPointer(start: ptr, count: count), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
        // A new response (after a 100 Continue or on a new hop): start afresh.
        ctx.headers = [:]
        let parts = line.split(separator: " ", maxSplits: 2)
        ctx.status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
    } else if let colon = line.firstIndex(of: ":"), ctx.headers.count < 200 {
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        ctx.headers[name] = value
    }
    return count
}

private let writeCallback: dl_curl_write_cb = { ptr, size, n, user in
    let count = size * n
    guard let ptr, let user else { return 0 }
    let ctx = Unmanaged<HTTPClient.Context>.fromOpaque(user).takeUnretainedValue()
    ctx.received += Int64(count)
    if let sink = ctx.sink, !sink(UnsafeRawBufferPointer(start: ptr, count: count)) {
        ctx.aborted = true
        return 0
    }
    return count
}
