import Foundation

/// The project's documented deterministic generator (docs/FORMATS.md, "Seeds").
///
/// A SHA-256 counter stream: key = SHA-256("distil/rng/v1\n" + domain + "\n" + seed), and the
/// i-th 32-byte output block is SHA-256(key || u64le(i)), i = 0, 1, 2, ...; 64-bit draws take
/// the block's bytes 8 at a time, little-endian. Integers in [0, n) use rejection sampling
/// (no modulo bias); doubles in [0, 1) use the top 53 bits. Every machine and language that
/// has SHA-256 reproduces it exactly.
public struct DistilRNG {
    let key: [UInt8]
    var counter: UInt64 = 0
    var block: [UInt8] = []
    var offset = 32

    /// `domain` separates uses ("prompts", "sample"); `seed` is usually the block hash in hex
    /// (lowercase, no 0x) followed by "/" and the block number.
    public init(domain: String, seed: String) {
        key = Hashing.sha256(Array("distil/rng/v1\n\(domain)\n\(seed)".utf8))
    }

    /// The seed string for a block: "HASH/NUMBER", hash lowercased without a 0x prefix.
    public static func seed(blockHash: String, block: Int) -> String {
        "\(normalizeHex(blockHash))/\(block)"
    }

    public static func normalizeHex(_ s: String) -> String {
        var h = s.lowercased()
        if h.hasPrefix("0x") { h.removeFirst(2) }
        return h
    }

    public mutating func nextUInt64() -> UInt64 {
        if offset == 32 {
            var input = key
            withUnsafeBytes(of: counter.littleEndian) { input.append(contentsOf: $0) }
            block = Hashing.sha256(input)
            counter += 1
            offset = 0
        }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(block[offset + i]) << (8 * UInt64(i)) }
        offset += 8
        return v
    }

    /// Uniform in 0..<n (n > 0), by rejection: draws at or above the largest multiple of n are redrawn.
    public mutating func nextInt(below n: Int) -> Int {
        precondition(n > 0)
        let un = UInt64(n)
        let limit = UInt64.max - (UInt64.max % un)   // values < limit map uniformly
        while true {
            let v = nextUInt64()
            if v < limit { return Int(v % un) }
        }
    }

    /// Uniform in [0, 1) with 53 bits.
    public mutating func nextDouble() -> Double {
        Double(nextUInt64() >> 11) * 0x1p-53
    }
}

/// SplitMix64: a fast non-cryptographic generator for benchmark data (tens of millions of draws),
/// never for anything the pipeline's outputs depend on (that is `DistilRNG`).
public struct SplitMix64: Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    /// Standard normal (Box–Muller).
    public mutating func gaussian() -> Double {
        let u = Swift.max(uniform(), 1e-300), v = uniform()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
}
