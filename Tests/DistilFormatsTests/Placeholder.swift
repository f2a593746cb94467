import XCTest
final class DistilFormatsTestsPlaceholder: XCTestCase { func testNothing() {} }
