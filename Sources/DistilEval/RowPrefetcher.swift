import DistilFormats
import Foundation

/// Reads one prompt's teacher rows on a thread of its own while the student's forward pass runs, at
/// most `ahead` rows beyond what the scorer has taken: decompression, checksums and validation are
/// serial work that would otherwise leave all but one core idle between the forward pass's chunks.
/// The reader belongs to this thread until `finish()` returns.
final class RowPrefetcher: @unchecked Sendable {
    private let stream: TeacherStreamReader
    private let total: Int
    private let ahead: Int
    private let what: String
    private let cond = NSCondition()
    private var queued = TeacherRawRows(vocab: 0)
    private var produced = 0
    private var failure: Error?
    private var stopping = false
    private var exited = false

    /// Starts reading the current prompt's `rows` rows in pieces of `piece`; `what` names the
    /// prompt in errors.
    init(_ stream: TeacherStreamReader, rows: Int, piece: Int, ahead: Int, what: String) {
        self.stream = stream
        self.what = what
        total = rows
        self.ahead = max(ahead, piece)
        queued = TeacherRawRows(vocab: stream.header.vocab_size)
        let piece = max(1, piece)
        Thread.detachNewThread { [self] in self.produce(piece) }
    }

    private func produce(_ piece: Int) {
        cond.lock()
        while produced < total && !stopping {
            while queued.count >= ahead && !stopping { cond.wait() }
            if stopping { break }
            let want = min(piece, total - produced)
            cond.unlock()
            let result = Result { try stream.readRawRows(maxRows: want) }
            cond.lock()
            switch result {
            case .success(let rows):
                if rows.count < want {   // the stream ran out of rows before the prompt's continuation did
                    failure = DistilError.input(stream.name, "\(what): \(produced + rows.count) teacher rows where \(total) were expected")
                    stopping = true
                }
                queued.append(rows)
                produced += rows.count
            case .failure(let e):
                failure = e
                stopping = true
            }
            cond.broadcast()
        }
        exited = true
        cond.broadcast()
        cond.unlock()
    }

    /// The next `n` rows, waiting for the reading thread; throws its error.
    func take(_ n: Int) throws -> TeacherRawRows {
        cond.lock()
        defer { cond.unlock() }
        while queued.count < n && failure == nil && !exited { cond.wait() }
        if queued.count >= n {
            let out = queued.slice(0..<n)
            queued = queued.slice(n..<queued.count)
            cond.broadcast()
            return out
        }
        if let failure { throw failure }
        throw DistilError.input(stream.name, "\(what): \(produced) teacher rows where \(total) were expected")
    }

    /// Stops reading (if it has not finished) and waits for the thread to exit: the stream is the
    /// caller's again. Throws the reading thread's error if there was one.
    func finish() throws {
        cond.lock()
        stopping = true
        cond.broadcast()
        while !exited { cond.wait() }
        let f = failure
        cond.unlock()
        if let f { throw f }
    }
}
