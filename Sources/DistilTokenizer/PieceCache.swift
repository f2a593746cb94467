/// A cache of BPE results for pre-tokenized pieces: 64-bit FNV-1a of the piece's bytes → entry,
/// verified against the stored bytes (so a hash collision only costs a recomputation), ids kept
/// in one flat pool. Bounded: when full it is cleared.
struct PieceCache {
    var index: [UInt64: Int32] = [:]
    var byteStart: [Int32] = [], byteLen: [Int32] = [], idStart: [Int32] = [], idLen: [Int32] = []
    var bytes: [UInt8] = []
    var ids: [Int32] = []
    let capacity: Int

    init(capacity: Int = 200_000) { self.capacity = capacity }

    @inline(__always) static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// Appends the cached ids of `piece` to `out`; false when not cached.
    @inline(__always) func lookup(_ piece: UnsafeBufferPointer<UInt8>, hash h: UInt64, into out: inout [Int]) -> Bool {
        guard let e = index[h] else { return false }
        let i = Int(e)
        guard Int(byteLen[i]) == piece.count else { return false }
        let start = Int(byteStart[i])
        for k in 0..<piece.count where bytes[start + k] != piece[k] { return false }
        let s = Int(idStart[i])
        for k in 0..<Int(idLen[i]) { out.append(Int(ids[s + k])) }
        return true
    }

    mutating func insert(_ piece: UnsafeBufferPointer<UInt8>, hash h: UInt64, ids newIDs: [Int]) {
        if byteStart.count >= capacity {
            index.removeAll(keepingCapacity: true)
            byteStart.removeAll(keepingCapacity: true); byteLen.removeAll(keepingCapacity: true)
            idStart.removeAll(keepingCapacity: true); idLen.removeAll(keepingCapacity: true)
            bytes.removeAll(keepingCapacity: true); ids.removeAll(keepingCapacity: true)
        }
        index[h] = Int32(byteStart.count)
        byteStart.append(Int32(bytes.count)); byteLen.append(Int32(piece.count))
        idStart.append(Int32(ids.count)); idLen.append(Int32(newIDs.count))
        bytes.append(contentsOf: piece)
        for id in newIDs { ids.append(Int32(id)) }
    }
}
