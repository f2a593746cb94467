import DistilFormats
import Foundation

/// The tokenizer's lookup tables: open addressing with linear probing over memory the table owns,
/// so the encoder's inner loops touch plain pointers (no reference counting, no bounds checks).
///
/// The layout depends on a per-process random seed, which never changes a result: it only keeps
/// a hostile tokenizer.json from choosing keys that all land in one probe chain. Probe chains are
/// also bounded outright: a build whose longest displacement exceeds `maxProbe` is retried with a
/// fresh seed and then refused, so a lookup never probes more than `maxProbe` + 1 slots.

/// Memory of `count` elements, owned and freed by this object.
final class OwnedBuffer<T> {
    let p: UnsafeMutablePointer<T>
    let count: Int
    init(count: Int, repeating value: T) {
        self.count = count
        p = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
        p.initialize(repeating: value, count: count)
    }
    deinit {
        p.deinitialize(count: count)
        p.deallocate()
    }
}

enum ByteHash {
    static let k0: UInt64 = 0xa076_1d64_78bd_642f, k1: UInt64 = 0xe703_7ed1_a0b4_28db, k2: UInt64 = 0x8ebc_6af0_9c88_c6e3

    @inline(__always) static func mum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.multipliedFullWidth(by: b)
        return r.high ^ r.low
    }

    /// A 64-bit hash of p[0..<n] (wyhash-style: overlapping loads, never past p[n-1]).
    @inline(__always) static func hash(_ p: UnsafePointer<UInt8>, _ n: Int, seed: UInt64) -> UInt64 {
        let raw = UnsafeRawPointer(p)
        var s = seed
        var a: UInt64 = 0, b: UInt64 = 0
        if n <= 16 {
            if n >= 8 {
                a = raw.loadUnaligned(as: UInt64.self)
                b = raw.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            } else if n >= 4 {
                a = UInt64(raw.loadUnaligned(as: UInt32.self))
                b = UInt64(raw.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
            } else if n > 0 {
                a = UInt64(p[0]) << 16 | UInt64(p[n >> 1]) << 8 | UInt64(p[n - 1])
            }
        } else {
            var i = 0
            while n - i > 16 {
                s = mum(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ k1,
                        raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self) ^ s)
                i += 16
            }
            a = raw.loadUnaligned(fromByteOffset: n - 16, as: UInt64.self)
            b = raw.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        }
        return mum(k1 ^ UInt64(truncatingIfNeeded: n), mum(a ^ k1, b ^ s ^ k2))
    }

    @inline(__always) static func hash(_ key: UInt64, seed: UInt64) -> UInt64 { mum(key ^ seed ^ k0, k1) }

    static func freshSeed() -> UInt64 { UInt64.random(in: 0...UInt64.max) }

    /// The power of two at least twice `count` (load factor at most 1/2), at least 16.
    static func capacity(for count: Int) -> Int {
        var c = 16
        while c < count * 2 { c <<= 1 }
        return c
    }

    static let maxProbe = 96

    /// a[0..<n] == b[0..<n], with word loads (no call for the short keys that dominate).
    @inline(__always) static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        if n >= 8 {
            var i = 0
            while n - i > 8 {
                if ra.loadUnaligned(fromByteOffset: i, as: UInt64.self) != rb.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
                i += 8
            }
            return ra.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == rb.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        }
        if n >= 4 {
            return ra.loadUnaligned(as: UInt32.self) == rb.loadUnaligned(as: UInt32.self)
                && ra.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self) == rb.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
        }
        for k in 0..<n where a[k] != b[k] { return false }
        return true
    }
}

/// Token bytes → id. The bytes of every entry live in one arena; a slot holds the top 32 bits of
/// the entry's hash and its index, so most mismatches are rejected without touching the arena.
struct TokenTable {
    private let slots: OwnedBuffer<UInt64>       // 0 = empty, else tag << 32 | (index + 1)
    private let arena: [UInt8]
    private let starts: [Int32]                  // per index: start in arena; index count + 1 entries
    private let ids: [Int32]                     // per index
    private let seed: UInt64
    private let mask: Int
    let maxDisplacement: Int

    /// `arena[starts[k]..<starts[k+1]]` is entry k's key, `ids[k]` its value.
    /// Nil when two entries have the same key (the index of the second is returned in `duplicate`).
    init(arena: [UInt8], starts: [Int32], ids: [Int32], duplicate: inout Int?) throws {
        self.arena = arena
        self.starts = starts
        self.ids = ids
        let n = ids.count
        let cap = ByteHash.capacity(for: n)
        mask = cap - 1
        for _ in 0..<4 {
            let seed = ByteHash.freshSeed()
            let slots = OwnedBuffer<UInt64>(count: cap, repeating: 0)
            var worst = 0
            var ok = true
            arena.withUnsafeBufferPointer { a in
                let base = a.baseAddress ?? UnsafePointer(bitPattern: 1)!
                for k in 0..<n {
                    let s = Int(starts[k]), len = Int(starts[k + 1]) - s
                    let h = ByteHash.hash(base + s, len, seed: seed)
                    let tag = h >> 32
                    var i = Int(truncatingIfNeeded: h) & (cap - 1)
                    var d = 0
                    while slots.p[i] != 0 {
                        let e = slots.p[i]
                        if e >> 32 == tag {
                            let other = Int(UInt32(truncatingIfNeeded: e)) - 1
                            let os = Int(starts[other]), olen = Int(starts[other + 1]) - os
                            if olen == len && ByteHash.equal(base + s, base + os, len) {
                                if duplicate == nil { duplicate = k }
                                break
                            }
                        }
                        i = (i + 1) & (cap - 1)
                        d += 1
                        if d > ByteHash.maxProbe { ok = false; return }
                    }
                    if slots.p[i] == 0 { slots.p[i] = tag << 32 | UInt64(k + 1) }
                    worst = max(worst, d)
                }
            }
            if ok {
                self.slots = slots
                self.seed = seed
                maxDisplacement = worst
                return
            }
        }
        throw DistilError("token table: pathological hash collisions", kind: .input)
    }

