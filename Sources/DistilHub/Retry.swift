import DistilFormats
import Foundation

/// What a failed Hub request means for the model. Only the first three disqualify a model;
/// the rest are the validator's or the Hub's trouble and are retried in a later epoch.
public enum HubFailure: Error, CustomStringConvertible, Sendable {
    /// 404: the repo (or a file the listing named) does not exist.
    case notFound(String)
    /// 401/403: private, gated or disabled for us.
    case privateOrGated(String)
    /// The pinned revision is gone, or a file no longer matches the listing: changed after commit.
    case changed(String)
    /// 429 after the retries allowed, 5xx, connection failures, timeouts, a body that failed
    /// verification in transit.
    case transient(String)
    /// Something refused before any request (bad repo id, unsafe file name, too large).
    case refused(String)

    public var outcome: FetchOutcome {
        switch self {
        case .notFound: return .notFound
        case .privateOrGated: return .private
        case .changed: return .changed
        case .transient: return .transient
        case .refused: return .error
        }
    }

    public var description: String {
        switch self {
        case .notFound(let m), .privateOrGated(let m), .changed(let m), .transient(let m), .refused(let m): return m
        }
    }
}

/// Retries with exponential backoff and full jitter; 429 waits what the server asks
/// (Retry-After seconds or HTTP date, or the RateLimit header's reset) if that is within
/// `maxWait`. Bounded: at most `attempts` tries per request.
public struct RetryPolicy: Sendable {
    public var attempts = 6
    public var baseDelay = 1.0
    public var maxDelay = 30.0
    /// The longest server-requested wait honoured; a longer one ends the request as transient.
    public var maxWait = 300.0
    public init() {}

    /// Delay before retry number `n` (1-based) after a 5xx or a transport error.
    public func backoff(_ n: Int) -> Double {
        let cap = min(maxDelay, baseDelay * pow(2, Double(n - 1)))
        return cap / 2 + Double.random(in: 0...(cap / 2))
    }

    /// The wait a 429 (or 503) asks for, in seconds, if it says.
    public static func requestedWait(_ r: HTTPResponse, now: Date = Date()) -> Double? {
        if let ra = r.header("retry-after")?.trimmingCharacters(in: .whitespaces) {
            if let s = Double(ra), s >= 0, s.isFinite { return s }
            if let d = RetryPolicy.httpDate(ra) { return max(0, d.timeIntervalSince(now)) }
        }
        // IETF RateLimit fields: `RateLimit: "name";r=0;t=42` (draft 9+) or `RateLimit: limit=…, remaining=0, reset=42`,
        // or a separate RateLimit-Reset / X-RateLimit-Reset header.
        if let rl = r.header("ratelimit") {
            for part in rl.split(whereSeparator: { $0 == ";" || $0 == "," }) {
                let kv = part.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0] == "t" || kv[0] == "reset", let s = Double(kv[1]), s >= 0, s.isFinite { return s }
            }
        }
        for name in ["ratelimit-reset", "x-ratelimit-reset"] {
            if let v = r.header(name), let s = Double(v), s >= 0, s.isFinite {
                // Some servers send an epoch time here rather than seconds to wait.
                return s > 1_000_000_000 ? max(0, s - now.timeIntervalSince1970) : s
            }
        }
        return nil
    }
}

extension RetryPolicy {
    /// An HTTP date in RFC 9110's IMF-fixdate form, "Sun, 06 Nov 1994 08:49:37 GMT"; nil for anything
    /// else. Parsed here rather than by Foundation's DateFormatter, which traps (a fatal "Incorrect
    /// range") on some non-ASCII input: a server's header must never stop the tool (found by the
    /// http-headers fuzz target; Fuzz/regressions/http-headers).
    public static func httpDate(_ s: String) -> Date? {
        let b = Array(s.utf8)
        guard b.count == 29, b[3] == UInt8(ascii: ","), b[4] == 0x20, b[7] == 0x20, b[11] == 0x20, b[16] == 0x20,
              b[19] == UInt8(ascii: ":"), b[22] == UInt8(ascii: ":"), b[25] == 0x20, Array(b[26...]) == Array("GMT".utf8),
              ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(String(decoding: b[0..<3], as: UTF8.self)),
              let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .firstIndex(of: String(decoding: b[8..<11], as: UTF8.self)) else { return nil }
        func number(_ r: Range<Int>) -> Int? {
            var v = 0
            for c in b[r] { guard (48...57).contains(c) else { return nil }; v = v * 10 + Int(c - 48) }
            return v
        }
        guard let day = number(5..<7), let year = number(12..<16), let hh = number(17..<19), let mm = number(20..<22),
              let ss = number(23..<25), (1...31).contains(day), hh < 24, mm < 60, ss < 61 else { return nil }
        // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
        let m = month + 1, y = m <= 2 ? year - 1 : year
        let era = y / 400, yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
        return Date(timeIntervalSince1970: Double(days * 86_400 + hh * 3600 + mm * 60 + ss))
    }
}

/// Runs `body` under the policy. `body` returns the response to judge (and may throw
/// TransportError for connection-level failures, which are retried). A 2xx/3xx/4xx other than
/// 429 is returned to the caller as is; 429 and 5xx are retried, then reported as transient.
func withRetries(_ policy: RetryPolicy, what: String, sleep: (Double) -> Void = { usleep(useconds_t(min($0, 3600) * 1e6)) },
                 _ body: (Int) throws -> HTTPResponse) throws -> HTTPResponse {
    var lastProblem = ""
    for attempt in 1...max(1, policy.attempts) {
        do {
            let r = try body(attempt)
            if r.status == 429 || r.status >= 500 {
                lastProblem = "HTTP \(r.status)"
                var wait = policy.backoff(attempt)
                if let asked = RetryPolicy.requestedWait(r) {
                    if asked > policy.maxWait {
                        throw HubFailure.transient("\(what): rate limited (HTTP \(r.status)); the server asks to wait \(Int(asked)) s, more than the \(Int(policy.maxWait)) s allowed")
                    }
                    wait = asked
                }
                if attempt < policy.attempts {
                    Log.info("\(what): HTTP \(r.status), retrying in \(String(format: "%.1f", wait)) s (attempt \(attempt + 1)/\(policy.attempts))")
                    sleep(wait)
                }
                continue
            }
            return r
        } catch let e as TransportError {
            lastProblem = e.message
            if attempt < policy.attempts {
                let wait = policy.backoff(attempt)
                Log.info("\(what): \(e.message); retrying in \(String(format: "%.1f", wait)) s (attempt \(attempt + 1)/\(policy.attempts))")
                sleep(wait)
            }
        }
    }
    throw HubFailure.transient("\(what): gave up after \(policy.attempts) attempts (last: \(lastProblem))")
}
