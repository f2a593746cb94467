import DistilFormats
import Foundation
import XCTest

final class FileWriterTests: XCTestCase {
    /// A writer killed outright leaves PATH.tmp-PID; the next writer of PATH removes it when that
    /// process is gone, and leaves a live process's temporary and other names alone.
    func testStaleTemporariesOfDeadProcessesAreRemoved() throws {
        let d = tempDir()
        let dead: Int32 = 2_147_483_646   // above any pid_max: no such process
        for n in ["out.jsonl.tmp-\(dead)", "out.jsonl.tmp-1", "other.jsonl.tmp-\(dead)", "out.jsonl.tmp-12x"] {
            try writeFileAtomically(d + "/" + n, [1])
        }
        let w = try FileWriter(path: d + "/out.jsonl")
        try w.write([2])
        try w.close()
        let left = try FileManager.default.contentsOfDirectory(atPath: d).sorted()
        XCTAssertEqual(left, ["other.jsonl.tmp-\(dead)", "out.jsonl", "out.jsonl.tmp-1", "out.jsonl.tmp-12x"])
    }

    /// A writer killed but not yet reaped (a zombie) is gone too: its temporary is removed.
    func testTemporaryOfAZombieIsRemoved() throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { argv.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&pid, "/bin/true", nil, nil, argv, environ), 0)
        defer { var st: Int32 = 0; waitpid(pid, &st, 0) }
        // Not waited for yet: once it has exited it stays a zombie.
        var zombie = false
        for _ in 0..<500 where !zombie {
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            zombie = stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") == true
            if !zombie { usleep(10_000) }
        }
        XCTAssertTrue(zombie)
        let d = tempDir()
        try writeFileAtomically(d + "/v.json.tmp-\(pid)", [1])
        try writeFileAtomically(d + "/v.json", [2])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: d), ["v.json"])
    }

    /// A FIFO given where a file is read whole (configs, JSON documents) is refused at once.
    func testReadFileRefusesAFIFO() throws {
        let p = tempDir() + "/config.json"
        XCTAssertEqual(mkfifo(p, 0o644), 0)
        XCTAssertThrowsError(try readFile(p)) { e in XCTAssertTrue("\(e)".contains("config.json: is not a regular file"), "\(e)") }
    }
}
