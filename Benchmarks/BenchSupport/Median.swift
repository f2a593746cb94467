/// The median of `v` (the mean of the middle two for an even count): benchmarks report medians of
/// alternating rounds, since this VM's speed moves from one round to the next.
public func median(_ v: [Double]) -> Double {
    let s = v.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
