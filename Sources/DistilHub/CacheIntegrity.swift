import DistilFormats
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// A cache outlives the process that filled it: a crash, a full disk, another tool or a person can
// change a blob after it was verified, cut it short, or leave a snapshot entry that dangles or
// points elsewhere. Nothing read from the cache is taken on trust before compute: a snapshot entry
// must be exactly the relative symlink we would write, and a blob must have the listed size and,
// unless it is unchanged since it was last hashed, the listed hash. Anything else is refetched.
//
// Hashing every reused blob every epoch would re-read every committed model (terabytes on a real
// subnet), so a verified blob gets a stamp: `.locks/models--ORG--NAME/ETAG.verified`, holding the
// blob's inode, size, mtime and ctime. Any write to the blob moves its ctime (which user space
// cannot set back), so a stamp that still matches means the bytes are the ones that were hashed
// (a blob is stamped only once its ctime is two seconds old, see writeStamp).
// The stamp lives beside huggingface_hub's lock files because its scan skips `.locks`, and a
// folder of our own at the cache root would be reported as a corrupted repo.
extension RepoCache {
    public func stamp(_ etag: String) -> String { root + "/.locks/" + repo.folderName + "/" + etag + ".verified" }

    /// The symlink target of a snapshot entry, as huggingface_hub writes it.
    public static func linkTarget(_ path: String, etag: String) -> String {
        String(repeating: "../", count: path.split(separator: "/").count + 1) + "blobs/" + etag
    }

    /// Whether snapshots/COMMIT/PATH is exactly the symlink to blobs/ETAG (not a file, not a link
    /// elsewhere, not dangling).
    public func linkIsExact(_ file: RepoFile, commit: String) -> Bool {
        guard let etag = file.etag,
              let dest = try? FileManager.default.destinationOfSymbolicLink(atPath: snapshot(commit) + "/" + file.path)
        else { return false }
        return dest == RepoCache.linkTarget(file.path, etag: etag)
    }

    static func identity(_ st: stat) -> String {
        "\(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)\n"
    }

    /// True when the blob has the listed size and a stamp that still matches it.
    public func hasValidStamp(_ file: RepoFile) -> Bool {
        guard let etag = file.etag else { return false }
        var st = stat()
        guard lstat(blob(etag), &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) == file.size,
              let b = try? readFile(stamp(etag), limit: 256) else { return false }
        return b == Array(RepoCache.identity(st).utf8)
    }

    /// Records that the blob, as it is now, was hashed and matched. Not while its ctime is under
    /// two seconds old: file times tick coarsely (a few ms), so a write in the same tick after the
    /// stamp would leave the stamp matching (git's "racily clean" problem); such a blob is simply
    /// hashed again next time, and stamped then.
    public func writeStamp(_ etag: String) {
        var st = stat()
        guard lstat(blob(etag), &st) == 0 else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard now.tv_sec - st.st_ctim.tv_sec >= 2 else { return }
        let path = stamp(etag)
        try? makeDirs((path as NSString).deletingLastPathComponent)
        try? writeFileAtomically(path, Array(RepoCache.identity(st).utf8))
    }

    public enum BlobState: Equatable { case valid, missing, corrupt(String) }

    /// Checks a blob already in the cache against the listing: size, then the hash (skipped while
    /// its stamp matches). A corrupt blob is removed, with its stamp, so the caller fetches it again.
    /// Call it holding the blob's lock.
    public func verifyBlob(_ file: RepoFile) -> BlobState {
        guard let etag = file.etag else { return .missing }
        let path = blob(etag)
        var st = stat()
        guard lstat(path, &st) == 0 else { return .missing }
        func discard(_ why: String) -> BlobState {
            unlink(path); unlink(stamp(etag))
            return .corrupt(why)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return discard("blobs/\(etag) is not a regular file") }
        guard Int64(st.st_size) == file.size else {
            return discard("blobs/\(etag) holds \(st.st_size) bytes, the listing says \(file.size)")
        }
        if hasValidStamp(file) { return .valid }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return discard("blobs/\(etag) cannot be read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let hasher = FileHasher(file, fd: fd)
        hasher.written(upTo: file.size)
        let got = hasher.finish(size: file.size) ?? "(unreadable)"
        guard got == hasher.expected else { return discard("blobs/\(etag) hashes to \(got), not \(hasher.expected)") }
        writeStamp(etag)
        return .valid
    }
}
