import Foundation

/// Escaping and number formatting for the report. Every string that comes from an input (a model
/// repo, a hotkey, a prompt's text, a reason) goes through `esc` or `attr`: repo names are chosen
/// by miners, so the page must never let one close a tag or open a script.
public enum Markup {
    /// Text content: the five XML specials, and control characters (which XML 1.0 forbids) as U+FFFD.
    public static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                // XML 1.0 allows neither C0 controls nor the two non-characters U+FFFE/U+FFFF.
                if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { out += "\u{FFFD}" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    /// An attribute value (double-quoted by the caller): the same escapes, and white space kept as
    /// references so a newline in an input survives attribute normalisation.
    public static func attr(_ s: String) -> String {
        esc(s).replacingOccurrences(of: "\n", with: "&#10;").replacingOccurrences(of: "\t", with: "&#9;")
            .replacingOccurrences(of: "\r", with: "&#13;")
    }

    /// A fragment id from any string: only [A-Za-z0-9-], so it is a valid id and a valid URL fragment.
    public static func id(_ parts: String...) -> String {
        parts.joined(separator: "-").unicodeScalars.map { u -> String in
            (("a"..."z").contains(u) || ("A"..."Z").contains(u) || ("0"..."9").contains(u)) ? String(u) : "-"
        }.joined()
    }

    /// A KL value or other measurement: 4 significant digits, no "-0".
    public static func num(_ x: Double, digits: Int = 4) -> String {
        guard x.isFinite else { return x.isNaN ? "n/a" : (x > 0 ? "∞" : "−∞") }
        var s = String(format: "%.\(digits)g", x)
        if s == "-0" { s = "0" }
        return s.replacingOccurrences(of: "-", with: "−")
    }

    /// A p-value: 3 significant digits, with "< 1e-300" style floor rather than 0.
    public static func p(_ x: Double?) -> String {
        guard let x else { return "n/a" }
        if x < 1e-300 { return "< 1e−300" }
        return num(x, digits: 3)
    }

    /// A fraction as a percentage with a sign when asked.
    public static func percent(_ x: Double, signed: Bool = false, digits: Int = 2) -> String {
        guard x.isFinite else { return "n/a" }
        let s = String(format: signed ? "%+.\(digits)f%%" : "%.\(digits)f%%", x * 100)
        return s.replacingOccurrences(of: "-", with: "−")
    }

    /// SVG coordinates: two decimals are finer than a pixel and keep the page small.
    static func c(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        var s = String(format: "%.2f", x)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s == "-0" ? "0" : s
    }

    /// The first `n` words of a text, white space collapsed, "…" when cut.
    public static func firstWords(_ s: String, _ n: Int = 12) -> String {
        let words = s.split(whereSeparator: { $0.isWhitespace })
        let head = words.prefix(n).joined(separator: " ")
        let cut = head.count > 90 ? String(head.prefix(90)) : head
        return words.count > n || cut.count < head.count ? cut + " …" : cut
    }
}
