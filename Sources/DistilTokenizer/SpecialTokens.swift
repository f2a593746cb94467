import DistilFormats
import Foundation

/// The stop and special token ids of a model directory, found the way Hugging Face transformers
/// finds them for `generate`: generation_config.json first, then config.json (top level, or its
/// `text_config` for multimodal checkpoints), then tokenizer_config.json's token strings mapped
/// through the tokenizer (its added tokens, then its vocabulary).
public struct SpecialTokenIDs: Equatable, Sendable {
    /// Ids that end a generation, in the order the source lists them, without repeats. Never empty.
    public var eos: [Int]
    /// The beginning-of-sequence id, if the model has one.
    public var bos: Int?
    /// The padding id, if the model has one.
    public var pad: Int?
    /// The file `eos` came from ("generation_config.json", "config.json" or "tokenizer_config.json").
    public var eosSource: String

    public init(eos: [Int], bos: Int?, pad: Int?, eosSource: String) {
        self.eos = eos
        self.bos = bos
        self.pad = pad
        self.eosSource = eosSource
    }
}

extension ModelDirectory {
    /// The special ids of this model (generation_config.json, config.json and tokenizer_config.json,
    /// each optional, read within the directory's bound). Every id must be a token of `tokenizer`.
    /// Throws a `DistilError` naming the file and field for a malformed file, a value of the wrong
    /// type, an unknown token, or when no file names an EOS token.
    public func specialTokenIDs(tokenizer: Tokenizer) throws -> SpecialTokenIDs {
        let generation = try ConfigFile(self, name: "generation_config.json")
        let config = try ConfigFile(self, name: "config.json")
        let tokenizerConfig = try ConfigFile(self, name: "tokenizer_config.json")
        let decoder = try tokenizerConfig.map { try tokenizer.addedTokensDecoder($0) } ?? [:]

        // Each field from the first file that sets it.
        func ids(_ field: String, list: Bool) throws -> (ids: [Int], source: String)? {
            if let g = generation, let v = try g.ids(field, list: list, tokenizer: tokenizer) { return (v, g.name) }
            if let c = config {
                if let v = try c.ids(field, list: list, tokenizer: tokenizer) { return (v, c.name) }
                if let text = c.root["text_config"], !text.isNull {
                    guard text.object != nil else { throw c.error("text_config is \(text.typeName), expected an object") }
                    if let v = try c.ids(field, in: text, path: "text_config.\(field)", list: list, tokenizer: tokenizer) { return (v, c.name) }
                }
            }
            let tokenField = String(field.dropLast(3))   // eos_token_id -> eos_token
            if let t = tokenizerConfig, let id = try t.tokenID(tokenField, decoder: decoder, tokenizer: tokenizer) { return ([id], t.name) }
            return nil
        }
        guard let eos = try ids("eos_token_id", list: true) else {
            throw DistilError.input(path, "no EOS token: none of generation_config.json, config.json (eos_token_id) or tokenizer_config.json (eos_token) names one")
        }
        var seen = Set<Int>()
        return SpecialTokenIDs(eos: eos.ids.filter { seen.insert($0).inserted },
                               bos: try ids("bos_token_id", list: false)?.ids.first,
                               pad: try ids("pad_token_id", list: false)?.ids.first,
                               eosSource: eos.source)
    }
}

extension Tokenizer {
    /// tokenizer_config.json's `added_tokens_decoder` ({"id": {"content": ...}}) as content → id,
    /// each checked against this tokenizer.
    func addedTokensDecoder(_ file: ConfigFile) throws -> [String: Int] {
        guard let d = file.root["added_tokens_decoder"], !d.isNull else { return [:] }
        guard let entries = d.object else { throw file.error("added_tokens_decoder is \(d.typeName), expected an object") }
        guard entries.count <= 1_000_000 else { throw file.error("added_tokens_decoder has \(entries.count) entries") }
        var out: [String: Int] = [:]
        for (key, value) in entries {
            guard let id = Int(key), id >= 0 else { throw file.error("added_tokens_decoder key '\(key.prefix(40))' is not a token id") }
            guard let content = value["content"]?.string else {
                throw file.error("added_tokens_decoder[\(key)] has no string content")
            }
            if let mine = token(of: id), mine != content {
                throw file.error("added_tokens_decoder maps \(id) to '\(content.prefix(40))' but the tokenizer has '\(mine.prefix(40))'")
            }
            if out[content] == nil { out[content] = id }
        }
        return out
    }
}

/// One optional JSON config file of a model directory.
struct ConfigFile {
    let name: String
    let path: String
    let root: JSONValue

    /// nil when the file does not exist.
    init?(_ model: ModelDirectory, name: String) throws {
        path = model.path + "/" + name
        self.name = name
        guard let bytes = try model.jsonBytes(name) else { return nil }
        root = try JSONValue.parse(bytes, name: path)
        guard root.object != nil else { throw DistilError.input(path, "not a JSON object") }
    }

    func error(_ what: String) -> DistilError { DistilError.input(path, what) }

    /// An id field (an integer, or for `list` also a non-empty list of integers); nil when absent or null.
    func ids(_ field: String, in object: JSONValue? = nil, path: String? = nil, list: Bool, tokenizer: Tokenizer) throws -> [Int]? {
        let where_ = path ?? field
        guard let v = (object ?? root)[field], !v.isNull else { return nil }
        func check(_ x: JSONValue) throws -> Int {
            guard let id = x.int else {
                throw error("\(where_) is \(x.typeName), expected \(list ? "an integer or a list of integers" : "an integer")")
            }
            guard id >= 0, id < tokenizer.vocabSize, tokenizer.token(of: id) != nil else {
                throw error("\(where_) \(id) is not a token of the tokenizer (vocab size \(tokenizer.vocabSize))")
            }
            return id
        }
        if list, let items = v.array {
            guard !items.isEmpty else { throw error("\(where_) is an empty list") }
            guard items.count <= 1024 else { throw error("\(where_) lists \(items.count) ids, more than 1024") }
            return try items.map(check)
        }
        return [try check(v)]
    }

    /// A token named by its content (`"eos_token": "<|im_end|>"` or `{"content": "<|im_end|>", ...}`),
    /// mapped to its id; nil when absent or null.
    func tokenID(_ field: String, decoder: [String: Int], tokenizer: Tokenizer) throws -> Int? {
        guard let v = root[field], !v.isNull else { return nil }
        let content: String
        if let s = v.string { content = s }
        else if let s = v["content"]?.string { content = s }
        else { throw error("\(field) is \(v.typeName), expected a string or an object with a string content") }
        let mine = tokenizer.id(of: content)
        if let d = decoder[content] {
            guard tokenizer.token(of: d) != nil else {
                throw error("\(field) '\(content.prefix(40))' is id \(d) in added_tokens_decoder, which is not a token of the tokenizer")
            }
            if let mine, mine != d {
                throw error("\(field) '\(content.prefix(40))' is id \(d) in added_tokens_decoder but \(mine) in the tokenizer")
            }
            return d
        }
        guard let mine else { throw error("\(field) '\(content.prefix(40))' is not a token of the tokenizer") }
        return mine
    }
}
