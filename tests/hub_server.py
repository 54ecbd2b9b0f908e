#!/usr/bin/env python3
"""A local stand-in for the Hugging Face Hub, for the download tests: serves the files of one model directory
as several repos in the hub's URL scheme with real HTTP semantics.

  GET|HEAD /{org}/{name}/resolve/{revision}/{file}
      small files: 200 with ETag (git blob sha1), X-Repo-Commit, Content-Length
      *.safetensors (LFS): 302 to /blobs/{sha256} with X-Linked-Etag, X-Linked-Size, X-Repo-Commit
  GET /blobs/{sha256}    Range requests (206), the whole file otherwise
  GET /stats             {"range_requests": n, "cuts": n, "requests": n}

Repos: test-org/tiny (public); test-org/gated (401 without "Authorization: Bearer good-token");
test-org/cut (the first GET of the blob stops half way and drops the connection); test-org/corrupt (the
blob's bytes do not match its sha256); test-org/partial (no tokenizer_config.json: an optional file);
test-org/opaque-etag (small files' ETags are not digests, as a proxy or CDN may send: nothing to verify with).
Revisions: main and COMMIT serve the first directory's files; with a second directory given, every repo also
has the tag v2 (and its commit COMMIT_V2), which serves that directory's files instead.
Usage: hub_server.py MODEL_DIR [MODEL_DIR_V2]. Prints "port N" on stdout once listening.
"""
import hashlib
import http.server
import json
import os
import sys
import threading

COMMIT = "0123456789abcdef0123456789abcdef01234567"
COMMIT_V2 = "fedcba9876543210fedcba9876543210fedcba98"
FILES = ["config.json", "model.safetensors", "spm.model", "added_tokens.json", "special_tokens_map.json",
         "tokenizer_config.json"]


def read_files(root):
    files = {}
    for f in FILES:
        path = os.path.join(root, f)
        if os.path.exists(path):
            data = open(path, "rb").read()
            files[f] = {
                "data": data,
                "sha256": hashlib.sha256(data).hexdigest(),
                "git": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
                "lfs": f.endswith(".safetensors"),
            }
    return files


class Hub:
    def __init__(self, root, root_v2=None):
        # revision -> (commit, files)
        self.revisions = {"main": (COMMIT, read_files(root))}
        self.revisions[COMMIT] = self.revisions["main"]
        if root_v2:
            self.revisions["v2"] = (COMMIT_V2, read_files(root_v2))
            self.revisions[COMMIT_V2] = self.revisions["v2"]
        self.by_sha = {v["sha256"]: (k, v) for _, files in self.revisions.values() for k, v in files.items()}
        self.lock = threading.Lock()
        self.stats = {"range_requests": 0, "cuts": 0, "requests": 0}
        self.cut_done = set()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def handle_any(self):
        hub = self.server.hub
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if path == "/stats":  # not counted: the tests read it
            with hub.lock:
                body = json.dumps(hub.stats).encode()
            return self.send(200, body, {"Content-Type": "application/json"})
        with hub.lock:
            hub.stats["requests"] += 1
        if len(parts) == 2 and parts[0] == "blobs":
            return self.blob(parts[1], query)
        if len(parts) >= 5 and parts[2] == "resolve":
            repo, revision, name = parts[1], parts[3], "/".join(parts[4:])
            return self.resolve(repo, revision, name)
        self.send(404, b'{"error": "not found"}')

    def resolve(self, repo, revision, name):
        hub = self.server.hub
        if repo not in ("tiny", "gated", "cut", "corrupt", "partial", "opaque-etag"):
            return self.send(404, b"Repository not found", {"X-Error-Code": "RepoNotFound"})
        if repo == "gated" and self.headers.get("Authorization") != "Bearer good-token":
            return self.send(401, b"Access to this repo is restricted", {"X-Error-Code": "GatedRepo"})
        if revision not in hub.revisions:
            return self.send(404, b"Revision not found", {"X-Error-Code": "RevisionNotFound"})
        commit, files = hub.revisions[revision]
        f = files.get(name)
        if f is None or (repo == "partial" and name == "tokenizer_config.json"):
            return self.send(404, b"Entry not found", {"X-Error-Code": "EntryNotFound"})
        if f["lfs"]:
            headers = {"X-Repo-Commit": commit, "X-Linked-Etag": '"%s"' % f["sha256"],
                       "X-Linked-Size": str(len(f["data"])), "ETag": '"%s"' % f["git"],
                       "Location": "/blobs/%s?repo=%s" % (f["sha256"], repo)}
            return self.send(302, b"", headers)
        body = f["data"]
        self.send_response(200)
        self.send_header("X-Repo-Commit", commit)
        self.send_header("ETag", '"v1-%d"' % len(body) if repo == "opaque-etag" else '"%s"' % f["git"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def blob(self, sha, query):
        hub = self.server.hub
        entry = hub.by_sha.get(sha)
        if entry is None:
            return self.send(404, b"no such blob")
        repo = dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv).get("repo", "")
        data = entry[1]["data"]
        if repo == "corrupt":
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0] or 0)
            with hub.lock:
                hub.stats["range_requests"] += 1
            if start >= len(data):
                return self.send(416, b"", {"Content-Range": "bytes */%d" % len(data)})
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        with hub.lock:
            cut = repo == "cut" and sha not in hub.cut_done
            if cut:
                hub.cut_done.add(sha)
                hub.stats["cuts"] += 1
        if cut:  # half the bytes, then the connection drops
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.hub = Hub(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
