/// Who a model is, carried from the commitment to the verdict: the miner (uid, hotkey), what they
/// committed (repo and revision, at a block) and, once fetched, the commit it resolved to.
///
/// The same (hotkey, repo, commit) is the same model forever (`key`); a new commit is a new model.
/// The records that name a model hold one (`HoldsModelRef`: Manifest, CheckVerdict, the judge's king
/// and scored models), stored flat in their JSON; dl-check's registry keeps the commitment's (no commit).
public struct ModelRef: Codable, Hashable, Sendable {
    public var uid: Int
    public var hotkey: String
    public var repo: String
    public var revision: String?
    /// The resolved commit (Hub) or "local"; nil before a fetch, or when the fetch failed.
    public var commit: String?
    /// The commitment's block (earlier commitments win ties and own copies).
    public var block: Int

    public init(uid: Int, hotkey: String, repo: String, revision: String?, commit: String?, block: Int) {
        self.uid = uid; self.hotkey = hotkey; self.repo = repo; self.revision = revision; self.commit = commit; self.block = block
    }

    /// What stays the same model across epochs: (hotkey, repo, commit), the commit being the pinned
    /// one when known, else the committed revision, else "".
    public struct Key: Codable, Hashable, Comparable, Sendable {
        public var hotkey: String
        public var repo: String
        public var commit: String
        public init(hotkey: String, repo: String, commit: String) { self.hotkey = hotkey; self.repo = repo; self.commit = commit }
        public static func < (a: Key, b: Key) -> Bool { (a.hotkey, a.repo, a.commit) < (b.hotkey, b.repo, b.commit) }
    }

    public var key: Key { Key(hotkey: hotkey, repo: repo, commit: scoredRevision ?? "") }

    /// What was scored: the pinned commit when known, else the committed revision (what a KL record
    /// calls its `revision`).
    public var scoredRevision: String? { commit ?? revision }

    /// The same commitment (hotkey, repo, revision and block): the same miner's same entry.
    public func isSameCommitment(_ o: ModelRef) -> Bool {
        hotkey == o.hotkey && repo == o.repo && revision == o.revision && block == o.block
    }

    /// Commitment order: the earlier block, then the lower uid.
    public func precedes(_ o: ModelRef) -> Bool { (block, uid) < (o.block, o.uid) }

    /// The listing order of the judge's state: repo, hotkey, then commit (or revision).
    public static func stateOrder(_ a: ModelRef, _ b: ModelRef) -> Bool {
        (a.repo, a.hotkey, a.commit ?? a.revision ?? "") < (b.repo, b.hotkey, b.commit ?? b.revision ?? "")
    }
}

extension Commitment {
    /// The committed model, before any fetch (no commit).
    public var ref: ModelRef { ModelRef(uid: uid, hotkey: hotkey, repo: repo, revision: revision, commit: nil, block: block) }
}

/// A record that holds a `ModelRef` and more fields, stored flat beside the reference's own fields
/// (the JSON layout stays one object), readable as `record.uid`, `record.repo`, ...
@dynamicMemberLookup
public protocol HoldsModelRef {
    var model: ModelRef { get set }
}

extension HoldsModelRef {
    public subscript<T>(dynamicMember path: WritableKeyPath<ModelRef, T>) -> T {
        get { model[keyPath: path] }
        set { model[keyPath: path] = newValue }
    }
}
