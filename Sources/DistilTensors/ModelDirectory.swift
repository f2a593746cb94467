import DistilFormats
import Foundation

/// A model directory as dl-fetch, dl-check and the engine read it, with every bound applied here
/// once: its files (regular files only; a symlink out of it is refused), its small JSON files
/// (config.json, tokenizer_config.json, the shard index: 16 MiB each), each weight shard's
/// safetensors header (safetensors' 100 MB, and the file's size), and where its tokenizer is. A
/// model repo is untrusted: nothing here allocates by a size the repo states before bounding it.
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

    /// One of the directory's JSON files (config.json, ...) as an object, read within the bound.
    public func jsonObject(_ name: String) throws -> [String: Any] {
        let bytes = try readFile(path + "/" + name, limit: ModelDirectory.maxJSONBytes)
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw DistilError("\((name as NSString).lastPathComponent) is not a JSON object")
        }
        return o
    }

    /// The header of weight shard `name`. A metadata-only fetch keeps headers in a folder of their
    /// own (`headersDir`) with the real file's size listed (`listedSize`) to bound the offsets.
    public func header(_ name: String, headersDir: String? = nil, listedSize: Int64? = nil) throws -> SafetensorsHeader {
        try SafetensorsHeader.read(path: (headersDir ?? path) + "/" + name, fileSize: listedSize)
    }
}
