"""The research activities: an LLM call that streams its answer and
heartbeats after every chunk, and a search over a knowledge base of
Markdown files.

Plain Temporal Python SDK code; on Caisson only the imports differ (see
README.md). Configuration comes from the environment, as a worker's
would: `LLM_URL` (an OpenAI-style chat-completions endpoint that streams
server-sent events) and `KB_DIR` (the knowledge base's folder).
"""
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import List

from caisson import activity  # was: from temporalio import activity
from caisson.exceptions import ApplicationError  # was: from temporalio.exceptions import ApplicationError


@dataclass
class Completion:
    text: str
    chunks: int
    attempt: int


@dataclass
class SearchInput:
    question: str
    limit: int = 2


@dataclass
class Snippet:
    source: str
    title: str
    excerpt: str
    score: int


@activity.defn
def llm_complete(prompt: str) -> Completion:
    """Asks the LLM; heartbeats after every streamed chunk, so a stalled
    stream fails on the heartbeat timeout instead of the start-to-close
    one. HTTP 429 and 5xx are retryable, other refusals are not."""
    attempt = activity.info().attempt
    url = os.environ.get("LLM_URL")
    if not url:
        raise ApplicationError("LLM_URL is not set", type="Misconfigured", non_retryable=True)
    request = urllib.request.Request(
        url,
        data=json.dumps({"model": "mock-1", "stream": True, "messages": [{"role": "user", "content": prompt}]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        response = urllib.request.urlopen(request, timeout=30)
    except urllib.error.HTTPError as err:
        if err.code == 429 or err.code >= 500:
            activity.logger.warning("LLM answered HTTP %d on attempt %d; Temporal retries", err.code, attempt)
            raise ApplicationError(f"HTTP {err.code}", type="LlmUnavailable") from err
        raise ApplicationError(f"HTTP {err.code}", type="LlmRejected", non_retryable=True) from err
    except OSError as err:
        raise ApplicationError(f"{url}: {err}", type="LlmUnavailable") from err

    text, chunks = "", 0
    with response:
        # Server-sent events: `data: {json}` lines, blank lines between.
        for line in response:
            data = line.decode().strip()
            if not data.startswith("data: ") or data == "data: [DONE]":
                continue
            text += json.loads(data[len("data: "):])["choices"][0]["delta"]["content"]
            chunks += 1
            activity.heartbeat({"chunks": chunks, "chars": len(text)})
    activity.logger.info("LLM answered %d chars in %d chunks (attempt %d)", len(text), chunks, attempt)
    return Completion(text=text, chunks=chunks, attempt=attempt)


@activity.defn
def search_knowledge_base(input: SearchInput) -> List[Snippet]:
    """Scores the Markdown files of the knowledge base by the question's
    words; the best `limit` of them, each with its best paragraph."""
    folder = os.environ.get("KB_DIR", "kb")
    words = {w for w in re.split(r"[^a-z0-9]+", input.question.lower()) if len(w) > 3}

    def score(text: str) -> int:
        lower = text.lower()
        return sum(lower.count(w) for w in words)

    found = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".md"):
            continue
        with open(os.path.join(folder, name)) as f:
            text = f.read()
        points = score(text)
        if points == 0:
            continue
        title = text.splitlines()[0].lstrip("#").strip()
        paragraphs = text.split("\n\n")[1:] or [""]
        excerpt = max(paragraphs, key=score).replace("\n", " ").strip()
        found.append(Snippet(source=f"kb/{name}", title=title, excerpt=excerpt, score=points))
    found.sort(key=lambda s: (-s.score, s.source))
    activity.logger.info("%r: %s", input.question, ", ".join(f"{s.source} ({s.score})" for s in found[: input.limit]))
    return found[: input.limit]
