#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (dev-only; CI replays the committed result).

Run from the repository root (pyarrow for the raw snappy blocks):
    python3 scripts/dev/make_fuzz_seeds.py
It (re)writes Fuzz/corpus/TARGET/ from the committed samples and fixtures: each target starts from
real inputs of its parser, so the fuzzer mutates valid structure instead of searching for it.
"""
import glob
import json
import os
import shutil
import struct
import subprocess

import pyarrow as pa

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    models = ["demo/teacher", "demo/king", "demo/challenger"] + sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "Tests/DistilModelTests/Fixtures/*")) if os.path.isdir(p))

    for m in models:
        tag = m.replace("/", "_")
        st = read(m + "/model.safetensors")
        n = struct.unpack("<Q", st[:8])[0]
        put("safetensors-header", tag, st[:8 + n])
        put("model-config", tag, read(m + "/config.json"))
        put("engine-config", tag, read(m + "/config.json"))
        if os.path.exists(os.path.join(ROOT, m, "generation_config.json")):
            put("generation-config", tag, read(m + "/generation_config.json"))
        if os.path.exists(os.path.join(ROOT, m, "tokenizer_config.json")):
            put("tokenizer-config", tag, read(m + "/tokenizer_config.json"))
    for p in glob.glob(os.path.join(ROOT, "Tests/DistilTokenizerTests/Fixtures/special/*/*.json")):
        rel = os.path.relpath(p, ROOT)
        put("tokenizer-config" if p.endswith("tokenizer_config.json") else "generation-config", rel.replace("/", "_"), read(rel))
    put("tokenizer-config", "chat_template", json.dumps({"chat_template": "{# c #}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
                                                          "eos_token": "<|im_end|>", "added_tokens_decoder": {}}))

    put("tokenizer-json", "demo", read("demo/tokenizer.json"))

    for p in sorted(glob.glob(os.path.join(ROOT, "Tests/DistilCorpusTests/Fixtures/parquet/*.parquet"))):
        if os.path.getsize(p) <= 12000:
            put("parquet", os.path.basename(p), read(os.path.relpath(p, ROOT)))

    texts = [b"", b"a", b"hello hello hello hello world", read("demo/tokenizer.json")[:3000], bytes(range(256)) * 4]
    for i, t in enumerate(texts):
        put("snappy", "block%d" % i, pa.compress(t, codec="snappy", asbytes=True))

    samples = "Tests/DistilFormatsTests/Samples/"
    for k, name in enumerate(["commitments.jsonl", "manifests.jsonl", "checks.jsonl", "prompts.jsonl", "kl.jsonl"]):
        put("jsonl", name, bytes([k]) + read(samples + name))
    put("jsonl", "manifests-metadata-only.jsonl", bytes([1]) + read(samples + "manifests-metadata-only.jsonl"))
    put("jsonl", "state.json", bytes([5]) + read("Tests/DistilScoreTests/Fixtures/state-after.json"))
    put("jsonl", "registry.json", bytes([6]) + read("Tests/DistilCheckTests/Fixtures/registry.json"))

    dlt = read(samples + "teacher.dlt")
    put("teacher-stream", "teacher.dlt", dlt)
    put("teacher-stream", "teacher.raw", subprocess.run(["zstd", "-d", "-c"], input=dlt, stdout=subprocess.PIPE, check=True).stdout)

    listing = {"sha": "0123456789abcdef0123456789abcdef01234567", "siblings": [
        {"rfilename": "config.json", "size": 612, "blobId": "a" * 40},
        {"rfilename": "model.safetensors", "size": 134, "blobId": "b" * 40, "lfs": {"sha256": "c" * 64, "size": 1234567}},
        {"rfilename": "sub/tokenizer.json", "size": 5, "blobId": "d" * 40}]}
    put("hub-json", "listing", b"\x00" + json.dumps(listing).encode())
    tree = glob.glob(os.path.join(ROOT, "Tests/DistilHubTests/Fixtures/hf-cache/*/trees/*.json"))[0]
    put("hub-json", "cached-tree", b"\x01" + read(os.path.relpath(tree, ROOT)))

    put("http-headers", "retry-after-seconds", "retry-after: 120\ncontent-range: bytes 100-199/200\netag: \"%s\"\n" % ("a" * 40))
    put("http-headers", "retry-after-date", "retry-after: Wed, 21 Oct 2015 07:28:00 GMT\n")
    put("http-headers", "ratelimit-draft9", "ratelimit: \"default\";r=0;t=42\nratelimit-policy: \"default\";q=100;w=60\n")
    put("http-headers", "ratelimit-old", "ratelimit: limit=100, remaining=0, reset=17\nx-ratelimit-reset: 1700000042\n")
    put("http-headers", "ratelimit-reset", "ratelimit-reset: 30\ncontent-range: bytes */5000\netag: W/\"%s\"\n" % ("e" * 64))
    n = sum(len(files) for _, _, files in os.walk(OUT))
    print("fuzz seeds: %d files in %s" % (n, os.path.relpath(OUT, ROOT)))


if __name__ == "__main__":
    main()
