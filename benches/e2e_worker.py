"""End-to-end figures for the workflow runtime, against a real dev server.

  * throughput: workflows per second completed for a 10-activity workflow
    (`parallel` from plugins/rust/test-workflows, 10 `echo` activities);
  * memory: the worker's RSS growth per cached workflow, over N workflows
    left waiting for a signal (all held in the sticky cache), and the
    memory mappings they take (the kernel's vm.max_map_count bounds them).

`--workflows 0` skips the throughput part; `--cached 10000` holds 10,000
waiting workflows in one worker.

Usage (after `make test` or `cargo build -p caisson && cargo xtask plugins`):

    ~/.cache/caisson/venv/bin/python benches/e2e_worker.py [--workflows 200] [--cached 1000]

Set CAISSON_BIN to pick the worker binary (default: the newest of
$CARGO_TARGET_DIR/{release,debug}/caisson).
"""
import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

ROOT = Path(__file__).resolve().parent.parent


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


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workflows", type=int, default=200, help="10-activity workflows to run for throughput")
    ap.add_argument("--cached", type=int, default=1000, help="waiting workflows to hold for the memory figure")
    args = ap.parse_args()

    server, port = start_dev_server()
    worker = None
    try:
        plugins = ROOT / "build/plugins"
        binary = caisson_bin()
        log = open(ROOT / "build/e2e-worker.log", "w")
        worker = subprocess.Popen(
            [binary, "worker", "--address", f"127.0.0.1:{port}", "--task-queue", "bench",
             "--max-cached-workflows", str(args.cached + 100),
             str(plugins / "test-workflows.wasm"), str(plugins / "test-activities.wasm")],
            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "CAISSON_LOG": "warn,caisson=info"})
        while "worker polling" not in (ROOT / "build/e2e-worker.log").read_text():
            if worker.poll() is not None:
                sys.exit("the worker exited: see build/e2e-worker.log")
            time.sleep(0.1)
        client = await Client.connect(f"127.0.0.1:{port}")
        print(f"worker: {binary}")

        # Warm up (compile cache, connections, sticky queues).
        await asyncio.gather(*(client.execute_workflow("parallel", 10, id=f"warm-{i}", task_queue="bench") for i in range(10)))

        if args.workflows:
            await throughput(client, args.workflows)

        before, maps_before = rss_kib(worker.pid), mappings(worker.pid)
        handles = []
        for batch in range(0, args.cached, 500):
            handles += await asyncio.gather(*(
                client.start_workflow("expense-approval", {"id": f"e{i}", "amount": 1.0, "timeout_ms": 3_600_000},
                                      id=f"cached-{i}", task_queue="bench") for i in range(batch, min(args.cached, batch + 500))))
        # A query per workflow proves each one ran its first task and is held.
        statuses = []
        for batch in range(0, len(handles), 50):
            statuses += await asyncio.gather(*(query_status(h) for h in handles[batch:batch + 50]))
        assert all(s["state"] == "pending" for s in statuses)
        after, maps_after = rss_kib(worker.pid), mappings(worker.pid)
        print(f"memory: RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB over {args.cached} cached workflows = "
              f"{(after - before) / args.cached:.1f} KiB per cached workflow; memory mappings {maps_before} -> {maps_after} "
              f"= {(maps_after - maps_before) / args.cached:.2f} per cached workflow")
        for batch in range(0, len(handles), 500):
            await asyncio.gather(*(h.terminate() for h in handles[batch:batch + 500]))
    finally:
        if worker:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                print("the worker did not stop within 60 s of SIGTERM", file=sys.stderr)
        server.terminate()
        server.wait(timeout=30)


async def query_status(handle) -> dict:
    # While thousands of first tasks are queued a query can time out; it is
    # answered once the workflow's task has run.
    for _ in range(20):
        try:
            return await handle.query("get-status")
        except RPCError:
            await asyncio.sleep(1)
    return await handle.query("get-status")


async def throughput(client: Client, workflows: int) -> None:
    started = time.perf_counter()
    results = await asyncio.gather(
        *(client.execute_workflow("parallel", 10, id=f"tp-{i}", task_queue="bench") for i in range(workflows)))
    elapsed = time.perf_counter() - started
    assert all(len(r) == 10 for r in results)
    print(f"throughput: {workflows} workflows x 10 activities in {elapsed:.2f} s = "
          f"{workflows / elapsed:.1f} workflows/s ({10 * workflows / elapsed:.0f} activities/s)")


if __name__ == "__main__":
    asyncio.run(main())
