import DistilFormats
import Foundation

/// One metric family of the Prometheus text exposition format (version 0.0.4).
public struct MetricFamily: Equatable, Sendable {
    public enum Kind: String, Sendable { case gauge, counter, untyped }
    public struct Sample: Equatable, Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
        public init(name: String, labels: [String: String] = [:], value: Double) {
            self.name = name; self.labels = labels; self.value = value
        }
    }
    public var name: String
    public var help: String
    public var kind: Kind
    public var samples: [Sample]

    public init(_ name: String, _ kind: Kind, help: String, samples: [Sample] = []) {
        self.name = name; self.kind = kind; self.help = help; self.samples = samples
    }

    /// A family of one unlabelled sample.
    public init(_ name: String, _ kind: Kind, help: String, value: Double) {
        self.init(name, kind, help: help, samples: [Sample(name: name, value: value)])
    }

    /// The value of the sample with exactly these labels.
    public func value(_ labels: [String: String] = [:]) -> Double? { samples.first { $0.labels == labels }?.value }
}

/// Writing and strictly reading the Prometheus text format: what node_exporter's textfile collector
/// reads. The reader refuses anything the format does not allow (it is used by the tests to prove
/// what we write, and to carry counters over from the previous file), naming the line.
public enum Prometheus {
    public static func render(_ families: [MetricFamily]) -> String {
        var out = ""
        for f in families {
            out += "# HELP \(f.name) \(escapeHelp(f.help))\n# TYPE \(f.name) \(f.kind.rawValue)\n"
            for s in f.samples {
                out += s.name
                if !s.labels.isEmpty {
                    out += "{" + s.labels.keys.sorted().map { "\($0)=\"\(escapeLabel(s.labels[$0]!))\"" }.joined(separator: ",") + "}"
                }
                out += " \(format(s.value))\n"
            }
        }
        return out
    }

    /// Go's strconv.ParseFloat reads every form Swift's shortest round-trip description writes.
    public static func format(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "+Inf" : "-Inf" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }

    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func escapeLabel(_ s: String) -> String {
        escapeHelp(s).replacingOccurrences(of: "\"", with: "\\\"")
    }

    static func isMetricName(_ s: Substring) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCII, f == "_" || f == ":" || f.properties.isAlphabetic else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0 == ":" || $0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    static func isLabelName(_ s: Substring) -> Bool { isMetricName(s) && !s.contains(":") }

    /// Parses a whole exposition. Rules enforced: metric and label names; `# TYPE` at most once per
    /// family and before its samples; a family's samples contiguous; label values with only the
    /// escapes \\ \" \n; no label twice in a sample; no sample (name and labels) twice; values as Go
    /// floats (NaN, +Inf, -Inf); an optional integer timestamp; a final newline.
    public static func parse(_ text: String, name: String = "metrics") throws -> [MetricFamily] {
        guard text.isEmpty || text.hasSuffix("\n") else { throw DistilError.input(name, "does not end with a newline") }
        var families: [MetricFamily] = []
        var index: [String: Int] = [:]
        var closed = Set<String>()
        var seen = Set<String>()
        var current: String?
        func family(_ n: String, at line: Int) throws -> Int {
            if let i = index[n] {
                if current != n && closed.contains(n) { throw DistilError.input(name, "line \(line): metric family \(n) is not contiguous") }
                return i
            }
            families.append(MetricFamily(n, .untyped, help: ""))
            index[n] = families.count - 1
            return families.count - 1
        }
        func enter(_ n: String) { if let c = current, c != n { closed.insert(c) }; current = n }
        for (k, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            let line = k + 1
            let l = raw
            if l.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            if l.hasPrefix("#") {
                let parts = l.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
                guard parts.count >= 3, parts[0] == "#", parts[1] == "HELP" || parts[1] == "TYPE" else { continue }  // a comment
                let n = String(parts[2])
                guard isMetricName(parts[2]) else { throw DistilError.input(name, "line \(line): '\(n)' is not a metric name") }
                let i = try family(n, at: line)
                if families[i].samples.count > 0 && parts[1] == "TYPE" {
                    throw DistilError.input(name, "line \(line): # TYPE of \(n) after its samples")
                }
                enter(n)
                let rest = parts.count > 3 ? String(parts[3]) : ""
                if parts[1] == "TYPE" {
                    guard let kind = MetricFamily.Kind(rawValue: rest) ?? (["summary", "histogram"].contains(rest) ? .untyped : nil) else {
                        throw DistilError.input(name, "line \(line): unknown metric type '\(rest)'")
                    }
                    families[i].kind = kind
                } else {
                    families[i].help = rest.replacingOccurrences(of: "\\n", with: "\n").replacingOccurrences(of: "\\\\", with: "\\")
                }
                continue
            }
            let s = try sample(l, line: line, name: name)
            let key = s.name + "{" + s.labels.keys.sorted().map { "\($0)=\(s.labels[$0]!)" }.joined(separator: ",") + "}"
            guard seen.insert(key).inserted else { throw DistilError.input(name, "line \(line): sample \(key) appears twice") }
            let i = try family(s.name, at: line)
            enter(s.name)
            families[i].samples.append(s)
        }
        return families
    }

