/// Byte-level BPE of one pre-tokenized piece: start from one symbol per byte and repeatedly merge
/// the adjacent pair of lowest rank, leftmost first among equal pairs, until no pair merges.
///
/// Short pieces (the vast majority) run on two small arrays, the pair ranks kept beside the
/// symbols so a step is one scan plus two lookups. Long pieces (runs of spaces, long words,
/// minified data) use a heap over a linked list, O(n log n), so no input is quadratic. Both give
/// the same result: a rank names one pair, so "lowest rank, then leftmost" picks the same merge.
struct BPEScratch {
    var syms: [Int32] = []
    var ranks: [UInt64] = []
    var heap: [HeapEntry] = []

    struct HeapEntry {
        var rank: UInt64   // packed (rank << 32 | merged id)
        var pos: Int
        @inline(__always) static func < (a: HeapEntry, b: HeapEntry) -> Bool {
            a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
        }
    }
}

enum BPE {
    /// Pieces longer than this many bytes use the heap.
    static let scanLimit = 128

    /// Appends the ids of p[0..<n] (n >= 1) to `out`.
    @inline(__always)
    static func encode(_ p: UnsafePointer<UInt8>, _ n: Int, byteIDs: UnsafePointer<Int32>, merges: MergeProbe,
                       scratch: inout BPEScratch, into out: inout [Int32], forceHeap: Bool = false) {
        if n > scanLimit || forceHeap {
            heapEncode(p, n, byteIDs: byteIDs, merges: merges, scratch: &scratch, into: &out)
        } else {
            scanEncode(p, n, byteIDs: byteIDs, merges: merges, scratch: &scratch, into: &out)
        }
    }

    static func scanEncode(_ p: UnsafePointer<UInt8>, _ n: Int, byteIDs: UnsafePointer<Int32>, merges: MergeProbe,
                           scratch: inout BPEScratch, into out: inout [Int32]) {
        if scratch.syms.count < n { scratch.syms = [Int32](repeating: 0, count: max(n, 64)) }
        if scratch.ranks.count < n { scratch.ranks = [UInt64](repeating: 0, count: max(n, 64)) }
        scratch.syms.withUnsafeMutableBufferPointer { sb in
            scratch.ranks.withUnsafeMutableBufferPointer { rb in
                let syms = sb.baseAddress!, rk = rb.baseAddress!
                for k in 0..<n { syms[k] = byteIDs[Int(p[k])] }
                var count = n
                for k in 0..<(count - 1) { rk[k] = merges.bytePair(p[k], p[k + 1]) }
                while count > 1 {
                    var best = MergeTable.none, at = -1
                    for k in 0..<(count - 1) where rk[k] < best { best = rk[k]; at = k }
                    if at < 0 { break }
                    syms[at] = Int32(truncatingIfNeeded: best)
                    // Remove symbol at+1 and the pair (at+1, at+2)'s slot shifts down.
                    var k = at + 1
                    while k < count - 1 { syms[k] = syms[k + 1]; rk[k] = rk[k + 1]; k += 1 }
                    count -= 1
                    if at + 1 < count { rk[at] = merges.get(syms[at], syms[at + 1]) }
                    if at > 0 { rk[at - 1] = merges.get(syms[at - 1], syms[at]) }
                }
                for k in 0..<count { out.append(syms[k]) }
            }
        }
    }

    static func heapEncode(_ p: UnsafePointer<UInt8>, _ n: Int, byteIDs: UnsafePointer<Int32>, merges: MergeProbe,
                           scratch: inout BPEScratch, into out: inout [Int32]) {
        var syms = [Int32](repeating: 0, count: n)
        var next = [Int](repeating: -1, count: n)
        var prev = [Int](repeating: -1, count: n)
        var heap = scratch.heap
        heap.removeAll(keepingCapacity: true)
        for k in 0..<n {
            syms[k] = byteIDs[Int(p[k])]
            next[k] = k + 1 < n ? k + 1 : -1
            prev[k] = k - 1
        }
        func push(_ e: BPEScratch.HeapEntry) {
            heap.append(e)
            var c = heap.count - 1
            while c > 0 {
                let parent = (c - 1) / 2
                if !(heap[c] < heap[parent]) { break }
                heap.swapAt(c, parent)
                c = parent
            }
        }
        func pop() -> BPEScratch.HeapEntry {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var c = 0
                while true {
                    let l = 2 * c + 1, r = l + 1
                    var m = c
                    if l < heap.count && heap[l] < heap[m] { m = l }
                    if r < heap.count && heap[r] < heap[m] { m = r }
                    if m == c { break }
                    heap.swapAt(c, m)
                    c = m
                }
            }
            return top
        }
        for k in 0..<(n - 1) {
            let r = merges.bytePair(p[k], p[k + 1])
            if r != MergeTable.none { push(.init(rank: r, pos: k)) }
        }
        while !heap.isEmpty {
            let e = pop()
            let at = e.pos
            let nx = next[at]
            // Stale entries: the symbol was merged away, or the pair at `at` has changed.
            if syms[at] < 0 || nx < 0 || merges.get(syms[at], syms[nx]) != e.rank { continue }
            syms[at] = Int32(truncatingIfNeeded: e.rank)
            syms[nx] = -1
            let after = next[nx]
            next[at] = after
            if after >= 0 {
                prev[after] = at
                let r = merges.get(syms[at], syms[after])
                if r != MergeTable.none { push(.init(rank: r, pos: at)) }
            }
            let before = prev[at]
            if before >= 0 {
                let r = merges.get(syms[before], syms[at])
                if r != MergeTable.none { push(.init(rank: r, pos: before)) }
            }
        }
        scratch.heap = heap
        var k = 0
        while k >= 0 { out.append(syms[k]); k = next[k] }
    }
}