    /// The value stored for p[0..<n], or -1.
    @inline(__always) func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        let h = ByteHash.hash(p, n, seed: seed)
        let tag = h >> 32
        var i = Int(truncatingIfNeeded: h) & mask
        let sp = slots.p
        return arena.withUnsafeBufferPointer { a -> Int32 in
            starts.withUnsafeBufferPointer { st -> Int32 in
                for _ in 0...maxDisplacement {
                    let e = sp[i]
                    if e == 0 { return -1 }
                    if e >> 32 == tag {
                        let k = Int(UInt32(truncatingIfNeeded: e)) - 1
                        let s = Int(st[k]), len = Int(st[k + 1]) - s
                        if len == n && ByteHash.equal(a.baseAddress! + s, p, n) { return ids[k] }
                    }
                    i = (i + 1) & mask
                }
                return -1
            }
        }
    }

    func lookup(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else {
                var z: UInt8 = 0
                return lookup(&z, 0)
            }
            return lookup(base, b.count)
        }
    }
}

/// (left id, right id) → packed (rank << 32 | merged id); `none` when the pair does not merge.
/// Packed values of different pairs compare as their ranks do. Keys and values are interleaved,
/// so a hit costs one cache line.
final class MergeTable {
    static let none = UInt64.max
    static let emptyKey = UInt64.max
    private let slots: OwnedBuffer<UInt64>      // [key, value] pairs
    /// The packed merge of every pair of single-byte symbols, by (first byte << 8 | second byte).
    private let bytePairs = OwnedBuffer<UInt64>(count: 1 << 16, repeating: MergeTable.none)
    let probe: MergeProbe

    /// `pairs[k]` = left << 32 | right, merged into `merged[k]`, rank k; for a pair listed twice
    /// the first (lowest) rank counts. `byteIDs`: the symbol of each byte.
    init(pairs: [UInt64], merged: [Int32], byteIDs: UnsafePointer<Int32>) throws {
        let cap = ByteHash.capacity(for: pairs.count)
        for _ in 0..<4 {
            let seed = ByteHash.freshSeed()
            let slots = OwnedBuffer<UInt64>(count: 2 * cap, repeating: MergeTable.emptyKey)
            var worst = 0, ok = true
            for (rank, key) in pairs.enumerated() {
                var i = Int(truncatingIfNeeded: ByteHash.hash(key, seed: seed)) & (cap - 1)
                var d = 0
                while slots.p[2 * i] != MergeTable.emptyKey && slots.p[2 * i] != key {
                    i = (i + 1) & (cap - 1)
                    d += 1
                    if d > ByteHash.maxProbe { ok = false; break }
                }
                if !ok { break }
                if slots.p[2 * i] == MergeTable.emptyKey {
                    slots.p[2 * i] = key
                    slots.p[2 * i + 1] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged[rank]))
                }
                worst = max(worst, d)
            }
            if ok {
                self.slots = slots
                let general = MergeProbe(slots: UnsafePointer(slots.p), bytePairs: UnsafePointer(bytePairs.p),
                                         mask: cap - 1, seed: seed, maxDisplacement: worst)
                for a in 0..<256 {
                    for b in 0..<256 { bytePairs.p[a << 8 | b] = general.get(byteIDs[a], byteIDs[b]) }
                }
                probe = general
                return
            }
        }
        throw DistilError("merge table: pathological hash collisions", kind: .input)
    }
}

/// The merge table's lookup as plain pointers and integers (no reference counting in the BPE
/// loops); valid while its `MergeTable` lives.
struct MergeProbe {
    let slots: UnsafePointer<UInt64>
    let bytePairs: UnsafePointer<UInt64>
    let mask: Int
    let seed: UInt64
    let maxDisplacement: Int

    @inline(__always) func get(_ left: Int32, _ right: Int32) -> UInt64 {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        var i = Int(truncatingIfNeeded: ByteHash.hash(key, seed: seed)) & mask
        for _ in 0...maxDisplacement {
            let k = slots[2 * i]
            if k == key { return slots[2 * i + 1] }
            if k == MergeTable.emptyKey { return MergeTable.none }
            i = (i + 1) & mask
        }
        return MergeTable.none
    }

    /// The merge of the single-byte symbols of bytes a and b.
    @inline(__always) func bytePair(_ a: UInt8, _ b: UInt8) -> UInt64 { bytePairs[Int(a) << 8 | Int(b)] }
}
