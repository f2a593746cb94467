import XCTest
final class DistilModelTestsPlaceholder: XCTestCase { func testNothing() {} }
