import Foundation

/// A map from data values to pixels along one axis, linear or logarithmic (base 10).
struct Scale {
    var lo: Double
    var hi: Double
    var from: Double
    var to: Double
    var log = false

    /// A linear scale over [lo, hi] widened to nice tick values; a degenerate range is widened so
    /// one value still gets an axis.
    static func linear(_ values: [Double], from: Double, to: Double, includeZero: Bool = true) -> Scale {
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
        if hi - lo <= 0 { let pad = abs(hi) > 0 ? abs(hi) * 0.1 : 1; lo -= pad; hi += pad }
        let step = niceStep((hi - lo) / 5)
        return Scale(lo: (lo / step).rounded(.down) * step, hi: (hi / step).rounded(.up) * step, from: from, to: to)
    }

    /// A log scale over whole decades around the positive values (non-positive ones sit at the floor).
    static func logarithmic(_ values: [Double], from: Double, to: Double) -> Scale {
        let pos = values.filter { $0 > 0 && $0.isFinite }
        let lo = Foundation.log10(pos.min() ?? 1).rounded(.down), hi = Foundation.log10(pos.max() ?? 10).rounded(.up)
        return Scale(lo: pow(10, lo), hi: pow(10, max(hi, lo + 1)), from: from, to: to, log: true)
    }

    func callAsFunction(_ v: Double) -> Double {
        let t: Double
        if log {
            let x = Foundation.log10(max(v, lo)), a = Foundation.log10(lo), b = Foundation.log10(hi)
            t = (x - a) / (b - a)
        } else {
            t = (v - lo) / (hi - lo)
        }
        return from + min(max(t, -0.02), 1.02) * (to - from)
    }

    var ticks: [Double] {
        if log {
            let a = Int(Foundation.log10(lo).rounded()), b = Int(Foundation.log10(hi).rounded())
            let every = max(1, (b - a) / 6)
            return stride(from: a, through: b, by: every).map { pow(10, Double($0)) }
        }
        let step = Scale.niceStep((hi - lo) / 5)
        var out: [Double] = []
        var v = lo
        while v <= hi + step * 1e-9 { out.append(abs(v) < step * 1e-9 ? 0 : v); v += step }
        return out
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let mag = pow(10, Foundation.log10(raw).rounded(.down))
        for m in [1.0, 2, 5, 10] where m * mag >= raw * (1 - 1e-12) { return m * mag }
        return 10 * mag
    }
}

/// One inline SVG figure. Every figure has a <title> (its accessible name, read by screen readers and
/// shown as a tooltip), a <desc> with the figure's numbers in words, and labelled axes; colours come
/// from CSS classes so the page's light and dark schemes and print style apply to the drawings too.
struct Figure {
    let width: Double
    let height: Double
    let title: String
    let desc: String
    var body: [String] = []

    init(width: Double, height: Double, title: String, desc: String) {
        self.width = width; self.height = height; self.title = title; self.desc = desc
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ cls: String) {
        body.append("<line class=\"\(cls)\" x1=\"\(Markup.c(x1))\" y1=\"\(Markup.c(y1))\" x2=\"\(Markup.c(x2))\" y2=\"\(Markup.c(y2))\"/>")
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, _ cls: String, tip: String? = nil) {
        let r = "<rect class=\"\(cls)\" x=\"\(Markup.c(x))\" y=\"\(Markup.c(y))\" width=\"\(Markup.c(max(w, 0)))\" height=\"\(Markup.c(max(h, 0)))\""
        body.append(tip.map { r + "><title>\(Markup.esc($0))</title></rect>" } ?? r + "/>")
    }

    mutating func dot(_ x: Double, _ y: Double, _ r: Double, _ cls: String, tip: String? = nil) {
        let d = "<circle class=\"\(cls)\" cx=\"\(Markup.c(x))\" cy=\"\(Markup.c(y))\" r=\"\(Markup.c(r))\""
        body.append(tip.map { d + "><title>\(Markup.esc($0))</title></circle>" } ?? d + "/>")
    }

    mutating func path(_ points: [(Double, Double)], _ cls: String) {
        guard let f = points.first else { return }
        let d = "M\(Markup.c(f.0)) \(Markup.c(f.1))" + points.dropFirst().map { " L\(Markup.c($0.0)) \(Markup.c($0.1))" }.joined()
        body.append("<path class=\"\(cls)\" d=\"\(d)\"/>")
    }

    mutating func text(_ x: Double, _ y: Double, _ s: String, _ cls: String = "", anchor: String = "start", rotate: Bool = false) {
        let t = rotate ? " transform=\"rotate(-90 \(Markup.c(x)) \(Markup.c(y)))\"" : ""
        body.append("<text class=\"\(cls)\" x=\"\(Markup.c(x))\" y=\"\(Markup.c(y))\" text-anchor=\"\(anchor)\"\(t)>\(Markup.esc(s))</text>")
    }

    /// A horizontal value axis at pixel row `y` spanning the scale, with grid lines up to `top`.
    mutating func xAxis(_ s: Scale, y: Double, top: Double, label: String, format: (Double) -> String = { Markup.num($0, digits: 3) }) {
        line(s.from, y, s.to, y, "axis")
        for t in s.ticks {
            let x = s(t)
            line(x, top, x, y, "grid")
            line(x, y, x, y + 4, "axis")
            text(x, y + 16, format(t), "tick", anchor: "middle")
        }
        text((s.from + s.to) / 2, y + 34, label, "axis-label x-label", anchor: "middle")
    }

    /// A vertical value axis at pixel column `x`, with grid lines across to `right`.
    mutating func yAxis(_ s: Scale, x: Double, right: Double, label: String, format: (Double) -> String = { Markup.num($0, digits: 3) }) {
        line(x, s.from, x, s.to, "axis")
        for t in s.ticks {
            let y = s(t)
            line(x, y, right, y, "grid")
            line(x - 4, y, x, y, "axis")
            text(x - 7, y + 4, format(t), "tick", anchor: "end")
        }
        text(14, (s.from + s.to) / 2, label, "axis-label y-label", anchor: "middle", rotate: true)
    }

    /// A category axis (one label per row, e.g. a model) written at the left edge.
    mutating func categoryAxis(_ labels: [(String, Double)], x: Double, label: String) {
        for (l, y) in labels { text(x - 8, y + 4, l, "tick", anchor: "end") }
        text(14, ((labels.first?.1 ?? 0) + (labels.last?.1 ?? height)) / 2, label, "axis-label y-label", anchor: "middle", rotate: true)
    }

    func render(id: String) -> String {
        let head = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 \(Markup.c(width)) \(Markup.c(height))\" "
            + "width=\"\(Markup.c(width))\" height=\"\(Markup.c(height))\" role=\"img\" aria-labelledby=\"\(id)-t \(id)-d\">"
            + "<title id=\"\(id)-t\">\(Markup.esc(title))</title><desc id=\"\(id)-d\">\(Markup.esc(desc))</desc>"
        return head + body.joined() + "</svg>"
    }
}

/// Quantiles by linear interpolation between order statistics (R's type 7, numpy's default).
func quantile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let h = Double(sorted.count - 1) * q
    let i = Int(h.rounded(.down)), j = min(i + 1, sorted.count - 1)
    return sorted[i] + (h - Double(i)) * (sorted[j] - sorted[i])
}
