import DistilModel
import Foundation
import XCTest

/// Every config value the engine uses is checked by ModelConfig.parse (which dl-check runs), so a
/// config the engine cannot compute is refused by name before any compute, never truncated or run
/// into a trap or a non-finite KL.
final class ConfigValidationTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func config(_ name: String) throws -> [String: Any] {
        let url = ConfigValidationTests.fixtures.appendingPathComponent(name).appendingPathComponent("config.json")
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }

    /// Parses `base` with `edit` applied; returns the error message (or "accepted").
    func outcome(_ base: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        var c = try config(base)
        edit(&c)
        // Through JSON text, as dl-check reads it (1.0 stays a double, true a boolean).
        let top = try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: c)) as! [String: Any]
        do { _ = try ModelConfig.parse(top, path: "config.json"); return "accepted" } catch { return "\(error)" }
    }

    func testIntegersMustBeIntegers() throws {
        XCTAssertEqual(try outcome("qwen3-tied") { $0["num_attention_heads"] = 4.5 },
                       "config.json: num_attention_heads = 4.5 is not an integer in 1...1024")
        XCTAssertTrue(try outcome("qwen3-tied") { $0["hidden_size"] = 1e30 }.contains("hidden_size = 1e+30 is not an integer"))
        XCTAssertTrue(try outcome("qwen3-tied") { $0["num_hidden_layers"] = true }.contains("num_hidden_layers = 1 is not an integer"))
        XCTAssertEqual(try outcome("qwen3-tied") { $0["num_attention_heads"] = 4.0 }, "accepted")
    }

    func testRealNumbersInRange() throws {
        for (k, v) in [("rms_norm_eps", 0.0), ("rms_norm_eps", -1e-6), ("rms_norm_eps", 2.0), ("rope_theta", 0.0), ("rope_theta", -10000.0), ("rope_theta", 1e13)] {
            XCTAssertTrue(try outcome("qwen3-tied") { $0[k] = v }.hasPrefix("config.json: \(k) = "), "\(k) \(v)")
        }
        XCTAssertTrue(try outcome("qwen3-tied") { $0["rms_norm_eps"] = "1e-6" }.contains("rms_norm_eps = 1e-6 is not a number in (0, 1)"))
    }

    func testMaxPositionEmbeddingsIsChecked() throws {
        for v: Any in [0, -5, 1.5, "4096", 1e12] {
            XCTAssertTrue(try outcome("qwen3-tied") { $0["max_position_embeddings"] = v }.contains("max_position_embeddings = "), "\(v)")
        }
        XCTAssertEqual(try outcome("qwen3-tied") { $0.removeValue(forKey: "max_position_embeddings") }, "accepted")
    }

    func testConsistency() throws {
        XCTAssertTrue(try outcome("qwen3-tied") { $0.removeValue(forKey: "head_dim"); $0["hidden_size"] = 66 }
            .contains("hidden_size 66 is not a multiple of num_attention_heads"))
        // Partial rotary: beyond the head (an index past it in the rotary loop) or rotating nothing.
        for f in [5.0, 0.0, -0.25, 0.01] {
            XCTAssertTrue(try outcome("qwen3_5-text") { c in
                var rp = c["rope_parameters"] as? [String: Any] ?? [:]; rp["partial_rotary_factor"] = f; c["rope_parameters"] = rp
            }.contains("partial_rotary_factor"), "\(f)")
        }
        XCTAssertTrue(try outcome("qwen3_moe") { $0["mlp_only_layers"] = [99] }.contains("mlp_only_layers names 99"))
        XCTAssertTrue(try outcome("qwen3_moe") { $0["mlp_only_layers"] = [0.5] }.contains("mlp_only_layers names 0.5"))
    }

    /// Every committed engine fixture still parses.
    func testFixturesStillParse() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: ConfigValidationTests.fixtures.path).filter {
            FileManager.default.fileExists(atPath: ConfigValidationTests.fixtures.appendingPathComponent($0).appendingPathComponent("config.json").path)
        }
        XCTAssertGreaterThan(names.count, 5)
        for n in names { XCTAssertEqual(try outcome(n) { _ in }, "accepted", n) }
    }
}
