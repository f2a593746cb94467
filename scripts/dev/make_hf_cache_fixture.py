#!/usr/bin/env python3
"""Writes Tests/DistilHubTests/Fixtures/hf-cache: a Hugging Face cache made by the PyPI
huggingface_hub package itself (snapshot_download), so the tests prove dl-fetch reads a cache
that huggingface_hub wrote, without sending any request.

Dev-only; CI never runs it. Run from the repository root:

    /opt/distil-venv/bin/python scripts/dev/make_hf_cache_fixture.py

It serves a tiny model from a mock Hub on loopback (the endpoints snapshot_download calls:
repo info, the recursive tree listing, HEAD/GET resolve) and points HF_ENDPOINT at it.
"""
import hashlib
import json
import os
import shutil
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

REPO = "distil-test/tiny-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OUT = os.path.join("Tests", "DistilHubTests", "Fixtures", "hf-cache")


def safetensors(tensors):
    header = {}
    data = b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


FILES = {
    "config.json": json.dumps({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 16}, indent=2).encode(),
    "tokenizer_config.json": json.dumps({"eos_token": "<|im_end|>"}).encode(),
    "model.safetensors": safetensors({
        "lm_head.weight": ("F32", [4, 4], struct.pack("<16f", *[i / 16 for i in range(16)])),
        "model.norm.weight": ("F32", [4], struct.pack("<4f", 1, 1, 1, 1)),
    }),
    "docs/notes.txt": "made by huggingface_hub's snapshot_download\n".encode(),
}
LFS = {"model.safetensors"}


def git_blob(b):
    return hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest()


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", headers=None, head=False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def handle_any(self, head):
        path = unquote(urlparse(self.path).path)
        if path.startswith(f"/api/models/{REPO}/revision/"):
            info = {"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": n} for n in FILES]}
            return self.reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
        if path.startswith(f"/api/models/{REPO}/tree/"):
            entries = []
            for n, b in FILES.items():
                e = {"type": "file", "path": n, "size": len(b), "oid": git_blob(b)}
                if n in LFS:
                    e["lfs"] = {"oid": hashlib.sha256(b).hexdigest(), "size": len(b), "pointerSize": 134}
                entries.append(e)
            return self.reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, head)
        prefix = f"/{REPO}/resolve/"
        if path.startswith(prefix):
            rev, _, name = path[len(prefix):].partition("/")
            if name not in FILES:
                return self.reply(404, b"", {"X-Error-Code": "EntryNotFound"}, head)
            b = FILES[name]
            etag = hashlib.sha256(b).hexdigest() if name in LFS else git_blob(b)
            h = {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'}
            if name in LFS:
                h["X-Linked-Etag"] = f'"{etag}"'
                h["X-Linked-Size"] = str(len(b))
            return self.reply(200, b, h, head)
        return self.reply(404, b"", {"X-Error-Code": "RepoNotFound"}, head)

    def do_GET(self):
        self.handle_any(False)

    def do_HEAD(self):
        self.handle_any(True)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.pop("HF_TOKEN", None)
    import huggingface_hub  # after HF_ENDPOINT is set: the constants are read at import
    from huggingface_hub import snapshot_download

    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    path = snapshot_download(REPO, revision="main", cache_dir=OUT, token=False)
    server.shutdown()
    # Lock files are empty and only matter while huggingface_hub runs.
    shutil.rmtree(os.path.join(OUT, ".locks"), ignore_errors=True)
    print(f"huggingface_hub {huggingface_hub.__version__} wrote {path}")
    for root, dirs, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(p, "->", os.readlink(p) if os.path.islink(p) else os.path.getsize(p))


if __name__ == "__main__":
    sys.exit(main())
