#!/usr/bin/env python3
"""Dev-only: writes the committed format samples in Tests/DistilFormatsTests/Samples/.

It implements docs/FORMATS.md independently of the Swift code (a second reading of the spec),
so the Swift reader is tested against bytes it did not write.

Run: /opt/distil-venv/bin/python scripts/dev/make_format_samples.py   (needs numpy, zstandard)
"""
import json, os, struct, zlib
import numpy as np
import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "Tests", "DistilFormatsTests", "Samples")
TOOL = "distil/0.1.0"


def jl(path, records):
    with open(os.path.join(OUT, path), "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")


def record(kind, payload):
    head = kind.encode() + struct.pack("<Q", len(payload))
    return head + payload + struct.pack("<I", zlib.crc32(head + payload) & 0xFFFFFFFF)


def teacher_stream(path, vocab=64, prompts=((5, 3), (4, 0), (6, 20))):
    rng = np.random.default_rng(97)
    header = {
        "format": "distil-teacher/1",
        "teacher": {"repo": "demo/teacher", "revision": "local", "weights_sha256": "0" * 64,
                    "block": 1000, "block_hash": "ab" * 32},
        "tokenizer_sha256": "1" * 64,
        "generation": {"max_new_tokens": 20, "temperature": 0.0, "top_p": 1.0},
        "vocab_size": vocab, "value_dtype": "f16+f32top", "n_prompts": len(prompts), "tool": TOOL,
    }
    out = bytearray(b"DLTEACH1")
    out += record("HEAD", json.dumps(header, sort_keys=True).encode())
    total = 0
    for k, (plen, clen) in enumerate(prompts):
        p = {"id": f"1000-{k:02d}", "prompt_tokens": rng.integers(0, vocab, plen).tolist(),
             "continuation_tokens": rng.integers(0, vocab, clen).tolist(), "finish": "length"}
        out += record("PRMT", json.dumps(p, sort_keys=True).encode())
        for first in range(0, clen, 16):
            n = min(16, clen - first)
            logits = rng.normal(size=(n, vocab)) * 2
            logits[:, ::3] -= 30   # a third of the vocabulary below the exact-storage threshold
            lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            payload = bytearray(struct.pack("<II", first, n))
            for row in lp:
                payload += row.astype("<f2").tobytes()
                exact = [(i, v) for i, v in enumerate(row) if v > -12.0][:4096]
                payload += struct.pack("<I", len(exact))
                for i, v in exact:
                    payload += struct.pack("<If", i, v)
            out += record("ROWS", bytes(payload))
        total += clen
    out += record("DONE", json.dumps({"n_prompts": len(prompts), "n_rows": total}).encode())
    with open(os.path.join(OUT, path), "wb") as f:
        f.write(zstandard.ZstdCompressor(level=3, write_checksum=True).compress(bytes(out)))


def main():
    os.makedirs(OUT, exist_ok=True)
    commits = [
        {"uid": 1, "hotkey": "5Hking", "block": 900, "repo": "alice/distil-king", "revision": "a" * 40},
        {"uid": 2, "hotkey": "5Hchal", "block": 950, "repo": "bob/distil-challenger", "revision": "b" * 40},
        {"uid": 3, "hotkey": "5Hlocal", "block": 960, "repo": "/srv/models/carol"},
    ]
    jl("commitments.jsonl", commits)
    manifests = []
    for c in commits:
        m = dict(c)
        m.update({"commit": c.get("revision", "local"), "path": "/cache/" + c["repo"].replace("/", "--"),
                  "files": [{"name": "config.json", "size": 812, "sha256": "2" * 64},
                            {"name": "model.safetensors", "size": 5242880, "sha256": "3" * 64}],
                  "outcome": "ok", "weights_sha256": "4" * 64, "tool": TOOL})
        manifests.append(m)
    manifests[2]["outcome"] = "not_found"; manifests[2]["message"] = "/srv/models/carol: no such directory"
    manifests[2]["files"] = []; del manifests[2]["path"]; del manifests[2]["weights_sha256"]
    jl("manifests.jsonl", manifests)
    # dl-fetch --metadata-only: the listing, small files, and each safetensors header kept apart.
    meta = dict(manifests[0])
    meta.update({"metadata_only": True, "headers_path": "/var/lib/distil/headers/models--alice--distil-king/" + "a" * 40,
                 "path": "/root/.cache/huggingface/hub/models--alice--distil-king/snapshots/" + "a" * 40})
    jl("manifests-metadata-only.jsonl", [meta])
    checks = []
    for m in manifests:
        v = {k: m[k] for k in ("uid", "hotkey", "block", "repo", "commit") if k in m}
        if "revision" in m: v["revision"] = m["revision"]
        v["tool"] = TOOL
        if m["outcome"] == "ok":
            v.update({"ok": True, "reason": "OK", "message": "1.21M parameters, BF16", "params": 1210000,
                      "path": m["path"], "weights_sha256": m["weights_sha256"]})
        else:
            v.update({"ok": False, "reason": "REMOVED", "message": m["message"]})
        checks.append(v)
    jl("checks.jsonl", checks)
    jl("prompts.jsonl", [
        {"id": "1000-00", "text": "Line one\u2028still line one\u0085and more.", "block": 1000, "block_hash": "ab" * 32,
         "source": {"shard": "corpus.jsonl", "row": 12}, "tool": TOOL},
        {"id": "1000-01", "text": "Tokens given.", "tokens": [11, 12, 13], "block": 1000, "block_hash": "ab" * 32,
         "source": {"shard": "corpus.jsonl", "row": 3}, "tool": TOOL},
    ])
    kl = []
    for uid, model, base in ((1, "alice/distil-king", 0.30), (2, "bob/distil-challenger", 0.25)):
        for k in range(2):
            kl.append({"model": model, "uid": uid, "hotkey": commits[uid - 1]["hotkey"], "block": commits[uid - 1]["block"],
                       "revision": commits[uid - 1]["revision"], "prompt_id": f"1000-{k:02d}",
                       "kl_mean": base + 0.01 * k, "kl_std": 0.1, "n_tokens": 20, "kl_max": 0.9, "kl_p50": 0.2,
                       "kl_p90": 0.5, "kl_p99": 0.8, "top1_agree": 0.7,
                       "teacher": {"repo": "demo/teacher", "revision": "local", "block": 1000, "block_hash": "ab" * 32},
                       "tool": TOOL})
    jl("kl.jsonl", kl)
    teacher_stream("teacher.dlt")


if __name__ == "__main__":
    main()