    static func sample(_ l: Substring, line: Int, name: String) throws -> MetricFamily.Sample {
        func fail(_ what: String) -> DistilError { DistilError.input(name, "line \(line): \(what)") }
        var i = l.startIndex
        while i < l.endIndex, l[i] != "{", l[i] != " ", l[i] != "\t" { i = l.index(after: i) }
        let metric = l[l.startIndex..<i]
        guard isMetricName(metric) else { throw fail("'\(metric)' is not a metric name") }
        var labels: [String: String] = [:]
        if i < l.endIndex, l[i] == "{" {
            i = l.index(after: i)
            while true {
                guard i < l.endIndex else { throw fail("unterminated label set") }
                if l[i] == "}" { i = l.index(after: i); break }
                var j = i
                while j < l.endIndex, l[j] != "=" { j = l.index(after: j) }
                let ln = l[i..<j]
                guard isLabelName(ln) else { throw fail("'\(ln)' is not a label name") }
                guard j < l.endIndex, l.index(after: j) < l.endIndex, l[l.index(after: j)] == "\"" else { throw fail("label \(ln) has no quoted value") }
                var k = l.index(j, offsetBy: 2)
                var value = ""
                while true {
                    guard k < l.endIndex else { throw fail("unterminated value of label \(ln)") }
                    let ch = l[k]
                    if ch == "\"" { break }
                    if ch == "\\" {
                        k = l.index(after: k)
                        guard k < l.endIndex else { throw fail("unterminated escape in label \(ln)") }
                        switch l[k] {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw fail("invalid escape \\\(l[k]) in label \(ln)")
                        }
                    } else {
                        value.append(ch)
                    }
                    k = l.index(after: k)
                }
                guard labels.updateValue(value, forKey: String(ln)) == nil else { throw fail("label \(ln) appears twice") }
                i = l.index(after: k)
                if i < l.endIndex, l[i] == "," { i = l.index(after: i) } else if i < l.endIndex, l[i] == "}" { continue } else { throw fail("expected ',' or '}' after label \(ln)") }
            }
        }
        let rest = l[i...].split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard rest.count == 1 || rest.count == 2 else { throw fail("expected a value and an optional timestamp") }
        guard let v = parseValue(rest[0]) else { throw fail("'\(rest[0])' is not a float") }
        if rest.count == 2, Int64(rest[1]) == nil { throw fail("'\(rest[1])' is not an integer timestamp") }
        return MetricFamily.Sample(name: String(metric), labels: labels, value: v)
    }

    static func parseValue(_ s: Substring) -> Double? {
        switch s {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            // Decimal or exponent forms only (Double("0x1p3") and "inf" would pass Swift's parser).
            guard s.allSatisfy({ "0123456789+-.eE".contains($0) }) else { return nil }
            return Double(s)
        }
    }
}
