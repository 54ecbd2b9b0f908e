#!/usr/bin/env python3
"""A local stand-in for an OpenAI-compatible chat/completions server, for the generate-best-of-n tests.

  POST /v1/chat/completions   canned samples: the k-th sample delivered for prompt P is sample_text(P, k)
  GET  /stats                 {"requests": n, "by_prompt": {P: n}, "max_in_flight": n, "bodies": [last 50]}

Options: --api-key KEY (401 without "Authorization: Bearer KEY"), --ignore-n (one choice per request, as
llama.cpp's server and Ollama do), --delay S (seconds per request, so concurrent requests overlap).
Prompts that contain these words misbehave:
  flaky-429   the first 2 requests get 429 with Retry-After: 0
  flaky-500   the first 2 requests get 500
  always-503  every request gets 503
  bad-request every request gets 400 {"error": {"message": "prompt too long"}}
  key-revoked every request gets 401 (a key revoked in the middle of a run)
  no-text     choices whose message content is null
Prints "port N" on stdout once listening.
"""
import argparse
import http.server
import json
import threading
import time


def sample_text(prompt, k):
    # Different lengths and wording, so PairRM's choice is not a tie.
    return "Answer %d to '%s':%s" % (k, prompt, " more detail" * ((k * 7) % 5))


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = 0
        self.by_prompt = {}
        self.delivered = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        st = self.server.state
        if self.path != "/stats":
            return self.reply(404, {"error": "not found"})
        with st.lock:
            self.reply(200, {"requests": st.requests, "by_prompt": st.by_prompt, "max_in_flight": st.max_in_flight,
                             "bodies": st.bodies[-50:]})

    def do_POST(self):
        st = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path != "/v1/chat/completions":
            return self.reply(404, {"error": {"message": "no route " + self.path}})
        if st.args.api_key and self.headers.get("Authorization") != "Bearer " + st.args.api_key:
            return self.reply(401, {"error": {"message": "Incorrect API key provided"}})
        prompt = body["messages"][-1]["content"]
        with st.lock:
            st.requests += 1
            count = st.by_prompt[prompt] = st.by_prompt.get(prompt, 0) + 1
            st.in_flight += 1
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
            st.bodies.append(body)
        try:
            time.sleep(st.args.delay)
            status, obj, headers = self.answer(st, prompt, count, body)
        finally:
            # Before the reply goes out: once the client has its answer it may send the next request, which
            # must not find this one still counted (that read 4 in flight for a client bounded to 3).
            with st.lock:
                st.in_flight -= 1
        self.reply(status, obj, headers)

    @staticmethod
    def answer(st, prompt, count, body):
        if "flaky-429" in prompt and count <= 2:
            return 429, {"error": {"message": "slow down"}}, [("Retry-After", "0")]
        if "flaky-500" in prompt and count <= 2:
            return 500, {"error": {"message": "internal"}}, ()
        if "always-503" in prompt:
            return 503, {"error": {"message": "overloaded"}}, ()
        if "bad-request" in prompt:
            return 400, {"error": {"message": "prompt too long"}}, ()
        if "key-revoked" in prompt:
            return 401, {"error": {"message": "Incorrect API key provided"}}, ()
        n = 1 if st.args.ignore_n else int(body.get("n", 1))
        with st.lock:
            first = st.delivered.get(prompt, 0)
            st.delivered[prompt] = first + n
        choices = [{"index": i, "finish_reason": "stop",
                    "message": {"role": "assistant",
                                "content": None if "no-text" in prompt else sample_text(prompt, first + i)}}
                   for i in range(n)]
        return 200, {"id": "cmpl-test", "object": "chat.completion", "model": body.get("model", "stand-in"),
                     "choices": choices}, ()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api-key", default="")
    ap.add_argument("--ignore-n", action="store_true")
    ap.add_argument("--delay", type=float, default=0.0)
    args = ap.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(args)
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
