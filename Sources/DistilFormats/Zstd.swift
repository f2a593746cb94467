import Foundation
import CZstd

/// Streaming zstd decompression over another reader. Detects a stream that ends inside a
/// frame ("truncated zstd frame") and data that is not zstd at all.
public final class ZstdReader: ByteReader {
    let inner: ByteReader
    let dctx: OpaquePointer
    var inBuf: UnsafeMutableRawPointer
    let inCap: Int
    var inPos = 0
    var inSize = 0
    var innerEOF = false
    var frameOpen = false      // a frame has started and not ended
    var sawAnyInput = false
    public var name: String { inner.name }

    public init(_ inner: ByteReader) {
        self.inner = inner
        dctx = ZSTD_createDCtx()!
        inCap = ZSTD_DStreamInSize()
        inBuf = UnsafeMutableRawPointer.allocate(byteCount: inCap, alignment: 16)
    }

    deinit {
        ZSTD_freeDCtx(dctx)
        inBuf.deallocate()
    }

    public func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        if buf.count == 0 { return 0 }
        while true {
            if inPos == inSize && !innerEOF {
                inSize = try inner.read(into: UnsafeMutableRawBufferPointer(start: inBuf, count: inCap))
                inPos = 0
                if inSize == 0 { innerEOF = true } else { sawAnyInput = true }
            }
            if inPos == inSize && innerEOF {
                if frameOpen { throw DistilError.input(name, "truncated zstd frame (the stream ends inside a compressed frame)") }
                if !sawAnyInput { throw DistilError.input(name, "empty input, expected a zstd stream") }
                return 0
            }
            var input = ZSTD_inBuffer(src: inBuf, size: inSize, pos: inPos)
            var output = ZSTD_outBuffer(dst: buf.baseAddress, size: buf.count, pos: 0)
            let ret = ZSTD_decompressStream(dctx, &output, &input)
            inPos = input.pos
            if ZSTD_isError(ret) != 0 {
                let msg = String(cString: ZSTD_getErrorName(ret))
                throw DistilError.input(name, "corrupt zstd stream: \(msg)")
            }
            frameOpen = ret != 0
            if output.pos > 0 { return output.pos }
        }
    }
}

/// Streaming zstd compression into another writer, with zstd's frame checksum on.
public final class ZstdWriter: ByteWriter {
    let inner: ByteWriter
    let cctx: OpaquePointer
    var outBuf: UnsafeMutableRawPointer
    let outCap: Int
    var closed = false

    /// `workers` ≥ 1: libzstd compresses on that many threads of its own (ZSTD_c_nbWorkers), so a
    /// write hands the bytes over and returns while earlier ones are still being compressed. Its
    /// output does not depend on how many workers there are (jobs are cut by size, not by thread),
    /// but differs from the single-threaded output (0); both decompress to the same bytes.
    public init(_ inner: ByteWriter, level: Int32 = 3, workers: Int32 = 0) {
        self.inner = inner
        cctx = ZSTD_createCCtx()!
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        if workers > 0 { ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, workers) }
        outCap = ZSTD_CStreamOutSize()
        outBuf = UnsafeMutableRawPointer.allocate(byteCount: outCap, alignment: 16)
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        outBuf.deallocate()
    }

    public func write(_ buf: UnsafeRawBufferPointer) throws {
        var input = ZSTD_inBuffer(src: buf.baseAddress, size: buf.count, pos: 0)
        while input.pos < input.size {
            var output = ZSTD_outBuffer(dst: outBuf, size: outCap, pos: 0)
            let ret = ZSTD_compressStream2(cctx, &output, &input, ZSTD_e_continue)
            if ZSTD_isError(ret) != 0 { throw DistilError("zstd: \(String(cString: ZSTD_getErrorName(ret)))", kind: .runtime) }
            if output.pos > 0 { try inner.write(UnsafeRawBufferPointer(start: outBuf, count: output.pos)) }
        }
    }

    public func close() throws {
        if closed { return }
        closed = true
        var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while true {
            var output = ZSTD_outBuffer(dst: outBuf, size: outCap, pos: 0)
            let ret = ZSTD_compressStream2(cctx, &output, &input, ZSTD_e_end)
            if ZSTD_isError(ret) != 0 { throw DistilError("zstd: \(String(cString: ZSTD_getErrorName(ret)))", kind: .runtime) }
            if output.pos > 0 { try inner.write(UnsafeRawBufferPointer(start: outBuf, count: output.pos)) }
            if ret == 0 { break }
        }
        try inner.close()
    }
}

/// One-shot helpers for small payloads.
public enum Zstd {
    public static func compress(_ bytes: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        let m = MemoryWriter()
        let z = ZstdWriter(m, level: level)
        try z.write(bytes)
        try z.close()
        return m.bytes
    }

    public static func decompress(_ bytes: [UInt8], name: String = "memory", limit: Int = 1 << 30) throws -> [UInt8] {
        try ZstdReader(MemoryReader(bytes, name: name)).readAll(limit: limit)
    }
}
