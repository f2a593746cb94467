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

/// Progress with rate and ETA: a redrawn bar on a TTY, a plain line every few seconds otherwise.
public final class Progress {
    let label: String
    let total: Int?
    let unit: String
    var done = 0
    let start: Double
    var lastPrint: Double = 0
    let interval: Double

    public init(_ label: String, total: Int?, unit: String = "") {
        self.label = label
        self.total = total
        self.unit = unit
        self.start = Progress.now()
        self.interval = Log.stderrIsTTY ? 0.2 : 10
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    public func advance(_ n: Int = 1) {
        done += n
        let t = Progress.now()
        if t - lastPrint >= interval { lastPrint = t; draw(final: false) }
    }

    public func finish() { draw(final: true) }

    func draw(final: Bool) {
        if Log.quiet { return }
        let el = max(Progress.now() - start, 1e-9)
        let rate = Double(done) / el
        var s = "\(label): \(done)"
        if let total { s += "/\(total)" }
        s += "\(unit) " + String(format: "%.1f%@/s", rate, unit)
        if let total, !final, rate > 0 {
            s += String(format: " ETA %.0fs", Double(total - done) / rate)
        }
        if final { s += String(format: " in %.1fs", el) }
        if Log.stderrIsTTY {
            Log.writeStderr("\r\u{1B}[K\(Log.tool): \(s)" + (final ? "\n" : ""))
        } else {
            Log.writeStderr("\(Log.tool): \(s)\n")
        }
    }
}
