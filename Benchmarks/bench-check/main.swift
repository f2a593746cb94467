// bench-check: dl-check on a realistic 4B-sized header set (issue 6): a Qwen3.5-4B-shaped model
// (32 hybrid layers, hidden 2560, vocab 248,320, plus a vision tower and an MTP head) as a
// metadata-only manifest — config, the Qwen3.5 tokenizer, and the two shards' safetensors headers,
// no weights — checked against the teacher's tokenizer.
//
//     swift build -c release --product bench-check --product dl-check
//     .build/release/bench-check [--runs 3]
//
// Prints the time of the checks in-process (Checker.check, teacher tokenizer already loaded) and of
// the whole `dl-check` process (both tokenizers loaded, JSON in and out), best and median of --runs.
import DistilCheck
import DistilFormats
import DistilTokenizer
import Foundation

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

var runs = 3
var it = CommandLine.arguments.dropFirst().makeIterator()
while let a = it.next() {
    if a == "--runs", let n = it.next().flatMap(Int.init) { runs = max(1, n) } else {
        FileHandle.standardError.write("usage: bench-check [--runs N]\n".data(using: .utf8)!); exit(2)
    }
}
let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let dir = NSTemporaryDirectory() + "distil-bench-check-\(getpid())"
let model = dir + "/model", headers = dir + "/headers"
try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
try FileManager.default.createDirectory(atPath: headers, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }

// The Qwen3.5 tokenizer (the teacher's), as the model's own.
let tokBytes = try Zstd.decompress(try readFile(repo + "/Tests/DistilTokenizerTests/Fixtures/qwen3.5-tokenizer.json.zst", limit: 64 << 20), name: "tokenizer")
try writeFileAtomically(model + "/tokenizer.json", tokBytes)

// Config: Qwen3.5 text model, 4B-class.
let H = 2560, L = 32, I = 9216, V = 248_320, heads = 16, kv = 4, hd = 256
let lkh = 16, lkd = 128, lvh = 32, lvd = 128, conv = 4
let layerTypes = (0..<L).map { $0 % 4 == 3 ? "full_attention" : "linear_attention" }
let config: [String: Any] = [
    "architectures": ["Qwen3_5ForCausalLM"], "model_type": "qwen3_5_text", "hidden_size": H, "num_hidden_layers": L,
    "intermediate_size": I, "vocab_size": V, "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd,
    "layer_types": layerTypes, "linear_conv_kernel_dim": conv, "linear_key_head_dim": lkd, "linear_num_key_heads": lkh,
    "linear_num_value_heads": lvh, "linear_value_head_dim": lvd, "rms_norm_eps": 1e-6, "tie_word_embeddings": true,
    "max_position_embeddings": 262_144, "hidden_act": "silu", "attention_bias": false,
    "rope_parameters": ["partial_rotary_factor": 0.25, "rope_theta": 10_000_000.0, "rope_type": "default"],
    "eos_token_id": 248_046, "bos_token_id": 248_044,
]
try writeFileAtomically(model + "/config.json", Array(try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys])))

// Tensors: the text model, an MTP head, and a 24-block vision tower.
var tensors: [(String, [Int])] = [("model.embed_tokens.weight", [V, H]), ("model.norm.weight", [H])]
func layer(_ p: String, _ i: Int) {
    tensors += [("\(p).input_layernorm.weight", [H]), ("\(p).post_attention_layernorm.weight", [H]),
                ("\(p).mlp.gate_proj.weight", [I, H]), ("\(p).mlp.up_proj.weight", [I, H]), ("\(p).mlp.down_proj.weight", [H, I])]
    if layerTypes[i] == "full_attention" {
        tensors += [("\(p).self_attn.q_proj.weight", [2 * heads * hd, H]), ("\(p).self_attn.k_proj.weight", [kv * hd, H]),
                    ("\(p).self_attn.v_proj.weight", [kv * hd, H]), ("\(p).self_attn.o_proj.weight", [H, heads * hd]),
                    ("\(p).self_attn.q_norm.weight", [hd]), ("\(p).self_attn.k_norm.weight", [hd])]
    } else {
        let qkv = 2 * lkh * lkd + lvh * lvd
        tensors += [("\(p).linear_attn.in_proj_qkv.weight", [qkv, H]), ("\(p).linear_attn.in_proj_z.weight", [lvh * lvd, H]),
                    ("\(p).linear_attn.in_proj_a.weight", [lvh, H]), ("\(p).linear_attn.in_proj_b.weight", [lvh, H]),
                    ("\(p).linear_attn.conv1d.weight", [qkv, 1, conv]), ("\(p).linear_attn.dt_bias", [lvh]),
                    ("\(p).linear_attn.A_log", [lvh]), ("\(p).linear_attn.norm.weight", [lvd]),
                    ("\(p).linear_attn.out_proj.weight", [H, lvh * lvd])]
    }
}
for i in 0..<L { layer("model.layers.\(i)", i) }
layer("mtp.layers.0", 3)
tensors += [("mtp.fc.weight", [H, 2 * H]), ("mtp.norm.weight", [H]), ("mtp.pre_fc_norm_embedding.weight", [H]), ("mtp.pre_fc_norm_hidden.weight", [H])]
let vh = 1024
tensors += [("model.visual.patch_embed.proj.weight", [vh, 3, 2, 16, 16]), ("model.visual.pos_embed.weight", [2304, vh])]
for b in 0..<24 {
    let p = "model.visual.blocks.\(b)"
    tensors += [("\(p).attn.qkv.weight", [3 * vh, vh]), ("\(p).attn.qkv.bias", [3 * vh]), ("\(p).attn.proj.weight", [vh, vh]),
                ("\(p).attn.proj.bias", [vh]), ("\(p).mlp.linear_fc1.weight", [4 * vh, vh]), ("\(p).mlp.linear_fc1.bias", [4 * vh]),
                ("\(p).mlp.linear_fc2.weight", [vh, 4 * vh]), ("\(p).mlp.linear_fc2.bias", [vh]),
                ("\(p).norm1.weight", [vh]), ("\(p).norm1.bias", [vh]), ("\(p).norm2.weight", [vh]), ("\(p).norm2.bias", [vh])]
}
tensors += [("model.visual.merger.linear_fc1.weight", [4 * vh, 4 * vh]), ("model.visual.merger.linear_fc2.weight", [H, 4 * vh])]

