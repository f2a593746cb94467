import Foundation
import CZstd

/// A source of bytes: a file, stdin, a zstd decoder over another reader.
public protocol ByteReader: AnyObject {
    /// The name used in error messages ("teacher.dlt", "stdin").
    var name: String { get }
    /// Reads up to `buf.count` bytes; returns 0 only at the end of input.
    func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A sink of bytes.
public protocol ByteWriter: AnyObject {
    func write(_ buf: UnsafeRawBufferPointer) throws
    /// Flushes and finishes the stream (for a file: renames it into place).
    func close() throws
}

extension ByteWriter {
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }
    public func write(_ s: String) throws { var s = s; try s.withUTF8 { try write(UnsafeRawBufferPointer($0)) } }
}

extension ByteReader {
    /// Reads exactly `buf.count` bytes. Returns false at a clean end of input (no byte read);
    /// throws when input ends part-way (a truncated record).
    public func readExactly(into buf: UnsafeMutableRawBufferPointer, what: String) throws -> Bool {
        var off = 0
        while off < buf.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buf[off...]))
            if n == 0 {
                if off == 0 { return false }
                throw DistilError.input(name, "truncated: input ends inside \(what) (\(off) of \(buf.count) bytes)")
            }
            off += n
        }
        return true
    }

    /// Reads everything (for small inputs: configs, JSON files). Refuses more than `limit` bytes.
    public func readAll(limit: Int = 1 << 30) throws -> [UInt8] {
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { break }
            if out.count + n > limit { throw DistilError.input(name, "larger than the \(limit)-byte limit") }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}

/// Reads a file descriptor (a path, or stdin for "-").
public final class FileReader: ByteReader {
    public let name: String
    let fd: Int32
    let owns: Bool

    /// `path` "-" means stdin. With `regularOnly` anything but a regular file (a FIFO, a device, a
    /// socket) is refused: a file of a model directory must never block the reader.
    public init(path: String, regularOnly: Bool = false) throws {
        if path == "-" {
            name = "stdin"; fd = 0; owns = false
        } else {
            name = path
            // O_NONBLOCK: opening a FIFO that has no writer would otherwise wait forever, before
            // fstat could tell what it is. It is cleared again for the reads.
            fd = open(path, O_RDONLY | O_CLOEXEC | (regularOnly ? O_NONBLOCK : 0))
            owns = true
            if fd < 0 { throw DistilError.input(path, "cannot open: \(String(cString: strerror(errno)))") }
            var st = stat()
            if fstat(fd, &st) == 0 {
                let type = st.st_mode & S_IFMT
                if type == S_IFDIR {
                    close(fd)
                    throw DistilError.input(path, "is a directory, expected a file")
                }
                if regularOnly && type != S_IFREG {
                    close(fd)
                    throw DistilError.input(path, "is not a regular file (a FIFO, device or socket)")
                }
            }
            if regularOnly { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
        }
    }

    deinit { if owns { close(fd) } }

    public func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buf.baseAddress, buf.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw DistilError.input(name, "read failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// An in-memory reader (tests, small payloads).
public final class MemoryReader: ByteReader {
    public let name: String
    let bytes: [UInt8]
    var pos = 0
    public init(_ bytes: [UInt8], name: String = "memory") { self.bytes = bytes; self.name = name }
    public func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buf.count, bytes.count - pos)
        if n > 0 {
            bytes.withUnsafeBytes { src in
                buf.baseAddress!.copyMemory(from: src.baseAddress! + pos, byteCount: n)
            }
            pos += n
        }
        return n
    }
}

/// An in-memory writer (tests).
public final class MemoryWriter: ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public func write(_ buf: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: buf) }
    public func close() throws {}
}

/// Writes to stdout ("-" or nil) or to a file that appears only when complete:
/// the bytes go to `PATH.tmp-PID` beside it and are renamed onto PATH by `close()`.
/// If the process fails before `close()`, `abort()` (or the atexit cleanup) removes the temporary;
/// a process killed outright (SIGKILL, power loss) cannot, so each new writer of PATH removes the
/// `PATH.tmp-PID` files of processes that no longer exist (`removeStaleTemps`).
public final class FileWriter: ByteWriter {
    public let name: String
    let fd: Int32
    let finalPath: String?
    let tmpPath: String?
    /// stdout is a regular file (synced at close, like a named output).
    let stdoutFile: Bool
    var buffer: [UInt8] = []
    var closed = false

    nonisolated(unsafe) static var pendingTemps = Set<String>()
    nonisolated(unsafe) static var cleanupInstalled = false

    public init(path: String?) throws {
        if path == nil || path == "-" {
            let file = FileWriter.stdoutName()
            name = file ?? "stdout"; fd = 1; finalPath = nil; tmpPath = nil; stdoutFile = file != nil
        } else {
            let p = path!
            name = p
            FileWriter.removeStaleTemps(of: p)
            let tmp = p + ".tmp-\(getpid())"
            fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if fd < 0 { throw DistilError.input(p, "cannot create: \(String(cString: strerror(errno)))") }
            finalPath = p; tmpPath = tmp; stdoutFile = false
            FileWriter.pendingTemps.insert(tmp)
            if !FileWriter.cleanupInstalled {
                FileWriter.cleanupInstalled = true
                atexit { FileWriter.removePendingTemps() }
            }
        }
        buffer.reserveCapacity(1 << 20)
    }

