/// What one dl-fetch run transferred (`dl-fetch --stats FILE`; docs/FORMATS.md, "Fetch statistics").
///
/// Kept apart from the manifests on purpose: a manifest says what a model *is* and is the same
/// bytes whether its files came from the network or the cache (reruns and reproductions compare
/// them); these figures say what *this run* cost and differ between a cold and a warm cache.
public struct FetchStats: Codable, Equatable, Sendable {
    /// One commitment's share, in the order the manifests were written. Models are fetched one
    /// after another (a model's files in parallel), so each figure is the client's counter
    /// before and after that model.
    public struct Model: Codable, Equatable, Sendable {
        public var uid: Int
        public var repo: String
        /// HTTP requests sent for it (listing, metadata, ranges, retries); 0 for a local directory.
        public var requests: Int
        /// Body bytes received for it; 0 when every file was already in the cache.
        public var bytes_received: Int64
        public init(uid: Int, repo: String, requests: Int, bytes_received: Int64) {
            self.uid = uid; self.repo = repo; self.requests = requests; self.bytes_received = bytes_received
        }
    }

    public var requests: Int
    public var bytes_received: Int64
    public var models: [Model]

    public init(models: [Model]) {
        self.models = models
        requests = models.reduce(0) { $0 + $1.requests }
        bytes_received = models.reduce(0) { $0 + $1.bytes_received }
    }
}
