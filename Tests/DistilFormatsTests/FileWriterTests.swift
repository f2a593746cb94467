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

    /// A FIFO given where a file is read whole (configs, JSON documents) is refused at once.
    func testReadFileRefusesAFIFO() throws {
        let p = tempDir() + "/config.json"
        XCTAssertEqual(mkfifo(p, 0o644), 0)
        XCTAssertThrowsError(try readFile(p)) { e in XCTAssertTrue("\(e)".contains("config.json: is not a regular file"), "\(e)") }
    }
}