    /// stdout redirected to a file is named by that file: a write that fails (a full disk) says
    /// which file it could not write.
    static func stdoutName() -> String? {
        var st = stat()
        guard fstat(1, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return nil }
        var buf = [CChar](repeating: 0, count: 4097)
        let n = readlink("/proc/self/fd/1", &buf, 4096)
        return "stdout" + (n > 0 ? " (\(String(cString: buf)))" : "")
    }

    /// Removes `path.tmp-PID` files left by processes that are gone (kill -9 of an earlier run).
    /// A PID that is alive (or not ours to signal) keeps its file: it may be a writer running now.
    /// The PID test is this machine's, so a folder written by two machines at once (a shared
    /// file system) must not use the same output names on both.
    public static func removeStaleTemps(of path: String) {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path, prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for n in names where n.hasPrefix(prefix) {
            let digits = n.dropFirst(prefix.count)
            guard let pid = Int32(digits), pid > 0, String(pid) == digits, pid != getpid() else { continue }
            if !FileWriter.isRunning(pid) { unlink(dir + "/" + n) }
        }
    }

    /// Whether `pid` is a live process here: a zombie (killed, not yet reaped by its parent) counts as
    /// gone, since it will never write again.
    static func isRunning(_ pid: Int32) -> Bool {
        if kill(pid, 0) != 0 && errno == ESRCH { return false }
        // /proc/PID/stat: "PID (COMM) STATE ..."; COMM may hold spaces and parentheses, so the state is
        // the first field after the last ')'.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        return state != "Z" && state != "X"
    }

    /// Removes temporaries of writers that never closed (called at exit and by the error path).
    public static func removePendingTemps() {
        for t in pendingTemps { unlink(t) }
        pendingTemps.removeAll()
    }

    public func write(_ buf: UnsafeRawBufferPointer) throws {
        if buffer.count + buf.count > (1 << 20) { try flush() }
        if buf.count >= (1 << 20) { try writeFD(buf) } else { buffer.append(contentsOf: buf) }
    }

    func flush() throws {
        if buffer.isEmpty { return }
        try buffer.withUnsafeBytes { try writeFD($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    func writeFD(_ buf: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < buf.count {
            let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { throw DistilError("\(name): the reading end of the pipe closed", kind: .runtime) }
                throw DistilError("\(name): write failed: \(String(cString: strerror(errno)))", kind: .runtime)
            }
            off += n
        }
    }

    /// Writes out and syncs every byte without placing the file yet: a caller placing several files
    /// together syncs each first, so that a full disk stops it before any is renamed.
    public func sync() throws {
        try flush()
        if (tmpPath != nil || stdoutFile) && fsync(fd) != 0 && errno != EINVAL {
            throw DistilError("\(name): fsync failed: \(String(cString: strerror(errno)))", kind: .runtime)
        }
    }

    public func close() throws {
        if closed { return }
        closed = true
        // On disk before it is placed (stdout into a file: before the pipeline renames its NAME.part
        // once we exit 0), and a delayed ENOSPC or EIO is reported here, not lost.
        try sync()
        guard let tmpPath, let finalPath else { return }
        Glibc.close(fd)
        if rename(tmpPath, finalPath) != 0 {
            unlink(tmpPath)
            throw DistilError("\(finalPath): rename failed: \(String(cString: strerror(errno)))", kind: .runtime)
        }
        FileWriter.pendingTemps.remove(tmpPath)
    }

    /// Drops a file output without placing it.
    public func abort() {
        if closed { return }
        closed = true
        if let tmpPath { Glibc.close(fd); unlink(tmpPath); FileWriter.pendingTemps.remove(tmpPath) }
    }

    deinit { if !closed { abort() } }
}

/// Writes a small file atomically (state files, verdicts): temporary, fsync, rename.
public func writeFileAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let w = try FileWriter(path: path)
    try w.write(bytes)
    try w.close()
}

/// Reads a whole small file with a size bound (configs, headers, JSON documents).
public func readFile(_ path: String, limit: Int = 64 << 20) throws -> [UInt8] {
    let r = try FileReader(path: path, regularOnly: path != "-")
    var st = stat()
    if r.owns, fstat(r.fd, &st) == 0, Int(st.st_size) > limit {
        throw DistilError.input(path, "\(st.st_size) bytes, more than the \(limit)-byte limit")
    }
    return try r.readAll(limit: limit)
}

/// zstd frames start with these four bytes.
public let zstdMagic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

/// Opens an input that may be zstd-compressed or plain (sniffed from the first bytes).
public func openInput(_ path: String) throws -> ByteReader {
    let raw = try FileReader(path: path)
    let peek = PeekReader(raw)
    let head = try peek.peek(4)
    if head == zstdMagic { return ZstdReader(peek) }
    return peek
}

/// A reader that can look at its first bytes without consuming them.
public final class PeekReader: ByteReader {
    let inner: ByteReader
    var pending: [UInt8] = []
    public var name: String { inner.name }
    public init(_ inner: ByteReader) { self.inner = inner }

    public func peek(_ n: Int) throws -> [UInt8] {
        var tmp = [UInt8](repeating: 0, count: n)
        while pending.count < n {
            let got = try tmp.withUnsafeMutableBytes { try inner.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<(n - pending.count)])) }
            if got == 0 { break }
            pending.append(contentsOf: tmp[0..<got])
        }
        return Array(pending.prefix(n))
    }

    public func read(into buf: UnsafeMutableRawBufferPointer) throws -> Int {
        if !pending.isEmpty {
            let n = min(buf.count, pending.count)
            pending.withUnsafeBytes { buf.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            pending.removeFirst(n)
            return n
        }
        return try inner.read(into: buf)
    }
}
