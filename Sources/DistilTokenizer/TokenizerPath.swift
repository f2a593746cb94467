import DistilFormats
import Foundation

/// "tokenizer.json, or a model directory with one", resolved once: the tokenizer file and the
/// directory around it (where tokenizer_config.json, its chat template, and the configs live).
public struct TokenizerPath: Equatable, Sendable {
    public let file: String
    public let directory: String

    public init(file: String, directory: String) { self.file = file; self.directory = directory }

    public init(_ path: String) {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            file = ModelDirectory(path).tokenizerFile
            directory = path
        } else {
            file = path
            let d = (path as NSString).deletingLastPathComponent
            directory = d.isEmpty ? "." : d
        }
    }
}
