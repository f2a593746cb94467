import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A byte source that can be read at any offset: a local file (pread) or a remote file read with
/// HTTP Range requests (DistilHub.RemoteFile). Readers of indexed formats (parquet, safetensors
/// headers) take one of these so they fetch only the bytes they need.
public protocol RandomAccessSource: AnyObject {
    /// The name errors carry (a path or URL).
    var name: String { get }
    /// Total size in bytes.
    var size: Int64 { get }
    /// Exactly `count` bytes at `offset`; throws when the range is outside the source or the
    /// source ends early. Callers bound `count` before calling.
    func read(offset: Int64, count: Int) throws -> [UInt8]
}

/// A local file read with pread(2).
public final class LocalFileSource: RandomAccessSource {
    public let name: String
    public let size: Int64
    private let fd: Int32

    public init(path: String) throws {
        name = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DistilError.input(path, String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno; close(fd)
            throw DistilError.input(path, String(cString: strerror(e)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { close(fd); throw DistilError.input(path, "not a regular file") }
        size = Int64(st.st_size)
    }

    deinit { close(fd) }

    public func read(offset: Int64, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= size, Int64(count) <= size - offset else {
            throw DistilError.input(name, "read of \(count) bytes at offset \(offset) is outside the file (\(size) bytes)")
        }
        if count == 0 { return [] }
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        try out.withUnsafeMutableBytes { buf in
            while done < count {
                let n = pread(fd, buf.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DistilError.input(name, String(cString: strerror(errno)))
                }
                if n == 0 { throw DistilError.input(name, "file ended at \(offset + Int64(done)) (truncated while reading?)") }
                done += n
            }
        }
        return out
    }
}

/// The size of the file at `path`, following symlinks (a Hub snapshot entry is a symlink to its
/// blob; Foundation's attributesOfItem would give the link's own size). nil when it cannot be read.
public func fileSize(_ path: String) -> Int64? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return Int64(st.st_size)
}
