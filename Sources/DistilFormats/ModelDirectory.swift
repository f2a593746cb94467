import Foundation

/// A model directory as dl-fetch, dl-check, dl-teacher, dl-kl and the engine read it, with every
/// bound applied here once: its files (regular files only; a symlink out of it is refused), its
/// small JSON files (config.json, generation_config.json, tokenizer_config.json, the shard index:
/// 16 MiB each), its weight shards, and where its tokenizer is. Two extensions finish it where the
/// parsers live: each shard's safetensors header with its bounds (`ModelDirectory+Headers.swift` in
/// DistilTensors) and the special token ids (`SpecialTokens.swift` in DistilTokenizer). A model repo
/// is untrusted: nothing here allocates by a size the repo states before bounding it.
public struct ModelDirectory: Sendable {
    public let path: String
    /// The most a model's JSON file may hold.
    public static let maxJSONBytes = 16 << 20

    public init(_ path: String) { self.path = path }

    /// The tokenizer every stage loads from a model directory.
    public var tokenizerFile: String { path + "/tokenizer.json" }

    /// Regular files below the directory (relative names, sorted bytewise), skipping hidden entries
    /// (".git", ".cache"); refuses symlinks that resolve outside the directory and anything that is
    /// neither a regular file nor a folder.
    public func files() throws -> [String] {
        let dir = path
        let root = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
        var out: [String] = []
        func walk(_ rel: String) throws {
            let here = rel.isEmpty ? dir : dir + "/" + rel
            for name in try FileManager.default.contentsOfDirectory(atPath: here) where !name.hasPrefix(".") {
                let relName = rel.isEmpty ? name : rel + "/" + name
                let full = dir + "/" + relName
                let attrs = try FileManager.default.attributesOfItem(atPath: full)
                let type = attrs[.type] as? FileAttributeType
                if type == .typeSymbolicLink {
                    let target = URL(fileURLWithPath: full).resolvingSymlinksInPath().path
                    guard target.hasPrefix(root + "/") else {
                        throw DistilError.input(full, "symlink leads outside the model directory")
                    }
                    var isDir: ObjCBool = false
                    _ = FileManager.default.fileExists(atPath: target, isDirectory: &isDir)
                    if isDir.boolValue { try walk(relName) } else { out.append(relName) }
                } else if type == .typeDirectory {
                    try walk(relName)
                } else if type == .typeRegular {
                    out.append(relName)
                } else {
                    throw DistilError.input(full, "not a regular file")
                }
            }
        }
        try walk("")
        return out.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// The bytes of one of the directory's small files (config.json, generation_config.json, ...),
    /// read within the bound; nil when the file does not exist.
    public func jsonBytes(_ name: String) throws -> [UInt8]? {
        let file = path + "/" + name
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        return try readFile(file, limit: ModelDirectory.maxJSONBytes)
    }

    /// One of the directory's JSON files (config.json, ...) as an object, read within the bound.
    /// Errors name the file's path, as the bound's own error does.
    public func jsonObject(_ name: String) throws -> [String: Any] {
        let file = path + "/" + name
        let bytes = try readFile(file, limit: ModelDirectory.maxJSONBytes)
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw DistilError.input(file, "not a JSON object")
        }
        return o
    }

    /// The weight shards, by name: those model.safetensors.index.json maps tensors to (each a
    /// plain file name in this directory), else model.safetensors, else every *.safetensors file
    /// (sorted).
    public func weightShards() throws -> [String] {
        let fm = FileManager.default
        var names: [String] = []
        let indexPath = path + "/model.safetensors.index.json"
        if fm.fileExists(atPath: indexPath) {
            guard let bytes = try jsonBytes("model.safetensors.index.json"),
                  let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
                  let map = o["weight_map"] as? [String: Any] else {
                throw DistilError.input(indexPath, "no weight_map object")
            }
            var set = Set<String>()
            for (_, v) in map {
                guard let f = v as? String, !f.contains("/"), !f.contains(".."), f.hasSuffix(".safetensors") else {
                    throw DistilError.input(indexPath, "weight_map names a file outside the model directory: \(v)")
                }
                set.insert(f)
            }
            names = set.sorted()
        } else if fm.fileExists(atPath: path + "/model.safetensors") {
            names = ["model.safetensors"]
        } else {
            let all = (try? fm.contentsOfDirectory(atPath: path)) ?? []
            names = all.filter { $0.hasSuffix(".safetensors") }.sorted()
        }
        guard !names.isEmpty else { throw DistilError.input(path, "no safetensors weights") }
        return names
    }
}
