import DistilFormats
import Foundation

/// Where the Hub is and where its files are kept, from the same environment variables
/// huggingface_hub reads, so both share one cache.
public struct HubConfig: Sendable {
    /// HF_ENDPOINT, default https://huggingface.co (no trailing slash).
    public var endpoint: String
    /// HF_TOKEN, else the file HF_TOKEN_PATH, else HF_HOME/token.
    public var token: String?
    /// HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (HF_HOME defaults to
    /// XDG_CACHE_HOME/huggingface).
    public var cacheDir: String
    /// HF_HUB_OFFLINE: serve from the cache, send no request, fail clearly when something is missing.
    public var offline: Bool

    public init(endpoint: String, token: String?, cacheDir: String, offline: Bool) {
        var e = endpoint
        while e.hasSuffix("/") { e.removeLast() }
        self.endpoint = e; self.token = token; self.cacheDir = cacheDir; self.offline = offline
    }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> HubConfig {
        func value(_ k: String) -> String? { env[k].flatMap { $0.isEmpty ? nil : $0 } }
        let home = value("HOME") ?? NSHomeDirectory()
        let hfHome = value("HF_HOME") ?? ((value("XDG_CACHE_HOME") ?? home + "/.cache") + "/huggingface")
        let cache = value("HF_HUB_CACHE") ?? value("HUGGINGFACE_HUB_CACHE") ?? hfHome + "/hub"
        var token = value("HF_TOKEN") ?? value("HUGGING_FACE_HUB_TOKEN")
        if token == nil {
            let path = value("HF_TOKEN_PATH") ?? hfHome + "/token"
            if let bytes = try? readFile(path, limit: 4096) {
                let t = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty { token = t }
            }
        }
        let offline = ["1", "on", "yes", "true"].contains((value("HF_HUB_OFFLINE") ?? "").lowercased())
        return HubConfig(endpoint: value("HF_ENDPOINT") ?? "https://huggingface.co", token: token,
                         cacheDir: cache, offline: offline)
    }
}

/// A model repo id and revision, validated: repo ids come from the chain and are untrusted.
public struct RepoRef: Sendable, Equatable {
    public let id: String
    public let revision: String

    /// "org/name" or a legacy "name"; each part 1–96 of [A-Za-z0-9._-], not starting or ending
    /// with "-" or ".", no "--" or ".."; a revision of at most 255 printable characters without
    /// "..", spaces or control characters.
    public init(_ id: String, revision: String?) throws {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { throw DistilError.input(id, "not a Hub repo id (want org/name)") }
        for p in parts {
            guard (1...96).contains(p.count),
                  p.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }),
                  !p.hasPrefix("-"), !p.hasPrefix("."), !p.hasSuffix("-"), !p.hasSuffix("."),
                  !p.contains("--"), !p.contains("..")
            else { throw DistilError.input(id, "not a valid Hub repo id") }
        }
        let rev = revision ?? "main"
        guard (1...255).contains(rev.utf8.count), !rev.contains(".."),
              rev.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else { throw DistilError.input(id, "revision '\(rev.prefix(80))' is not a valid git revision") }
        self.id = id
        self.revision = rev
    }

    /// True when the revision is a full commit hash (immutable).
    public var isCommit: Bool { RepoRef.isCommitHash(revision) }

    public static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// The cache folder name: "models--org--name".
    public var folderName: String { "models--" + id.replacingOccurrences(of: "/", with: "--") }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and "/" when `keepSlash`).
func percentEncode(_ s: String, keepSlash: Bool) -> String {
    var out = ""
    for b in s.utf8 {
        let c = Character(Unicode.Scalar(b))
        if (b < 0x80 && (c.isLetter || c.isNumber)) || c == "-" || c == "_" || c == "." || c == "~" || (keepSlash && c == "/") {
            out.append(c)
        } else {
            out += String(format: "%%%02X", b)
        }
    }
    return out
}
