import DistilTokenizer
import Foundation
import XCTest

final class TokenizerPathTests: XCTestCase {
    func testADirectoryHoldsTokenizerJSONAndAFileNamesItsDirectory() throws {
        let dir = NSTemporaryDirectory() + "distil-tokpath-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(TokenizerPath(dir), TokenizerPath(file: dir + "/tokenizer.json", directory: dir))
        XCTAssertEqual(TokenizerPath(dir + "/other.json"), TokenizerPath(file: dir + "/other.json", directory: dir))
        XCTAssertEqual(TokenizerPath("tokenizer.json"), TokenizerPath(file: "tokenizer.json", directory: "."))
    }
}
