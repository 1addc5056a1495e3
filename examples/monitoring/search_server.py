#!/usr/bin/env python3
"""A tiny search service for the monitoring example (standard library only).

    python3 search_server.py [--port 8099] [--data search-data.json]

GET  /tasks/ID        a monitoring task: {"id", "query"}
GET  /search?q=TEXT   the documents whose title contains TEXT (any case)
POST /notify          records a change notification (JSON body)
GET  /notifications   every notification received, oldest first

The data file is read on every request: edit it while the schedule runs
and the next run notices. Prints `listening on http://127.0.0.1:PORT` once
ready (`--port 0` picks a free port).
"""
import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

notifications = []
lock = threading.Lock()


def make_handler(data_file: Path):
    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, value):
            body = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            data = json.loads(data_file.read_text())
            if url.path.startswith("/tasks/"):
                task = data["tasks"].get(url.path[len("/tasks/"):])
                return self.reply(200, task) if task else self.reply(404, {"error": "no such task"})
            if url.path == "/search":
                q = parse_qs(url.query).get("q", [""])[0].lower()
                return self.reply(200, [d for d in data["documents"] if q in d["title"].lower()])
            if url.path == "/notifications":
                with lock:
                    return self.reply(200, list(notifications))
            self.reply(404, {"error": f"no route {url.path}"})

        def do_POST(self):
            if urlparse(self.path).path != "/notify":
                return self.reply(404, {"error": "no route"})
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            with lock:
                notifications.append(body)
                n = len(notifications)
            print(f"notification {n}: {json.dumps(body)}", flush=True)
            self.reply(200, {"received": n})

        def log_message(self, fmt, *args):
            print(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", file=sys.stderr, flush=True)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--data", type=Path, default=Path(__file__).with_name("search-data.json"))
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.data.resolve()))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
