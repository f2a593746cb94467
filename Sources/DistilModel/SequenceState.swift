import Foundation

/// One sequence's decoding state: per layer what its mixer carries from one call to the next (keys
/// and values, or DeltaNet's conv inputs and recurrent state), and how many positions it has seen.
final class SequenceState {
    /// Positions run so far; the next token is at this position.
    var length = 0
    /// The most positions the caches hold.
    let capacity: Int
    let caches: [LayerCache]

    init(capacity: Int, caches: [LayerCache]) {
        self.capacity = capacity
        self.caches = caches
    }
}

/// What one layer of one sequence carries.
enum LayerCache {
    /// Keys and values [capacity x kvHeads*headDim] each.
    case attention(keys: FloatBuffer, values: FloatBuffer)
    /// The last kernel-1 conv inputs [(K-1) x convDim] and the recurrent state [valueHeads x keyDim x valueDim].
    case deltaNet(conv: FloatBuffer, recurrent: FloatBuffer)

    var attention: (keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>) {
        guard case let .attention(k, v) = self else { preconditionFailure("an attention layer without a key/value cache") }
        return (k.pointer, v.pointer)
    }

    var deltaNet: (conv: UnsafeMutablePointer<Float>, recurrent: UnsafeMutablePointer<Float>) {
        guard case let .deltaNet(c, r) = self else { preconditionFailure("a DeltaNet layer without its recurrent state") }
        return (c.pointer, r.pointer)
    }
}

/// One sequence's rows in a forward call: rows row0 ..< row0+rows of the call are its tokens at
/// positions state.length ..< +rows. A prefill is one segment of all the rows; a decode step of B
/// sequences is B segments of one row.
struct Segment {
    let state: SequenceState
    let row0: Int
    let rows: Int
    var position: Int { state.length }
}

/// A zero-initialised f32 buffer with a stable address (decoding state handed to kernels).
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(_ count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }
    deinit { pointer.deallocate() }
}
