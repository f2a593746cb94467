import Foundation

/// Logging and progress on stderr. stdout belongs to the data stream.
public enum Log {
    nonisolated(unsafe) public static var tool = "distil"
    nonisolated(unsafe) public static var quiet = false
    nonisolated(unsafe) public static var verbose = false

    public static func info(_ message: @autoclosure () -> String) {
        if !quiet { writeStderr("\(tool): \(message())\n") }
    }

    public static func debug(_ message: @autoclosure () -> String) {
        if verbose { writeStderr("\(tool): \(message())\n") }
    }

    public static func warn(_ message: @autoclosure () -> String) {
        writeStderr("\(tool): warning: \(message())\n")
    }

    public static func error(_ message: String) {
        writeStderr("\(tool): error: \(message)\n")
    }

    public static func writeStderr(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            var off = 0
            while off < buf.count {
                let n = write(2, buf.baseAddress! + off, buf.count - off)
                if n <= 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    /// True when stderr is a terminal: progress bars redraw in place, otherwise plain lines.
    public static let stderrIsTTY: Bool = isatty(2) == 1
}

/// Progress on stderr with rate and ETA: a line redrawn in place on a TTY, a plain line every 10 s
/// otherwise, nothing with --quiet. One reporter for every long stage: prompts scored or continued
/// (a count) and bytes fetched or hashed (shared by parallel transfers: it is thread-safe).
/// (Named apart from Foundation's `Progress`, which it is not.)
public final class ProgressReporter: @unchecked Sendable {
    public enum Unit: Sendable {
        /// Things counted, with their name (" prompts").
        case count(String)
        /// Bytes, shown as kB/MB/GB.
        case bytes
    }

    let lock = NSLock()
    let label: String
    let total: Int64?
    let unit: Unit
    let enabled: Bool
    /// What is done, including what was already there (`skip`).
    var done: Int64 = 0
    /// What this run did: the rate and the ETA are of this.
    var worked: Int64 = 0
    let start = ProgressReporter.now()
    var lastPrint = -Double.infinity
    let interval = Log.stderrIsTTY ? 0.5 : 10

    public init(_ label: String, total: Int64?, unit: Unit = .count(""), enabled: Bool = true) {
        self.label = label; self.total = total; self.unit = unit; self.enabled = enabled
    }

    public convenience init(_ label: String, total: Int, unit: String) {
        self.init(label, total: Int64(total), unit: .count(unit))
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// `n` more done by this run.
    public func advance(_ n: Int = 1) {
        lock.lock(); defer { lock.unlock() }
        done += Int64(n); worked += Int64(n)
        let t = ProgressReporter.now()
        if t - lastPrint >= interval { lastPrint = t; draw(final: false, at: t) }
    }

    /// `n` done without work (already cached), or undone (negative: a transfer restarted).
    public func skip(_ n: Int64) { lock.lock(); done += n; lock.unlock() }

    /// The last line, when this run did anything.
    public func finish() {
        lock.lock(); defer { lock.unlock() }
        if worked > 0 { draw(final: true, at: ProgressReporter.now()) }
    }

    func amount(_ n: Int64) -> String {
        guard case .bytes = unit else { return "\(n)" }
        let d = Double(n)
        if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
        if d >= 1e6 { return String(format: "%.1f MB", d / 1e6) }
        if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
        return "\(n) B"
    }

    func draw(final: Bool, at t: Double) {
        if !enabled || Log.quiet { return }
        let el = max(t - start, 1e-9)
        let rate = Double(worked) / el
        let name: String
        if case .count(let u) = unit { name = u } else { name = "" }
        var s = "\(label): \(amount(done))" + (total.map { "/\(amount($0))" } ?? "") + name
        if case .bytes = unit { s += " \(amount(Int64(rate)))/s" } else { s += String(format: " %.1f%@/s", rate, name) }
        if let total, !final, rate > 0, total > done { s += String(format: " ETA %.0fs", Double(total - done) / rate) }
        if final { s += String(format: " in %.1fs", el) }
        if Log.stderrIsTTY {
            Log.writeStderr("\r\u{1B}[K\(Log.tool): \(s)" + (final ? "\n" : ""))
        } else {
            Log.writeStderr("\(Log.tool): \(s)\n")
        }
    }
}
