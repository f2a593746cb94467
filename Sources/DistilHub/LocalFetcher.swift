import DistilFormats
import DistilTensors
import Foundation

/// Fetching a model that already sits on disk: a directory or a file:// URL. The directory is
/// untrusted: a symlink that leads outside it, or anything but regular files and folders, is an
/// error outcome (data, not a tool failure).
public enum LocalFetcher {
    /// Whether a commitment's `repo` names a local model: only a file:// URL, an absolute path or
    /// a ./ or ../ relative path does. Whatever exists on disk plays no part: a miner's `owner/name`
    /// that happens to be a folder of the validator's working directory (epoch-200/kl) is still a
    /// Hub repo id, so a commitment can never make the validator read its own files as a model.
    public static func isLocal(_ repo: String) -> Bool {
        repo.hasPrefix("file://") || repo.hasPrefix("/") || repo.hasPrefix("./") || repo.hasPrefix("../")
    }

    public static func directory(of repo: String) -> String { RepoPath.localDirectory(of: repo) }

    public static func fetch(_ c: Commitment, progress: Bool = true) -> Manifest {
        let dir = directory(of: c.repo)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .notFound, message: "\(dir): no such directory")
        }
        guard isDir.boolValue else {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .error, message: "\(dir): not a directory")
        }
        do {
            let model = ModelDirectory(dir)
            let names = try model.files()
            var files: [ManifestFile] = []
            for n in names {
                let full = dir + "/" + n
                guard let size = fileSize(full) else { throw DistilError.input(full, "cannot read") }
                if n.hasSuffix(".safetensors") { try model.checkHeaderLength(n, size: size) }
                files.append(ManifestFile(name: n, size: size, sha256: try Hashing.sha256Hex(file: full)))
            }
            let weights = WeightFiles.identity(files.map { ($0.name, $0.sha256!) })
            return Manifest(commitment: c, commit: "local", path: dir, files: files, outcome: .ok, weightsSHA256: weights)
        } catch let e as DistilError {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .error, message: e.message)
        } catch {
            return Manifest(commitment: c, commit: nil, path: nil, files: [], outcome: .error, message: "\(dir): \(error)")
        }
    }
}
