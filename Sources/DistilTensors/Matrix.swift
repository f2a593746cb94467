import DistilFormats
import DistilKernels
import Foundation

/// A weight matrix [rows x cols] (row-major) left in its stored dtype inside the memory-mapped
/// safetensors file: nothing is copied at load, and the pages are read when a product needs them.
/// Valid while the `WeightStore` that made it lives.
public struct Matrix: @unchecked Sendable {
    public enum DType: Sendable { case bf16, f16, f32 }
    public let base: UnsafeRawPointer
    public let dtype: DType
    public let rows: Int
    public let cols: Int
    public let name: String

    public init(base: UnsafeRawPointer, dtype: DType, rows: Int, cols: Int, name: String) {
        self.base = base; self.dtype = dtype; self.rows = rows; self.cols = cols; self.name = name
    }

    public var elementBytes: Int { dtype == .f32 ? 4 : 2 }

    /// Rows r0 ..< r0 + n as a matrix of their own (an expert inside a fused tensor).
    public func rows(_ r0: Int, _ n: Int) -> Matrix {
        Matrix(base: base + r0 * cols * elementBytes, dtype: dtype, rows: n, cols: cols, name: name)
    }

    /// The stored f32 values when no conversion is needed (f32, 4-byte aligned), else nil.
    public var float32Pointer: UnsafePointer<Float>? {
        guard dtype == .f32, Int(bitPattern: base) % 4 == 0 else { return nil }
        return base.assumingMemoryBound(to: Float.self)
    }

    /// Converts rows r0 ..< r0 + n to f32 into `dst` (n x cols floats, row-major).
    public func convert(rows r0: Int, count n: Int, into dst: UnsafeMutablePointer<Float>) {
        let start = base + r0 * cols * elementBytes
        let count = n * cols
        switch dtype {
        case .bf16: Matrix.bf16ToF32(start, dst, count)
        case .f16: Matrix.f16ToF32(start, dst, count)
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: start, byteCount: count * 4)
        }
    }

    /// bfloat16 (little-endian bits) → f32: the bits shifted into the high half. Exact.
    public static func bf16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        let out = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 16 <= n {
            let h = src.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)
            out.storeBytes(of: SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, toByteOffset: 4 * i, as: SIMD16<UInt32>.self)
            i += 16
        }
        while i < n {
            dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            i += 1
        }
    }

    /// IEEE binary16 → f32, exact for every value (`Binary16.decode`).
    public static func f16ToF32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        Binary16.decode(raw: src, dst, n)
    }
}

extension WeightStore {
    /// A 2-D view [rows x cols] of a stored tensor whose shape is `shape` (its element count must be
    /// rows x cols; e.g. a fused [E, 2I, H] tensor viewed as [E * 2I, H]), in its stored dtype.
    public func matrix(_ name: String, shape: [Int], rows: Int? = nil, cols: Int? = nil) throws -> Matrix {
        guard let (fi, t) = index[name] else { throw DistilError.input(directory, "missing tensor '\(name)'") }
        guard t.shape == shape else {
            throw DistilError.input(directory, "tensor '\(name)' has shape \(t.shape), the config implies \(shape)")
        }
        let dtype: Matrix.DType
        switch t.dtype {
        case "BF16": dtype = .bf16
        case "F16": dtype = .f16
        case "F32": dtype = .f32
        default: throw DistilError.input(directory, "tensor '\(name)' has dtype \(t.dtype); the engine reads BF16, F16 and F32")
        }
        let c = cols ?? shape.last ?? 1
        let r = rows ?? (c == 0 ? 0 : t.elementCount / c)
        guard r * c == t.elementCount else {
            throw DistilError.input(directory, "tensor '\(name)' of \(t.elementCount) elements cannot be viewed as [\(r), \(c)]")
        }
        return Matrix(base: files[fi].data(t), dtype: dtype, rows: r, cols: c, name: name)
    }
}
