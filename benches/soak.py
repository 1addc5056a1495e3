"""Soak benchmark (not a CI test): mixed workflows at a steady rate for a
long time, with a worker SIGKILL and a dev-server restart in the middle.

It starts its own Temporal dev server (on loopback, with --db-filename so a
restart keeps its state) and a `caisson worker` serving test-workflows and
test-activities, then starts `--rate` workflows per second for `--duration`
seconds, cycling through:

  * expense-approval  signals: started, then approved by a signal
  * sleep             a durable timer (100-2000 ms)
  * parallel          3 activities at once
  * parent            2 child workflows
  * count-to          3 continue-as-new hops

At 1/3 of the duration it SIGKILLs the worker and starts a new one; at 2/3
it stops the dev server (SIGTERM) and starts it again on the same ports and
database. It samples the worker's RSS every `--rss-every` seconds. At the end
(plus `--grace` for the last workflows) it reports completed / failed / stuck
(still running after the grace) workflows, RSS over time and latency
percentiles (start call to result, client side), and writes the figures to
`--out` as JSON.

RSS bound: after `--warmup` seconds in each worker incarnation, the worker's
RSS may grow by at most `--rss-bound-mib` (default 64 MiB) up to the end of
that incarnation; the report says whether it held, and the slope over the
last incarnation (MiB per hour).

Usage (after `cargo build -p caisson && cargo xtask plugins`):

    ~/.cache/caisson/venv/bin/python benches/soak.py [--duration 1800] [--rate 2] [--caisson PATH]
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

ROOT = Path(__file__).resolve().parent.parent
TASK_QUEUE = "soak"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def caisson_bin(flag: str | None) -> str:
    if flag:
        return flag
    if os.environ.get("CAISSON_BIN"):
        return os.environ["CAISSON_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    candidates = [target / p / "caisson" for p in ("release", "debug")]
    existing = [c for c in candidates if c.exists()]
    if not existing:
        sys.exit("no caisson binary: build it with `cargo build -p caisson` (or pass --caisson)")
    return str(max(existing, key=lambda c: c.stat().st_mtime))


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within 120 s")


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))]


class DevServer:
    """`temporal server start-dev` on fixed loopback ports and a database file."""

    def __init__(self, db: Path):
        self.db = db
        self.port, self.http, self.metrics = free_port(), free_port(), free_port()
        self.temporal = str(Path(os.environ.get("CAISSON_HOME", Path.home() / ".cache/caisson")) / "venv/bin/temporal")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.temporal, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(self.port),
             "--http-port", str(self.http), "--metrics-port", str(self.metrics), "--log-level", "error",
             "--db-filename", str(self.db)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, "the dev server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class CaissonWorker:
    """`caisson worker` on the soak queue; its log goes to `log_path`."""

    def __init__(self, binary: str, address: str, log_path: Path):
        self.binary, self.address, self.log_path = binary, address, log_path
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    def start(self) -> None:
        plugins = ROOT / "build/plugins"
        log = open(self.log_path, "a")
        log.write(f"\n=== worker started at {time.strftime('%H:%M:%S')} ===\n")
        log.flush()
        offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [self.binary, "worker", "--address", self.address, "--task-queue", TASK_QUEUE,
             str(plugins / "test-workflows.wasm"), str(plugins / "test-activities.wasm")],
            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "CAISSON_LOG": "warn,caisson=info,caisson_worker=info"})
        deadline = time.monotonic() + 120
        while "worker polling" not in self.log_path.read_text()[offset:]:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}: see {self.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not poll within 120 s: see {self.log_path}")
            time.sleep(0.1)
        self.started_at = time.monotonic()

    def sigkill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Outcome:
    kind: str
    workflow_id: str
    started: float  # monotonic, seconds since the soak began
    ended: float | None = None
    status: str = "running"  # completed | failed | stuck | start-failed
    detail: str = ""


@dataclass
class Soak:
    args: argparse.Namespace
    t0: float
    client: Client
    outcomes: list[Outcome] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def retrying(self, what, deadline: float):
        """Calls `what()` until it succeeds or the soak's deadline passes:
        the server may be restarting."""
        while True:
            try:
                return await what()
            except (WorkflowFailureError, WorkflowAlreadyStartedError):
                raise
            except Exception:  # RPC errors while the server restarts
                if self.now() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def one(self, i: int, deadline: float) -> None:
        kind = ("expense", "sleep", "parallel", "parent", "count-to")[i % 5]
        workflow_id = f"soak-{kind}-{i}"
        outcome = Outcome(kind, workflow_id, self.now())
        self.outcomes.append(outcome)
        workflow, arg, expected = {
            "expense": ("expense-approval", {"id": f"e{i}", "amount": 10.0, "timeout_ms": 600_000},
                        {"state": "approved", "decided_by": "soak"}),
            "sleep": ("sleep", self.rng.randint(100, 2000), None),
            "parallel": ("parallel", 3, ["item-0", "item-1", "item-2"]),
            "parent": ("parent", ["a", "b"], ["A", "B"]),
            "count-to": ("count-to", {"current": 0, "target": 3}, 3),
        }[kind]
        if kind == "sleep":
            expected = f"slept {arg} ms"

        async def start() -> WorkflowHandle:
            try:
                return await self.client.start_workflow(workflow, arg, id=workflow_id, task_queue=TASK_QUEUE,
                                                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
            except WorkflowAlreadyStartedError:
                # An earlier attempt reached the server before it went away.
                return self.client.get_workflow_handle(workflow_id)

        try:
            handle = await self.retrying(start, deadline)
            if kind == "expense":
                await self.retrying(lambda: handle.signal("approve", "soak"), deadline)
            result = await self.retrying(lambda: self.client.get_workflow_handle(workflow_id).result(), deadline)
            outcome.ended = self.now()
            if result == expected:
                outcome.status = "completed"
            else:
                outcome.status, outcome.detail = "failed", f"unexpected result {result!r}"
        except WorkflowFailureError as e:
            outcome.ended, outcome.status, outcome.detail = self.now(), "failed", str(e.cause or e)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            outcome.detail = f"{type(e).__name__}: {e}"


async def sample_rss(soak: Soak, worker_ref: dict, samples: list, every: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        worker = worker_ref["worker"]
        kib = rss_kib(worker.proc.pid) if worker.proc else None
        if kib is not None:
            samples.append((round(soak.now(), 1), worker_ref["incarnation"], kib))
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except asyncio.TimeoutError:
            pass


def rss_summary(samples: list, warmup: float, bound_mib: float) -> dict:
    by_incarnation: dict[int, list[tuple[float, int]]] = {}
    for t, inc, kib in samples:
        by_incarnation.setdefault(inc, []).append((t, kib))
    out = {}
    for inc, points in by_incarnation.items():
        start = points[0][0]
        kibs = [k for _, k in points]
        warm = [(t, k) for t, k in points if t - start >= warmup]
        entry = {"from_s": start, "to_s": points[-1][0], "samples": len(points),
                 "first_mib": kibs[0] / 1024, "min_mib": min(kibs) / 1024, "max_mib": max(kibs) / 1024,
                 "last_mib": kibs[-1] / 1024}
        if len(warm) >= 2:
            growth = (max(k for _, k in warm) - warm[0][1]) / 1024
            n = len(warm)
            mt = sum(t for t, _ in warm) / n
            mk = sum(k for _, k in warm) / n
            var = sum((t - mt) ** 2 for t, _ in warm)
            slope = sum((t - mt) * (k - mk) for t, k in warm) / var if var else 0.0
            entry.update({"after_warmup_mib": warm[0][1] / 1024, "growth_after_warmup_mib": growth,
                          "slope_mib_per_hour": slope * 3600 / 1024, "within_bound": growth <= bound_mib})
        out[inc] = entry
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=1800, help="seconds of steady load (default 1800)")
    ap.add_argument("--rate", type=float, default=2.0, help="workflows started per second (default 2)")
    ap.add_argument("--grace", type=float, default=120, help="seconds after the end for the last workflows to finish")
    ap.add_argument("--caisson", help="the caisson binary (default: $CAISSON_BIN or the newest of target/{release,debug})")
    ap.add_argument("--rss-every", type=float, default=5, help="seconds between RSS samples")
    ap.add_argument("--warmup", type=float, default=120, help="seconds of each worker incarnation before RSS growth counts")
    ap.add_argument("--rss-bound-mib", type=float, default=64, help="allowed RSS growth after warm-up, per incarnation")
    ap.add_argument("--out", type=Path, default=ROOT / "build/soak-report.json", help="where to write the figures")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="caisson-soak-"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    server = DevServer(work / "temporal.db")
    server.start()
    address = f"127.0.0.1:{server.port}"
    binary = caisson_bin(args.caisson)
    worker_ref = {"worker": CaissonWorker(binary, address, work / "worker.log"), "incarnation": 1}
    worker_ref["worker"].start()
    print(f"soak: {args.duration:.0f} s at {args.rate}/s; server {address} (db {server.db}); worker {binary}; "
          f"worker log {work / 'worker.log'}", flush=True)
    client = await Client.connect(address)
    soak = Soak(args, time.monotonic(), client)
    samples: list = []
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(soak, worker_ref, samples, args.rss_every, stop_sampling))
    tasks: list[asyncio.Task] = []
    deadline = args.duration + args.grace
    kill_at, restart_at = args.duration / 3, 2 * args.duration / 3
    killed = restarted = False
    try:
        i = 0
        while soak.now() < args.duration:
            due = i / args.rate
            if soak.now() < due:
                await asyncio.sleep(min(due - soak.now(), 0.5))
                continue
            if not killed and soak.now() >= kill_at:
                killed = True
                worker_ref["worker"].sigkill()
                soak.events.append((round(soak.now(), 1), "worker SIGKILLed"))
                print(f"[{soak.now():7.1f} s] worker SIGKILLed; starting a new one", flush=True)
                worker_ref["worker"] = CaissonWorker(binary, address, work / "worker.log")
                worker_ref["incarnation"] += 1
                await asyncio.to_thread(worker_ref["worker"].start)
                soak.events.append((round(soak.now(), 1), "new worker polling"))
            if not restarted and soak.now() >= restart_at:
                restarted = True
                soak.events.append((round(soak.now(), 1), "dev server stopping"))
                print(f"[{soak.now():7.1f} s] restarting the dev server", flush=True)
                await asyncio.to_thread(server.stop)
                await asyncio.to_thread(server.start)
                soak.events.append((round(soak.now(), 1), "dev server up"))
            w = worker_ref["worker"]
            if w.proc and w.proc.poll() is not None:
                soak.events.append((round(soak.now(), 1), f"worker exited by itself ({w.proc.returncode}); restarted"))
                print(f"[{soak.now():7.1f} s] the worker exited by itself ({w.proc.returncode}); restarting it", flush=True)
                worker_ref["worker"] = CaissonWorker(binary, address, work / "worker.log")
                worker_ref["incarnation"] += 1
                await asyncio.to_thread(worker_ref["worker"].start)
            tasks.append(asyncio.create_task(soak.one(i, deadline)))
            i += 1
            if i % 300 == 0:
                done = sum(o.status == "completed" for o in soak.outcomes)
                rss = rss_kib(worker_ref["worker"].proc.pid) or 0
                print(f"[{soak.now():7.1f} s] started {i}, completed {done}, worker RSS {rss / 1024:.1f} MiB", flush=True)
        pending = [t for t in tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(0.0, deadline - soak.now()))
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Whatever has no result yet: running on the server is "stuck".
        for o in soak.outcomes:
            if o.status != "running":
                continue
            try:
                d = await client.get_workflow_handle(o.workflow_id).describe()
                o.status = "stuck" if d.status and d.status.name == "RUNNING" else f"ended-late:{d.status.name if d.status else '?'}"
            except Exception as e:
                o.status, o.detail = "start-failed", o.detail or f"{type(e).__name__}: {e}"
    finally:
        stop_sampling.set()
        await sampler
        worker_ref["worker"].stop()
        server.stop()

    counts: dict[str, int] = {}
    for o in soak.outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    done = [o for o in soak.outcomes if o.status == "completed" and o.ended is not None]
    lat_all = sorted(o.ended - o.started for o in done)
    disruptions = [t for t, e in soak.events if e in ("worker SIGKILLed", "dev server stopping")]
    calm = sorted(o.ended - o.started for o in done if not any(o.started <= t <= o.ended for t in disruptions))
    by_kind = {}
    for kind in ("expense", "sleep", "parallel", "parent", "count-to"):
        ls = sorted(o.ended - o.started for o in done if o.kind == kind)
        by_kind[kind] = {"n": len(ls), "p50_ms": (percentile(ls, 0.5) or 0) * 1000, "p99_ms": (percentile(ls, 0.99) or 0) * 1000}
    pct = lambda ls: {"n": len(ls), **{f"p{int(q * 100)}_ms": round((percentile(ls, q) or 0) * 1000, 1) for q in (0.5, 0.9, 0.99)},
                      "max_ms": round((ls[-1] if ls else 0) * 1000, 1)}
    report = {
        "command": " ".join(sys.argv),
        "duration_s": args.duration, "rate_per_s": args.rate, "grace_s": args.grace, "binary": binary,
        "events": soak.events,
        "workflows": counts,
        "not_completed": [o.__dict__ for o in soak.outcomes if o.status != "completed"][:50],
        "latency_all": pct(lat_all),
        "latency_undisturbed": pct(calm),
        "latency_by_kind": by_kind,
        "rss_bound_mib": args.rss_bound_mib, "rss_warmup_s": args.warmup,
        "rss": rss_summary(samples, args.warmup, args.rss_bound_mib),
        "rss_samples": samples,
    }
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("rss_samples", "not_completed")}, indent=1))
    problems = [o for o in soak.outcomes if o.status != "completed"]
    for o in problems[:10]:
        print(f"not completed: {o.workflow_id} {o.status} {o.detail}")
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
