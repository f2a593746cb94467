import DistilFormats
import Foundation

/// dl-fetch as one call: every commitment to a manifest, a local directory read in place and
/// anything else from the Hub.
public struct FetchRun {
    public var config: HubConfig
    public var options: FetchOptions

    public init(config: HubConfig, options: FetchOptions) { self.config = config; self.options = options }

    /// Where metadata-only mode keeps safetensors headers by default: $XDG_CACHE_HOME/distil/headers,
    /// else ~/.cache/distil/headers (an empty XDG_CACHE_HOME counts as unset, as the XDG spec says).
    public static func defaultHeadersDir(environment env: [String: String] = ProcessInfo.processInfo.environment,
                                         home: String = NSHomeDirectory()) -> String {
        (env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.cache") + "/distil/headers"
    }

    /// The commitments of every file in `paths` in order (none: stdin).
    public static func readCommitments(_ paths: [String]) throws -> [Commitment] {
        var list: [Commitment] = []
        for path in paths.isEmpty ? ["-"] : paths { list += try JSONLReader<Commitment>(path: path).readAll() }
        return list
    }

    /// One manifest per commitment, in order, each written as soon as it is known; returns what
    /// the run transferred. A write into the cache that fails (a full disk) ends the run with that
    /// error: it is ours, not the model's.
    @discardableResult
    public func run(_ commitments: [Commitment], into w: JSONLWriter) throws -> FetchStats {
        let hub = HubClient(config: config, options: options)
        var stats: [FetchStats.Model] = []
        // Two commitments under one uid are decided here, once, before anything is fetched.
        let decided = CommitmentRule.resolve(commitments)
        for v in decided.void { Log.warn("uid \(v.commitment.uid) \(v.commitment.repo) (block \(v.commitment.block)): void: \(v.reason)") }
        for c in decided.kept {
            let (requests0, bytes0) = (hub.requests, hub.bytesReceived)
            let m = LocalFetcher.isLocal(c.repo) ? LocalFetcher.fetch(c) : try hub.fetchStoppingOnLocalFailure(c)
            stats.append(FetchStats.Model(uid: c.uid, repo: c.repo, requests: hub.requests - requests0,
                                          bytes_received: hub.bytesReceived - bytes0))
            Log.info("uid \(c.uid) \(c.repo): \(m.outcome)\(m.message.map { " (\($0))" } ?? "")")
            try w.write(m)
        }
        return FetchStats(models: stats)
    }
}
