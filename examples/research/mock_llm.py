#!/usr/bin/env python3
"""A mock LLM for the research example (standard library only).

    python3 mock_llm.py [--port 8098] [--fail-first 2] [--chunk-delay 0.1]

POST /v1/chat/completions   OpenAI-style request ({"messages": [...]}); the
                            answer streams as server-sent events, a few words
                            per chunk, `--chunk-delay` seconds apart, ending
                            with `data: [DONE]`.
GET  /stats                 {"requests": N, "failed": N}

The first `--fail-first` requests get `503 Service Unavailable`, like an
overloaded API, so the caller's retries show. Answers are deterministic:
they depend on the instruction in the last message (plan / draft / revise /
synthesize). Prints `listening on http://127.0.0.1:PORT` once ready.
"""
import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"requests": 0, "failed": 0}
lock = threading.Lock()


def answer(prompt: str) -> str:
    topic = re.search(r"TOPIC: (.*)", prompt)
    topic = topic.group(1).strip() if topic else "the topic"
    if prompt.startswith("PLAN"):
        return "\n".join([
            f"1. What is {topic}?",
            f"2. How does {topic} keep plugins isolated?",
            f"3. How does {topic} work with durable execution?",
        ])
    sources = sorted(set(re.findall(r"\[(kb/[^\]]+)\]", prompt)))
    cite = ", ".join(sources) or "no sources"
    if prompt.startswith("DRAFT"):
        return (f"Draft on {topic}. {topic} packages code as portable, sandboxed components; "
                f"a host grants each one only the capabilities it needs, and a durable-execution "
                f"engine replays deterministic workflow code from history. Sources: {cite}.")
    if prompt.startswith("REVISE"):
        feedback = re.search(r"FEEDBACK: (.*)", prompt)
        feedback = feedback.group(1).strip() if feedback else ""
        return (f"Revised draft on {topic}, addressing: {feedback}. Components are isolated by "
                f"default, capabilities are granted explicitly, and workflow code stays replayable. "
                f"Sources: {cite}.")
    if prompt.startswith("SYNTHESIZE"):
        return (f"Report: {topic}. Summary: sandboxed components give plugins exactly the access "
                f"they are granted; deterministic workflows replay from history, so long-running "
                f"processes survive restarts; activities do the side effects, retried on failure. "
                f"Recommendation: run untrusted plugins as activities with narrow grants, and keep "
                f"orchestration in workflows. Sources: {cite}.")
    return f"I can plan, draft, revise and synthesize. ({len(prompt)} characters received)"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes: streaming without chunking

    def do_GET(self):
        if self.path != "/stats":
            self.send_error(404)
            return
        with lock:
            body = json.dumps(state).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            self.send_error(404)
            return
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        with lock:
            state["requests"] += 1
            fail = state["requests"] <= self.server.fail_first
            state["failed"] += fail
        if fail:
            self.send_error(503, "overloaded, try again")
            return
        prompt = (request.get("messages") or [{}])[-1].get("content", "")
        words = answer(prompt).split(" ")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i in range(0, len(words), 3):
            piece = " ".join(words[i:i + 3]) + (" " if i + 3 < len(words) else "")
            chunk = {"choices": [{"delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(self.server.chunk_delay)
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, fmt, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--fail-first", type=int, default=2, help="answer the first N requests with 503")
    parser.add_argument("--chunk-delay", type=float, default=0.1, help="seconds between streamed chunks")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.fail_first, server.chunk_delay = args.fail_first, args.chunk_delay
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
