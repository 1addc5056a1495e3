"""Live workers, end to end, against one local dev server: Caisson against
the native Rust SDK, the Python SDK and (for a JavaScript workflow) the
TypeScript SDK, one worker after the other (issue #18).

Workers (`--workers`, in this order by default):

  caisson     `caisson worker` with build/plugins/test-workflows.wasm and
              test-activities.wasm (Rust workflows, Rust `echo` activity);
  native      target/debug/native_worker (benches/src/bin/native_worker.rs):
              the same two workflows and `echo` on `temporalio-sdk` 1.1.1;
  python-sdk  the Python SDK (temporalio, default sandboxed runner), the
              same workflows in benches/guest_workflows/live_sdk_workflows.py;
  caisson-ts  `caisson worker` with guest_replay.py's TypeScript plugin
              (`waitBench`, componentize-js) and test-activities;
  ts-sdk      the TypeScript SDK worker of guest_replay.py (ts_sdk.mjs) with
              the same workflow.ts.

Per Rust-workflow worker (caisson, native, python-sdk):
  * throughput: `--workflows` runs of `parallel(10)` (10 `echo`
    activities), all started at once; workflows/s, the worker's CPU time
    (utime+stime of its process, /proc/PID/stat, delta over the run) per
    workflow, latency start -> result p50/p99; every result is checked;
  * memory: `expense-approval` workflows left waiting for a signal (one-hour
    deadline), started in batches and each queried (`get-status` must say
    `pending`: its first task ran and it is held), up to each count of
    `--cached` (default 1000,10000) in the same worker; VmRSS and RssAnon
    growth per cached workflow from before the first one, and CPU per
    waiting workflow (start, first task, one query).
Per JavaScript-workflow worker (caisson-ts, ts-sdk): the memory part with
`waitBench` up to `--js-cached` (default 1000).

Usage (after `cargo build -p caisson`, `cargo xtask plugins` and
`cargo build -p caisson-benches --bin native_worker`):

    ~/.cache/caisson/venv/bin/python benches/e2e_worker.py [--workflows 300] [--cached 1000,10000] [--js-cached 1000]

The old single-worker run is `--workers caisson --cached 1000`. Set
CAISSON_BIN / NATIVE_WORKER_BIN to pick the binaries (default: the newest
of $CARGO_TARGET_DIR/{release,debug}/...). Figures are written to
build/e2e-workers.json.
"""
import argparse
import asyncio
import contextlib
import json
import os
import statistics
import socket
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CAISSON_HOME = Path(os.environ.get("CAISSON_HOME", Path.home() / ".cache/caisson"))
RUST_WORKERS = ("caisson", "native", "python-sdk")
JS_WORKERS = ("caisson-ts", "ts-sdk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def caisson_bin() -> str:
    if os.environ.get("CAISSON_BIN"):
        return os.environ["CAISSON_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    candidates = [target / p / "caisson" for p in ("release", "debug")]
    existing = [c for c in candidates if c.exists()]
    if not existing:
        sys.exit("no caisson binary: build it with `cargo build -p caisson` (or set CAISSON_BIN)")
    return str(max(existing, key=lambda c: c.stat().st_mtime))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def mappings(pid: int) -> int:
    return len(Path(f"/proc/{pid}/maps").read_text().splitlines())


def start_dev_server() -> tuple[subprocess.Popen, int]:
    """A headless Temporal dev server (in memory) on free loopback ports:
    the process and its gRPC port, once something listens there."""
    temporal = Path(os.environ.get("CAISSON_HOME", Path.home() / ".cache/caisson")) / "venv/bin/temporal"
    port = free_port()
    server = subprocess.Popen(
        [str(temporal), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
         "--http-port", str(free_port()), "--metrics-port", str(free_port()), "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
    except BaseException:
        server.kill()
        raise
    return server, port


def wait_port(port: int) -> None:
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def native_worker_bin() -> str:
    """The native Rust SDK worker binary (NATIVE_WORKER_BIN, or the newest
    of target/{release,debug}/native_worker)."""
    if os.environ.get("NATIVE_WORKER_BIN"):
        return os.environ["NATIVE_WORKER_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    existing = [c for c in (target / p / "native_worker" for p in ("release", "debug")) if c.exists()]
    if not existing:
        sys.exit("no native_worker binary: build it with `cargo build -p caisson-benches --bin native_worker`")
    return str(max(existing, key=lambda c: c.stat().st_mtime))


def log(message: str) -> None:
    print(message, flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of process `pid` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def smaps_by_region(pid: int) -> dict[str, list[int]]:
    """Rss and Anonymous (KiB) per kind of mapping: the file or [name], or
    for unnamed anonymous mappings their size class (wasmtime's pools and
    fiber stacks, the allocator's arenas), from /proc/PID/smaps."""
    out: dict[str, list[int]] = {}
    key = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5 and not parts[0].endswith(":"):
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            size = hi - lo
            name = " ".join(parts[5:]) if len(parts) > 5 else ""
            if name.startswith("/memfd:"):
                name = "/memfd:" + name.split(":", 1)[1].split(" (")[0]
            elif not name:
                name = f"anon, {size_class(size)} mappings"
            key = name
            out.setdefault(key, [0, 0, 0])
            out[key][2] += 1
        elif parts[0] == "Rss:" and key:
            out[key][0] += int(parts[1])
        elif parts[0] == "Anonymous:" and key:
            out[key][1] += int(parts[1])
    return out


def size_class(size: int) -> str:
    for limit, label in ((64 << 10, "<64 KiB"), (1 << 20, "64 KiB-1 MiB"), (8 << 20, "1-8 MiB"), (64 << 20, "8-64 MiB"),
                         (1 << 30, "64 MiB-1 GiB")):
        if size < limit:
            return label
    return ">=1 GiB"


def smaps_growth(before: dict[str, list[int]], after: dict[str, list[int]], count: int) -> list[dict]:
    """The kinds of mapping whose Rss grew most, per cached workflow."""
    rows = []
    for key, (rss, anon, n) in after.items():
        b = before.get(key, [0, 0, 0])
        rows.append({"region": key, "rss_kib_per_wf": (rss - b[0]) / count, "anon_kib_per_wf": (anon - b[1]) / count,
                     "mappings": n - b[2]})
    return sorted(rows, key=lambda r: -r["rss_kib_per_wf"])[:6]


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssShmem (/proc/PID/status) and Pss (smaps_rollup)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "RssAnon:", "RssShmem:")):
            out[line.split(":")[0]] = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["Pss"] = int(line.split()[1])
    return out


@contextlib.contextmanager
def rust_worker(kind: str, address: str, task_queue: str, max_cached: int):
    """A Caisson, native Rust SDK or Python SDK worker process serving
    `parallel`, `expense-approval` and `echo`, once it polls."""
    plugins = ROOT / "build/plugins"
    if kind == "caisson":
        cmd = [caisson_bin(), "worker", "--address", address, "--task-queue", task_queue,
               "--max-cached-workflows", str(max_cached), str(plugins / "test-workflows.wasm"), str(plugins / "test-activities.wasm")]
        ready = "worker polling"
    elif kind == "native":
        cmd = [native_worker_bin(), "--address", address, "--task-queue", task_queue, "--max-cached-workflows", str(max_cached)]
        ready = "worker polling"
    else:
        cmd = [sys.executable, __file__, "--serve-python-sdk", address, task_queue, str(max_cached)]
        ready = "ready"
    logfile = ROOT / f"build/e2e-worker-{kind}.log"
    out = open(logfile, "w")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "CAISSON_LOG": "warn,caisson=info"})
    try:
        deadline = time.monotonic() + 120
        while ready not in logfile.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {kind} worker did not start: see {logfile}")
            time.sleep(0.1)
        log(f"  {kind} worker: pid {proc.pid}, {' '.join(cmd[:2])} ... (log {logfile})")
        yield proc
    finally:
        stop(proc, kind)
        out.close()


def stop(proc: subprocess.Popen, kind: str) -> None:
    import guest_replay

    if guest_replay.stop(proc, timeout=60):
        log(f"  the {kind} worker did not stop within 60 s of SIGTERM (killed)")


def serve_python_sdk(address: str, task_queue: str, max_cached: int) -> None:
    """`--serve-python-sdk`: a plain Python SDK worker (default sandboxed
    runner) for live_sdk_workflows' workflows and `echo`."""
    sys.path.insert(0, str(HERE / "guest_workflows"))
    import live_sdk_workflows as w
    from temporalio.worker import Worker

    async def serve() -> None:
        client = await Client.connect(address)
        async with Worker(client, task_queue=task_queue, workflows=[w.Parallel, w.ExpenseApproval], activities=[w.echo],
                          max_cached_workflows=max_cached):
            print("ready", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(serve())


async def query_status(handle) -> dict:
    # While thousands of first tasks are queued a query can time out or
    # find the first task not yet done; it is answered once that has run.
    for _ in range(180):
        try:
            return await handle.query("get-status")
        except RPCError:
            await asyncio.sleep(1)
    return await handle.query("get-status")


EXPECTED = [f"item-{i}" for i in range(10)]


@contextlib.contextmanager
def perf_record(pid: int | None, out: Path):
    """`perf record -g` of process `pid` while the block runs (no-op for None)."""
    if pid is None:
        yield
        return
    proc = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(pid), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield
    finally:
        proc.send_signal(2)
        proc.wait(timeout=60)
        log(f"  perf profile: {out} (perf report -i {out} --no-children --sort dso,sym)")


async def throughput(client: Client, pid: int, task_queue: str, workflows: int) -> dict:
    """`workflows` runs of parallel(10), all at once: wall time, the
    worker's CPU, latency from start to result; every result checked."""

    async def one(i: int) -> float:
        t = time.perf_counter()
        result = await client.execute_workflow("parallel", 10, id=f"{task_queue}-tp-{i}", task_queue=task_queue)
        if result != EXPECTED:
            raise SystemExit(f"{task_queue}-tp-{i}: unexpected result {result!r}")
        return time.perf_counter() - t

    load = loadavg()
    cpu0, started = cpu_s(pid), time.perf_counter()
    latencies = await asyncio.gather(*(one(i) for i in range(workflows)))
    elapsed, cpu = time.perf_counter() - started, cpu_s(pid) - cpu0
    if len(latencies) != workflows:
        raise SystemExit(f"only {len(latencies)} of {workflows} workflows returned")
    q = statistics.quantiles(latencies, n=100)
    row = {"workflows": workflows, "completed": len(latencies), "elapsed_s": elapsed, "per_s": workflows / elapsed,
           "cpu_s": cpu, "cpu_ms_per_workflow": 1000 * cpu / workflows, "p50_s": q[49], "p99_s": q[98],
           "max_s": max(latencies), "load_before": load, "load_after": loadavg()}
    log(f"  throughput: {workflows} x parallel(10): all {workflows} results checked, {elapsed:.2f} s = {row['per_s']:.1f} workflows/s; "
        f"worker CPU {cpu:.2f} s = {row['cpu_ms_per_workflow']:.2f} ms per workflow; latency p50 {q[49]:.2f} s, p99 {q[98]:.2f} s "
        f"(load {load} -> {row['load_after']})")
    return row


async def hold_waiting(client: Client, pid: int, task_queue: str, wf_type: str, wf_input, counts: list[int]) -> list[dict]:
    """Starts waiting workflows in batches, each queried until `pending`;
    at each of `counts` (cumulative), the growth of the worker's memory
    per cached workflow since before the first one, and its CPU."""
    await asyncio.sleep(2)
    base, cpu0, t0 = memory_kib(pid), cpu_s(pid), time.perf_counter()
    regions0 = smaps_by_region(pid)
    rows, done, batch, settled = [], 0, 250, 0.0
    for count in counts:
        while done < count:
            n = min(batch, count - done)
            args = [] if wf_input is None else [wf_input]
            handles = await asyncio.gather(*(client.start_workflow(wf_type, args=args, id=f"{task_queue}-wait-{done + i}",
                                                                   task_queue=task_queue) for i in range(n)))
            statuses = await asyncio.gather(*(query_status(h) for h in handles))
            bad = [s for s in statuses if s.get("state") != "pending"]
            if len(statuses) != n or bad:
                raise SystemExit(f"{task_queue}: {len(bad)} of {n} waiting workflows not pending: {bad[:3]}")
            done += n
        elapsed, cpu = time.perf_counter() - t0 - settled, cpu_s(pid) - cpu0
        await asyncio.sleep(3)
        settled += 3
        after = memory_kib(pid)
        per = {k: (after[k] - base[k]) / count for k in base}
        row = {"cached": count, "queried_pending": done, "before_kib": base, "after_kib": after, "kib_per_workflow": per,
               "elapsed_s": elapsed, "cpu_ms_per_workflow": 1000 * cpu / count, "mappings": mappings(pid), "load": loadavg(),
               "regions": smaps_growth(regions0, smaps_by_region(pid), count)}
        rows.append(row)
        log(f"  {count} cached ({done} queried, all pending) in {elapsed:.1f} s: VmRSS {base['VmRSS'] / 1024:.1f} -> "
            f"{after['VmRSS'] / 1024:.1f} MiB = {per['VmRSS']:.1f} KiB/workflow, RssAnon {base['RssAnon'] / 1024:.1f} -> "
            f"{after['RssAnon'] / 1024:.1f} MiB = {per['RssAnon']:.1f} KiB/workflow (Pss {per['Pss']:.1f}); CPU {row['cpu_ms_per_workflow']:.2f} "
            f"ms per waiting workflow (load {row['load']})")
        log("    grew most (Rss / Anonymous KiB per workflow, new mappings): " + "; ".join(
            f"{r['region']} {r['rss_kib_per_wf']:.1f} / {r['anon_kib_per_wf']:.1f} (+{r['mappings']})" for r in row["regions"][:4]))
    return rows


def versions() -> dict[str, str]:
    from importlib.metadata import version

    def out(cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()

    lock = (ROOT / "Cargo.lock").read_text()

    def locked(name: str) -> str:
        i = lock.find(f'name = "{name}"\n')
        return lock[i:].split("\n")[1].split('"')[1] if i >= 0 else "?"

    return {
        "host commit": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) +
        (" (work tree modified)" if out(["git", "-C", str(ROOT), "status", "--porcelain", "host", "plugins", "Cargo.toml", "Cargo.lock"]) else ""),
        "caisson binary": caisson_bin(), "native_worker binary": native_worker_bin(),
        "temporalio-sdk (native)": locked("temporalio-sdk"), "temporalio-sdk-core": locked("temporalio-sdk-core"),
        "wasmtime": locked("wasmtime"), "rustc": out(["rustc", "--version"]),
        "python": sys.version.split()[0], "temporalio (Python SDK)": version("temporalio"),
        "temporal CLI": out([str(CAISSON_HOME / "venv/bin/temporal"), "--version"]),
        "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "?") + f", {os.cpu_count()} CPUs",
    }


async def run_rust(kind: str, address: str, args: argparse.Namespace) -> dict:
    client = await Client.connect(address)
    task_queue = f"e2e-{kind}"
    with rust_worker(kind, address, task_queue, max(args.cached) + 100) as proc:
        # Warm up (compile cache, connections, sticky queues).
        await asyncio.gather(*(client.execute_workflow("parallel", 10, id=f"{task_queue}-warm-{i}", task_queue=task_queue)
                               for i in range(10)))
        row = {"worker": kind, "pid": proc.pid}
        profiled = proc.pid if kind in args.perf else None
        if args.workflows:
            with perf_record(profiled, ROOT / f"build/perf-{kind}-throughput.data"):
                row["throughput"] = await throughput(client, proc.pid, task_queue, args.workflows)
        if args.cached:
            with perf_record(profiled, ROOT / f"build/perf-{kind}-waiting.data"):
                row["memory"] = await hold_waiting(client, proc.pid, task_queue, "expense-approval",
                                                   {"id": "e", "amount": 1.0, "timeout_ms": 3_600_000}, args.cached)
        row["worker_cpu_total_s"] = cpu_s(proc.pid)
    return row


async def run_js(setups, kind: str, address: str, args: argparse.Namespace) -> dict:
    import guest_replay

    setup = setups()
    client = await Client.connect(address)
    task_queue = f"e2e-{kind}"
    side = guest_replay.SIDES[kind]
    with guest_replay.worker(setup, kind, address, task_queue, max(args.js_cached) + 100) as proc:
        log(f"  {kind} worker: pid {proc.pid} (guest_replay.worker; log {setup.scratch}/worker-{kind}.log)")
        # Warm up: a few waiting workflows through their first task.
        warm = [await guest_replay.start_waiting(client, side, task_queue, f"{task_queue}-warm-{i}") for i in range(10)]
        await asyncio.gather(*(h.terminate() for h in warm))
        with perf_record(proc.pid if kind in args.perf else None, ROOT / f"build/perf-{kind}-waiting.data"):
            row = {"worker": kind, "pid": proc.pid, "memory": await hold_waiting(client, proc.pid, task_queue, side.wait_type,
                                                                                side.wait_input, args.js_cached)}
    return row


def other_builds() -> str:
    """cargo / rustc / nextest processes running now (other builds on the machine)."""
    ps = subprocess.run(["ps", "-eo", "pid=,comm=,args="], capture_output=True, text=True).stdout.splitlines()
    return "; ".join(line.strip()[:120] for line in ps if line.split()[1] in ("cargo", "rustc", "cargo-nextest", "nextest"))


def bench(args: argparse.Namespace) -> None:
    info = versions()
    for k, v in info.items():
        log(f"{k}: {v}")
    results = {"versions": info, "args": {k: str(v) for k, v in vars(args).items()}, "rows": []}
    setup = None

    def setups():
        nonlocal setup
        if setup is None:
            import guest_replay  # its plugins, the TypeScript SDK and its bundle

            log("  guest_replay.prepare: the TypeScript plugin and the TypeScript SDK bundle")
            setup = guest_replay.prepare(argparse.Namespace(scratch=args.scratch, sdk_dir=args.sdk_dir))
        return setup

    if set(args.workers) & set(JS_WORKERS):
        setups()
    server, port = start_dev_server()
    address = f"127.0.0.1:{port}"
    log(f"dev server at {address}, pid {server.pid} (load {loadavg()})")
    try:
        for kind in args.workers:
            busy = other_builds()
            log(f"\n{kind} (load {loadavg()}{'; BUSY: ' + busy[:200] if busy else ''})")
            server_cpu0 = cpu_s(server.pid)
            if kind in RUST_WORKERS:
                row = asyncio.run(run_rust(kind, address, args))
            elif kind in JS_WORKERS:
                row = asyncio.run(run_js(setups, kind, address, args))
            else:
                raise SystemExit(f"unknown worker {kind}: {RUST_WORKERS + JS_WORKERS}")
            row["server_cpu_s"] = cpu_s(server.pid) - server_cpu0
            row["other_builds"] = busy
            results["rows"].append(row)
            args.out.write_text(json.dumps(results, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary(results["rows"])
    log(f"\nall figures in {args.out}")


def summary(rows: list[dict]) -> None:
    log("\nworker      | wf/s  | CPU ms/wf | p50 s | p99 s | cached | VmRSS KiB/wf | RssAnon KiB/wf | CPU ms/waiting wf")
    for row in rows:
        tp = row.get("throughput")
        for i, m in enumerate(row.get("memory") or [{}]):
            head = (f"{tp['per_s']:5.1f} | {tp['cpu_ms_per_workflow']:9.2f} | {tp['p50_s']:5.2f} | {tp['p99_s']:5.2f}"
                    if tp and i == 0 else f"{'':5} | {'':9} | {'':5} | {'':5}")
            mem = (f"{m['cached']:6} | {m['kib_per_workflow']['VmRSS']:12.1f} | {m['kib_per_workflow']['RssAnon']:14.1f} | "
                   f"{m['cpu_ms_per_workflow']:.2f}" if m else "")
            log(f"{row['worker']:11} | {head} | {mem}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-python-sdk":
        address, task_queue, max_cached = sys.argv[2:5]
        serve_python_sdk(address, task_queue, int(max_cached))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default=",".join(RUST_WORKERS + JS_WORKERS), help="which workers, in order (comma-separated)")
    ap.add_argument("--workflows", type=int, default=300, help="parallel(10) workflows per worker for throughput (0: skip)")
    ap.add_argument("--cached", default="1000,10000", help="cumulative counts of waiting Rust-type workflows to measure at ('': skip)")
    ap.add_argument("--js-cached", default="1000", help="the same for the JavaScript workflow (caisson-ts, ts-sdk)")
    ap.add_argument("--scratch", type=Path, default=CAISSON_HOME / "guest-replay", help="guest_replay.py's plugins and logs")
    ap.add_argument("--sdk-dir", type=Path, default=CAISSON_HOME / "bench-ts", help="where the TypeScript SDK is npm-installed")
    ap.add_argument("--perf", default="", help="workers to profile with `perf record -g` (comma-separated; build/perf-*.data)")
    ap.add_argument("--out", type=Path, default=ROOT / "build/e2e-workers.json", help="where the figures go (JSON)")
    args = ap.parse_args()
    args.workers = [w for w in args.workers.split(",") if w]
    args.perf = [w for w in args.perf.split(",") if w]
    args.cached = [int(c) for c in args.cached.split(",") if c]
    args.js_cached = [int(c) for c in args.js_cached.split(",") if c]
    bench(args)


if __name__ == "__main__":
    main()