// Two shards: header-only files, sizes as the full files would have, and the index.
let half = tensors.count / 2
var files: [ManifestFile] = []
var weightMap: [String: String] = [:]
var totalBytes = 0
var params = 0
for (k, part) in [Array(tensors[..<half]), Array(tensors[half...])].enumerated() {
    let name = "model-0000\(k + 1)-of-00002.safetensors"
    var json = "{\"__metadata__\":{\"format\":\"pt\"}"
    var off = 0
    for (t, shape) in part {
        let n = shape.reduce(1, *)
        json += ",\"\(t)\":{\"dtype\":\"BF16\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(off),\(off + 2 * n)]}"
        off += 2 * n; params += n; weightMap[t] = name
    }
    json += "}"
    var h = Array(json.utf8)
    while h.count % 8 != 0 { h.append(0x20) }
    let header = (0..<8).map { UInt8((h.count >> (8 * $0)) & 0xFF) } + h
    try writeFileAtomically(headers + "/" + name, header)
    totalBytes += off
    files.append(ManifestFile(name: name, size: Int64(header.count + off), sha256: String(repeating: k == 0 ? "a" : "b", count: 64)))
}
let index: [String: Any] = ["metadata": ["total_size": totalBytes], "weight_map": weightMap]
try writeFileAtomically(model + "/model.safetensors.index.json", Array(try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys])))
for n in ["config.json", "model.safetensors.index.json", "tokenizer.json"] {
    let b = try readFile(model + "/" + n, limit: 64 << 20)
    files.append(ManifestFile(name: n, size: Int64(b.count), sha256: nil))
}
files.sort { $0.name < $1.name }
var manifest = Manifest(commitment: Commitment(uid: 7, hotkey: "hk", block: 100, repo: "miner/qwen35-4b-shaped"),
                        commit: String(repeating: "c", count: 40), path: model, files: files, outcome: .ok,
                        weightsSHA256: WeightFiles.identity(files.filter { $0.name.hasSuffix(".safetensors") }.map { ($0.name, $0.sha256!) }),
                        metadataOnly: true)
manifest.headers_path = headers
let manifestPath = dir + "/manifest.jsonl"
try writeFileAtomically(manifestPath, try encodeJSON(manifest) + [0x0A])
print(String(format: "header set: %d tensors in 2 shards, %.3fB parameters, headers %d KB", tensors.count, Double(params) / 1e9,
             files.filter { $0.name.hasSuffix(".safetensors") }.reduce(0) { $0 + Int(fileSize(headers + "/" + $1.name) ?? 0) } / 1024))

// In-process: the checks alone (teacher tokenizer loaded once beforehand).
var t0 = now()
let teacher = try Tokenizer.load(path: model + "/tokenizer.json")
print(String(format: "teacher tokenizer load (once): %.3f s", now() - t0))
var times: [Double] = []
var verdict: CheckVerdict?
for _ in 0..<runs {
    var o = CheckOptions()
    o.teacherTokenizer = teacher
    o.teacherTokenizerSHA256 = try Hashing.sha256Hex(file: model + "/tokenizer.json")
    t0 = now()
    verdict = Checker(options: o).check([manifest])[0]
    times.append(now() - t0)
}
guard let v = verdict, v.ok else { print("check failed: \(verdict.map { "\($0.reason) \($0.message)" } ?? "")"); exit(1) }
times.sort()
print(String(format: "Checker.check (all checks; the model's tokenizer.json is byte-identical to the teacher's): best %.3f s, median %.3f s — %@, %@",
             times[0], times[times.count / 2], v.reason.rawValue, v.message))

// The whole tool as a pipeline runs it.
let bin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/dl-check"
guard FileManager.default.isExecutableFile(atPath: bin) else { print("(build dl-check too to time the whole process: \(bin) missing)"); exit(0) }
var ptimes: [Double] = []
for _ in 0..<runs {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: bin)
    p.arguments = ["--teacher-tokenizer", model + "/tokenizer.json", "--quiet", manifestPath]
    p.standardOutput = FileHandle.nullDevice
    t0 = now()
    try p.run(); p.waitUntilExit()
    ptimes.append(now() - t0)
    guard p.terminationStatus == 0 else { print("dl-check exited \(p.terminationStatus)"); exit(1) }
}
ptimes.sort()
print(String(format: "dl-check process (both tokenizers loaded): best %.3f s, median %.3f s", ptimes[0], ptimes[ptimes.count / 2]))
