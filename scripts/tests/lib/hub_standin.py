#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub on 127.0.0.1, for the shell suites: serves model folders
under Hub repo ids, so a test commits `demo/king` as a miner would and dl-fetch downloads it
(a committed `owner/name` is always a Hub repo, never a folder of the working directory).

    hub_standin.py PORTFILE ID=DIR [ID=DIR ...]

Writes the port it listens on to PORTFILE (temp file + rename), then serves until killed:

    GET  /api/models/{id}/revision/{main|commit}?blobs=true   the listing (sha, siblings with
                                                              size, blobId, lfs.sha256)
    HEAD|GET /{id}/resolve/{main|commit}/{path}                the file, Range honoured

Each repo's commit is a SHA-1 over its files' names and hashes, so it is stable across runs and
changes when a file does. Folders are read once at start (the demo's models are small).
"""
import hashlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


def load(directory):
    files = {}
    for base, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for n in sorted(names):
            if n.startswith("."):
                continue
            full = os.path.join(base, n)
            with open(full, "rb") as f:
                files[os.path.relpath(full, directory)] = f.read()
    return files


class Repo:
    def __init__(self, repo_id, directory):
        self.id = repo_id
        self.files = load(directory)
        self.lfs = {n for n, b in self.files.items() if n.endswith(".safetensors") or len(b) > 1_000_000}
        self.sha256 = {n: hashlib.sha256(b).hexdigest() for n, b in self.files.items()}
        self.blob = {n: hashlib.sha1(b"blob %d\0" % len(b) + b).hexdigest() for n, b in self.files.items()}
        ident = "".join(f"{n}\t{self.sha256[n]}\n" for n in sorted(self.files))
        self.commit = hashlib.sha1(ident.encode()).hexdigest()


REPOS = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self, code):
        self.reply(404, code.encode(), {"X-Error-Code": code, "X-Error-Message": code})

    def body(self, data, headers):
        headers["Accept-Ranges"] = "bytes"
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            lo = int(a) if a else 0
            hi = min(int(b) + 1, len(data)) if b else len(data)
            if lo >= len(data) > 0 or lo > hi:
                return self.reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {lo}-{hi - 1}/{len(data)}"
            self.send_response(206)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(hi - lo))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data[lo:hi])
            return None
        return self.reply(200, data, headers)

    def handle_any(self):
        path = unquote(urlparse(self.path).path)
        if path.startswith("/api/models/"):
            repo_id, sep, rev = path[len("/api/models/"):].partition("/revision/")
            repo = REPOS.get(repo_id) if sep else None
            if repo is None:
                return self.not_found("RepoNotFound")
            if rev not in ("main", repo.commit):
                return self.not_found("RevisionNotFound")
            siblings = []
            for n, b in sorted(repo.files.items()):
                e = {"rfilename": n, "size": len(b), "blobId": repo.blob[n]}
                if n in repo.lfs:
                    e["lfs"] = {"sha256": repo.sha256[n], "size": len(b), "pointerSize": 134}
                siblings.append(e)
            info = {"id": repo.id, "modelId": repo.id, "sha": repo.commit, "private": False, "gated": False,
                    "siblings": siblings}
            return self.body(json.dumps(info).encode(), {"Content-Type": "application/json"})
        repo_id, sep, rest = path[1:].partition("/resolve/")
        repo = REPOS.get(repo_id) if sep else None
        if repo is None:
            return self.not_found("RepoNotFound")
        rev, _, name = rest.partition("/")
        if rev not in ("main", repo.commit):
            return self.not_found("RevisionNotFound")
        if name not in repo.files:
            return self.not_found("EntryNotFound")
        etag = repo.sha256[name] if name in repo.lfs else repo.blob[name]
        h = {"X-Repo-Commit": repo.commit, "ETag": f'"{etag}"'}
        if name in repo.lfs:
            h["X-Linked-Etag"] = f'"{etag}"'
            h["X-Linked-Size"] = str(len(repo.files[name]))
        return self.body(repo.files[name], h)

    def do_GET(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()


def main():
    if len(sys.argv) < 3 or any("=" not in a for a in sys.argv[2:]):
        print("usage: hub_standin.py PORTFILE ID=DIR [ID=DIR ...]", file=sys.stderr)
        return 2
    for a in sys.argv[2:]:
        repo_id, _, directory = a.partition("=")
        if not os.path.isdir(directory):
            print(f"hub_standin: {directory}: not a directory", file=sys.stderr)
            return 1
        REPOS[repo_id] = Repo(repo_id, directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{server.server_port}\n")
    os.rename(tmp, sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
