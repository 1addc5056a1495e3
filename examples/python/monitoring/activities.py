"""The monitoring activities: fetch a monitoring task from the search
service, run its search, compare the hits with the previous pass's (kept
as a JSON file per task in a state folder), notify the service of a
change.

Plain Temporal Python SDK code; on Caisson only the imports differ (see
README.md). Configuration comes from the environment: `SEARCH_SERVICE`
(the service's base URL) and `STATE_DIR` (the state folder).
"""
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any, List

from caisson import activity  # was: from temporalio import activity
from caisson.exceptions import ApplicationError  # was: from temporalio.exceptions import ApplicationError


@dataclass
class Task:
    id: str
    query: str


@dataclass
class Hit:
    id: str
    title: str
    url: str


@dataclass
class CompareInput:
    task_id: str
    hits: List[Hit]


@dataclass
class Change:
    task_id: str
    first_run: bool
    added: List[Hit]
    removed: List[str]
    total: int


def _service() -> str:
    url = os.environ.get("SEARCH_SERVICE")
    if not url:
        raise ApplicationError("SEARCH_SERVICE is not set", type="Misconfigured", non_retryable=True)
    return url.rstrip("/")


def _call(url: str, body: Any = None) -> Any:
    """GET (or POST `body` as JSON) `url`; its JSON answer. A 404 is not
    retryable, other failures are."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        if err.code == 404:
            raise ApplicationError(f"{url}: not found", type="NotFound", non_retryable=True) from err
        raise ApplicationError(f"{url}: HTTP {err.code}", type="ServiceUnavailable") from err
    except OSError as err:
        raise ApplicationError(f"{url}: {err}", type="ServiceUnavailable") from err


def _state_file(task_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", task_id):
        raise ApplicationError(f"task id {task_id!r}: use letters, digits, - and _", type="InvalidTask", non_retryable=True)
    return os.path.join(os.environ.get("STATE_DIR", "state"), f"{task_id}.json")


@activity.defn
def fetch_task(task_id: str) -> Task:
    task = _call(f"{_service()}/tasks/{urllib.parse.quote(task_id)}")
    return Task(id=task["id"], query=task["query"])


@activity.defn
def search(query: str) -> List[Hit]:
    hits = [Hit(id=h["id"], title=h["title"], url=h["url"]) for h in _call(f"{_service()}/search?q={urllib.parse.quote(query)}")]
    activity.logger.info("%r: %d hit(s)", query, len(hits))
    return hits


@activity.defn
def compare_with_previous(input: CompareInput) -> Change:
    """What changed since the previous pass; this pass's hits replace the
    previous ones (written to a temporary file, then renamed, so a crash
    never leaves half a state file)."""
    path = _state_file(input.task_id)
    try:
        with open(path) as f:
            previous = [Hit(**h) for h in json.load(f)]
    except FileNotFoundError:
        previous = None
    old = {h.id for h in previous or []}
    new = {h.id for h in input.hits}
    added = [h for h in input.hits if h.id not in old] if previous is not None else []
    removed = sorted(old - new)
    with open(path + ".tmp", "w") as f:
        json.dump([asdict(h) for h in input.hits], f, indent=2)
    os.replace(path + ".tmp", path)
    activity.logger.info("%s: %d hit(s), %d new, %d gone", input.task_id, len(input.hits), len(added), len(removed))
    return Change(task_id=input.task_id, first_run=previous is None, added=added, removed=removed, total=len(input.hits))


@activity.defn
def notify(change: Change) -> str:
    answer = _call(f"{_service()}/notify", asdict(change))
    activity.logger.info("notified about %s: %d new, %d gone", change.task_id, len(change.added), len(change.removed))
    return f"notification {answer['received']}"
