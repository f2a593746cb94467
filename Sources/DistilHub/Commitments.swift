import DistilFormats

/// The rule that decides which commitment a uid stands for, applied once, to dl-fetch's input,
/// so that every later stage sees at most one commitment per uid.
///
/// A uid is a slot: when a miner deregisters, the next registration takes the uid over, and an
/// export of the chain can still hold the old hotkey's commitment under it. The latest
/// registration owns the uid and the older commitment is void. Commitment records carry no
/// registration block, so the commitment block stands in for it: a hotkey can only commit while
/// registered, hence the hotkey with the later commitment block under a uid is the later
/// registration. A hotkey commits once, forever: of one hotkey's commitments under a uid the
/// first (lowest block, then first in the input) is the one that counts.
public enum CommitmentRule {
    /// One commitment set aside, and why (for stderr).
    public struct Voided: Equatable, Sendable {
        public var commitment: Commitment
        public var reason: String
    }

    /// The commitments that count, in input order, and the ones set aside.
    public static func resolve(_ list: [Commitment]) -> (kept: [Commitment], void: [Voided]) {
        var byUID: [Int: [Int]] = [:]
        for (i, c) in list.enumerated() { byUID[c.uid, default: []].append(i) }
        var keep = Set<Int>()
        var void: [(Int, Voided)] = []
        for (_, idx) in byUID {
            // The owner: the hotkey of the latest commitment block (ties: the later line).
            let owner = idx.max { (list[$0].block, $0) < (list[$1].block, $1) }!
            let hotkey = list[owner].hotkey
            let mine = idx.filter { list[$0].hotkey == hotkey }
            let first = mine.min { (list[$0].block, $0) < (list[$1].block, $1) }!
            keep.insert(first)
            for i in idx where i != first {
                let c = list[i]
                let why = c.hotkey == hotkey
                    ? "hotkey \(c.hotkey) already committed at block \(list[first].block) (one commitment per hotkey, the first counts)"
                    : "uid \(c.uid) was re-registered: hotkey \(hotkey) committed at block \(list[owner].block), later than this hotkey \(c.hotkey) at block \(c.block); the latest registration owns the uid"
                void.append((i, Voided(commitment: c, reason: why)))
            }
        }
        let kept = list.indices.filter(keep.contains).map { list[$0] }
        return (kept, void.sorted { $0.0 < $1.0 }.map(\.1))
    }
}
