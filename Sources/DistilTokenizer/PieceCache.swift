import Foundation

/// BPE results of pieces already seen, keyed by the piece's bytes (compared in full, so a hash
/// collision costs only a recomputation). One cache is used by one `encode` call at a time
/// (`Tokenizer.StatePool`).
///
/// Bounded: the slot count is fixed at creation, a probe looks at no more than 8 slots, and when
/// the entries reach half the slots the cache is cleared and refilled.
struct PieceCache {
    private let slots: OwnedBuffer<Int32>        // entry index or -1
    private let mask: Int
    private let seed: UInt64
    private var hashes: [UInt64] = []
    private var byteStart: [Int32] = [], idStart: [Int32] = []   // entry k: [start[k], start[k+1])
    private var bytes: [UInt8] = []
    private var ids: [Int32] = []
    static let probes = 8

    /// A cache of `slots` slots (a power of two).
    init(slots requested: Int) {
        var cap = 256
        while cap < requested && cap < 1 << 24 { cap <<= 1 }
        slots = OwnedBuffer(count: cap, repeating: -1)
        mask = cap - 1
        seed = ByteHash.freshSeed()
        byteStart = [0]
        idStart = [0]
    }

    @inline(__always) func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 { ByteHash.hash(p, n, seed: seed) }

    /// Appends the cached ids of p[0..<n] to `out`; false when not cached.
    @inline(__always) func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, into out: inout [Int]) -> Bool {
        var i = Int(truncatingIfNeeded: h) & mask
        for _ in 0..<PieceCache.probes {
            let e = Int(slots.p[i])
            if e < 0 { return false }
            if hashes[e] == h {
                let s = Int(byteStart[e])
                if Int(byteStart[e + 1]) - s == n && bytes.withUnsafeBufferPointer({ ByteHash.equal($0.baseAddress! + s, p, n) }) {
                    ids.withUnsafeBufferPointer { idp in
                        for k in Int(idStart[e])..<Int(idStart[e + 1]) { out.append(Int(idp[k])) }
                    }
                    return true
                }
            }
            i = (i + 1) & mask
        }
        return false
    }

    mutating func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, ids newIDs: UnsafeBufferPointer<Int32>) {
        if hashes.count * 2 >= slots.count || bytes.count + n > Int(Int32.max) / 2 { clear() }
        let e = hashes.count
        hashes.append(h)
        bytes.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        byteStart.append(Int32(bytes.count))
        ids.append(contentsOf: newIDs)
        idStart.append(Int32(ids.count))
        var i = Int(truncatingIfNeeded: h) & mask
        for _ in 0..<PieceCache.probes {
            if slots.p[i] < 0 { slots.p[i] = Int32(e); return }
            i = (i + 1) & mask
        }
        slots.p[Int(truncatingIfNeeded: h) & mask] = Int32(e)   // all probed slots taken: replace the first
    }

    private mutating func clear() {
        slots.p.update(repeating: -1, count: slots.count)
        hashes.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
        byteStart.removeAll(keepingCapacity: true); byteStart.append(0)
        idStart.removeAll(keepingCapacity: true); idStart.append(0)
    }
}
