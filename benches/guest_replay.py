"""Python and TypeScript workflows: Caisson against the Temporal SDKs.

One workflow source per language (benches/guest_workflows/workflow.py and
workflow.ts), run on Caisson as written and on the SDK with its import
line swapped back, measured in one run on one machine:

  1. replay: N copies of a recorded `replay-bench` history (10 rounds of an
     activity and a 1 ms timer, an `approve` signal half-way: about 120
     events) through `caisson replay` (the CLI end to end, files in,
     verdicts out; `--jobs 1` and the default, one replay worker per CPU)
     against `temporalio.worker.Replayer` (sandboxed and unsandboxed) and
     the TypeScript SDK's `Worker.runReplayHistories`;
  2. instance start: the same for the history of a `wait-bench` that has
     just run its first workflow task (start, wait for a signal), so the
     time per history is mostly making a workflow instance and running it
     to its first wait; plus, live, the first workflow task's time in the
     worker (WorkflowTaskStarted to WorkflowTaskCompleted, from history);
  3. memory: K `wait-bench` workflows (Rust: `expense-approval` of
     test-workflows) held in one worker's cache, the worker's VmRSS growth
     per cached workflow (and RssAnon, RssShmem, Pss: VmRSS counts the
     memory image wasmtime shares between instances once per instance); for Caisson with Rust, Python and TypeScript
     workflows and for the Python and TypeScript SDK workers, one after
     the other against the same dev server.

Every replay must succeed (each batch is checked: all N verdicts ok, no
failure), or the bench stops.

Histories are recorded once per run, on a headless dev server started on
free ports, by each side's own worker running the same source: a history a
Caisson workflow records does not replay on the SDK, nor the reverse (the
histories' activity and timer ids differ: Caisson numbers activities,
timers and children with one counter, the SDKs keep a counter per kind).
The bench checks that both recordings have the same events in the same
order (event types) and reports the cross-replay verdict.

    ~/.cache/caisson/venv/bin/python benches/guest_replay.py [--copies 100] [--runs 5] [--cached 300]

Prerequisites: `cargo build -p caisson` and `cargo xtask plugins`
(test-workflows, test-activities); node and npm (the TypeScript SDK is
installed into --sdk-dir). The bench's own plugins are built with
`caisson new` / `caisson build` under --scratch. Set CAISSON_BIN to pick
the caisson binary (default: the newest of target/{release,debug}).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Iterator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCES = HERE / "guest_workflows"
CAISSON_HOME = Path(os.environ.get("CAISSON_HOME", Path.home() / ".cache/caisson"))
sys.path[:0] = [str(HERE), str(ROOT / "examples/python")]

import e2e_worker  # noqa: E402  (free ports, the dev server, RSS, the caisson binary)
import python_replay  # noqa: E402  (copies with run ids of their own, a checked Replayer batch)
import sdk_worker  # noqa: E402  (the `# was:` import swap)
from temporalio import activity  # noqa: E402
from temporalio.client import Client, WorkflowHistory  # noqa: E402
from temporalio.service import RPCError  # noqa: E402
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker  # noqa: E402

PY_PLUGIN = "py-replay-bench"
TS_PLUGIN = "ts-replay-bench"
SDK_MODULE = "guest_replay_sdk_workflows"  # workflow.py with its imports swapped back
ROUNDS = 10


def log(message: str) -> None:
    """Progress, as it goes."""
    print(message, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs `cmd`, failing loudly with its output when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd[:4]))} ... failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


# ------------------------------------------------------------------ setup


@dataclass
class Setup:
    """Everything built or installed before anything is measured."""

    caisson: str
    scratch: Path
    sdk_dir: Path
    py_plugin: Path = Path()
    ts_plugin: Path = Path()
    ts_bundle: Path = Path()
    rust_plugins: list[Path] = field(default_factory=list)
    activities: Path = Path()
    #: `caisson replay` of one history, per worker kind (seconds).
    fixed_s: dict[str, float] = field(default_factory=dict)


def caisson_plugin(setup: Setup, lang: str, name: str, sources: dict[str, Path], drop: list[str]) -> Path:
    """A plugin project made by `caisson new workflow LANG NAME` under the
    scratch folder, its workflow file replaced by the bench's (`sources`:
    file in the project -> bench source; `drop`: template files removed),
    built with `caisson build` (which skips an up-to-date build)."""
    project = setup.scratch / "plugins" / name
    if not project.exists():
        project.parent.mkdir(parents=True, exist_ok=True)
        run([setup.caisson, "new", "workflow", lang, name], cwd=project.parent)
        for rel in drop:
            (project / rel).unlink(missing_ok=True)
    for rel, source in sources.items():
        target = project / rel
        if not target.exists() or target.read_bytes() != source.read_bytes():
            shutil.copyfile(source, target)
    log(f"  caisson build {project}")
    run([setup.caisson, "build", str(project)])
    wasm = project / "build" / f"{name}.wasm"
    if not wasm.is_file():
        raise SystemExit(f"caisson build made no {wasm}")
    return wasm


def install_ts_sdk(sdk_dir: Path) -> None:
    """`npm install` of the TypeScript SDK into `sdk_dir` (outside the
    repository), unless it is there. protobufjs 8 is named so that npm
    hoists it: otherwise @temporalio/common and @temporalio/proto get a
    copy each (grpc's proto-loader takes the top-level slot with 7.x) and
    `historyFromJSON` fails with "type must be a Type"."""
    if (sdk_dir / "node_modules/@temporalio/worker/package.json").is_file():
        return
    sdk_dir.mkdir(parents=True, exist_ok=True)
    if not (sdk_dir / "package.json").exists():
        (sdk_dir / "package.json").write_text(json.dumps({"name": "caisson-bench-ts", "private": True}) + "\n")
    log(f"  npm install @temporalio/worker @temporalio/workflow into {sdk_dir}")
    run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
         "@temporalio/worker@1.24.0", "@temporalio/workflow@1.24.0", "protobufjs@8.8.1"], cwd=sdk_dir)


def node(setup: Setup, *args: str) -> list[str]:
    """The command running benches/guest_workflows/ts_sdk.mjs."""
    return ["node", str(SOURCES / "ts_sdk.mjs"), *args]


def node_env(setup: Setup) -> dict[str, str]:
    return {**os.environ, "TS_SDK_DIR": str(setup.sdk_dir)}


def prepare(args: argparse.Namespace) -> Setup:
    """Builds the bench's Caisson plugins, installs and bundles the
    TypeScript SDK side, writes the Python SDK side's module."""
    setup = Setup(caisson=e2e_worker.caisson_bin(), scratch=args.scratch, sdk_dir=args.sdk_dir)
    setup.scratch.mkdir(parents=True, exist_ok=True)
    plugins = ROOT / "build/plugins"
    setup.rust_plugins = [plugins / "test-workflows.wasm", plugins / "test-activities.wasm"]
    setup.activities = plugins / "test-activities.wasm"
    for p in setup.rust_plugins:
        if not p.is_file():
            raise SystemExit(f"{p} is missing: `cargo xtask plugins test-workflows test-activities`")
    log(f"caisson: {setup.caisson}")
    setup.py_plugin = caisson_plugin(setup, "python", PY_PLUGIN, {"workflows.py": SOURCES / "workflow.py"}, ["test_workflows.py"])
    setup.ts_plugin = caisson_plugin(setup, "typescript", TS_PLUGIN, {"index.ts": SOURCES / "workflow.ts"},
                                     ["shout.ts", "shout.test.ts"])

    # The SDK sides: the same sources, the import swapped back.
    sdk = setup.scratch / "sdk"
    sdk.mkdir(exist_ok=True)
    (sdk / f"{SDK_MODULE}.py").write_text(sdk_worker.original((SOURCES / "workflow.py").read_text()))
    install_ts_sdk(setup.sdk_dir)
    ts_source = setup.sdk_dir / "bench" / "workflow.ts"  # under the SDK's node_modules, for the bundler
    ts_source.parent.mkdir(exist_ok=True)
    ts_source.write_text((SOURCES / "workflow.ts").read_text().replace("'caisson-workflow'", "'@temporalio/workflow'"))
    setup.ts_bundle = setup.scratch / "ts-sdk-bundle.js"
    log("  bundling workflow.ts for the TypeScript SDK")
    run(node(setup, "bundle", str(ts_source), str(setup.ts_bundle)), env=node_env(setup))
    return setup


def sdk_workflows(setup: Setup) -> list[type]:
    """The Python SDK's workflow classes (workflow.py, imports swapped)."""
    sys.path.insert(0, str(setup.scratch / "sdk"))
    module = __import__(SDK_MODULE)
    return [module.ReplayBench, module.WaitBench]


@activity.defn(name="echo")
async def echo(value: str) -> str:
    """The Python SDK worker's `echo` (Caisson's is test-activities' echo)."""
    return value


# ---------------------------------------------------------------- workers


@dataclass(frozen=True)
class Side:
    """A worker kind: how to start it, which workflow types it serves."""

    name: str
    replay_type: str | None  # the replay-bench type (None: Rust, memory only)
    wait_type: str
    wait_input: object = None


SIDES = {
    "caisson-rust": Side("Caisson, Rust workflow", None, "expense-approval", {"id": "e", "amount": 1.0, "timeout_ms": 3_600_000}),
    "caisson-python": Side("Caisson, Python workflow", "replay-bench", "wait-bench"),
    "caisson-ts": Side("Caisson, TypeScript workflow", "replayBench", "waitBench"),
    "python-sdk": Side("Python SDK worker (sandboxed)", "replay-bench", "wait-bench"),
    "ts-sdk": Side("TypeScript SDK worker", "replayBench", "waitBench"),
}


def worker_command(setup: Setup, kind: str, address: str, task_queue: str, max_cached: int) -> list[str]:
    """The command line of one worker kind."""
    if kind.startswith("caisson-"):
        plugins = {"caisson-rust": setup.rust_plugins, "caisson-python": [setup.py_plugin, setup.activities],
                   "caisson-ts": [setup.ts_plugin, setup.activities]}[kind]
        return [setup.caisson, "worker", "--address", address, "--task-queue", task_queue,
                "--max-cached-workflows", str(max_cached), *map(str, plugins)]
    if kind == "python-sdk":
        return [sys.executable, __file__, "--serve-python-sdk", address, task_queue, str(max_cached), "--scratch", str(setup.scratch)]
    return node(setup, "worker", str(setup.ts_bundle), address, task_queue, str(max_cached))


@contextlib.contextmanager
def worker(setup: Setup, kind: str, address: str, task_queue: str, max_cached: int) -> Iterator[subprocess.Popen]:
    """A worker process, once it polls; stopped (SIGTERM, then SIGKILL) at the end."""
    logfile = setup.scratch / f"worker-{kind}.log"
    out = open(logfile, "w")
    proc = subprocess.Popen(worker_command(setup, kind, address, task_queue, max_cached), stdout=out, stderr=subprocess.STDOUT,
                            env={**node_env(setup), "CAISSON_LOG": "warn,caisson=info"})
    try:
        ready = "worker polling" if kind.startswith("caisson-") else "ready"
        deadline = time.monotonic() + 120
        while ready not in logfile.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the {kind} worker did not start: see {logfile}")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc, timeout=30)
        out.close()


def stop(proc: subprocess.Popen, timeout: float) -> bool:
    """SIGTERM, then SIGKILL after `timeout` s; True if it had to be killed."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


def serve_python_sdk(address: str, task_queue: str, max_cached: int, scratch: Path) -> None:
    """`--serve-python-sdk`: a plain Python SDK worker (default, sandboxed
    runner) for the bench's workflows and `echo`, in a process of its own."""

    async def serve() -> None:
        setup = Setup(caisson="", scratch=scratch, sdk_dir=Path())
        client = await Client.connect(address)
        async with Worker(client, task_queue=task_queue, workflows=sdk_workflows(setup), activities=[echo],
                          max_cached_workflows=max_cached):
            print("ready", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


# -------------------------------------------------------------- recording


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    """Polls `check` until it holds (RPC errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(RPCError):
            if await check():
                return
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def show_history(address: str, workflow_id: str, out: Path) -> dict:
    """`temporal workflow show -o json`, as users export a history."""
    shown = run([str(CAISSON_HOME / "venv/bin/temporal"), "workflow", "show", "--address", address,
                 "--workflow-id", workflow_id, "--output", "json"])
    out.write_text(shown.stdout)
    return json.loads(shown.stdout)


async def record_replay_bench(client: Client, address: str, side: Side, task_queue: str, out: Path) -> dict:
    """Runs `replay-bench(ROUNDS)` to its end (the `approve` signal sent
    once the workflow waits for it) and exports its history to `out`."""
    wid = f"record-{task_queue}"
    handle = await client.start_workflow(side.replay_type, ROUNDS, id=wid, task_queue=task_queue)
    await until(lambda: _state_is(handle, "waiting"), f"{wid} to wait for its signal")
    await handle.signal("approve", "bench")
    result = await handle.result()
    if result.get("echoed") != ROUNDS or result.get("approver") != "bench":
        raise SystemExit(f"{wid}: unexpected result {result}")
    return show_history(address, wid, out)


async def _state_is(handle, state: str) -> bool:
    return (await handle.query("get-status"))["state"] == state


async def start_waiting(client: Client, side: Side, task_queue: str, wid: str):
    """Starts a waiting workflow; returns its handle once it answered a
    query (its first workflow task ran)."""
    args = [] if side.wait_input is None else [side.wait_input]
    handle = await client.start_workflow(side.wait_type, args=args, id=wid, task_queue=task_queue)
    await until(lambda: _state_is(handle, "pending"), f"{wid} to run its first task", timeout=600)
    return handle


def first_task_ms(history: WorkflowHistory) -> float:
    """WorkflowTaskStarted to WorkflowTaskCompleted of the first task (ms)."""
    times = {}
    for e in history.events:
        kind = e.WhichOneof("attributes")
        if kind in ("workflow_task_started_event_attributes", "workflow_task_completed_event_attributes") and kind not in times:
            times[kind] = e.event_time.ToNanoseconds()
    return (times["workflow_task_completed_event_attributes"] - times["workflow_task_started_event_attributes"]) / 1e6


def event_types(history: dict) -> list[str]:
    return [e["eventType"] for e in history["events"]]


# -------------------------------------------------------------- replaying


def history_copies(history: Path, n: int, folder: Path) -> Path:
    """`n` copies of a recorded history in `folder`, each with a run id of
    its own (for `caisson replay`, which takes a folder)."""
    if folder.is_dir() and len(list(folder.glob("*.json"))) == n:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    recorded = json.loads(history.read_text())
    for i in range(n):
        recorded["events"][0]["workflowExecutionStartedEventAttributes"]["originalExecutionRunId"] = f"bench-{i}"
        (folder / f"replay-{i:04}.json").write_text(json.dumps(recorded))
    return folder


def caisson_replay(setup: Setup, plugin: Path, folder: Path, n: int, jobs: int | None) -> float:
    """`caisson replay -p PLUGIN [--jobs J] FOLDER`, end to end (process
    start, plugin load, reading the files, replay, verdicts): the wall
    time. Fails unless all `n` verdicts are ok."""
    cmd = [setup.caisson, "replay", "-p", str(plugin), *(["--jobs", str(jobs)] if jobs else []), str(folder)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    ok = sum(line.startswith("ok ") for line in done.stdout.splitlines())
    if done.returncode != 0 or ok != n or f"{n} histories: {n} ok, 0 failed" not in done.stdout:
        bad = [line for line in done.stdout.splitlines() if not line.startswith("ok ")][:5]
        raise SystemExit(f"caisson replay: {ok} of {n} ok (exit {done.returncode}): {bad} {done.stderr[-2000:]}")
    return elapsed


def ts_sdk_replay(setup: Setup, history: Path, n: int) -> float:
    """`Worker.runReplayHistories` over `n` copies, in a node process of
    its own: the time from the call to the last result. Fails unless all
    `n` replayed without an error."""
    done = run(node(setup, "replay", str(setup.ts_bundle), str(history), str(n)), env=node_env(setup))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["replayed"] != n or result["failed"]:
        raise SystemExit(f"TypeScript SDK replay: {result}")
    return result["seconds"]


def python_sdk_replay(replayer: Replayer, history: Path, n: int) -> float:
    """`Replayer.workflow_replay_iterator` over `n` copies (python_replay.replay
    fails unless every one replayed cleanly)."""
    recorded = WorkflowHistory.from_json("replay", json.loads(history.read_text()))
    return asyncio.run(python_replay.replay(replayer, python_replay.copies(recorded, n)))


def alternate(contenders: dict[str, Callable[[], float]], runs: int, label: str) -> dict[str, list[float]]:
    """Runs every contender once per round, `runs` rounds, the order
    rotated each round so that drift in the machine's load hits all; one
    warm-up call each first (compile caches, sandbox imports)."""
    for name, measure in contenders.items():
        measure()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            times[name].append(contenders[name]())
        log(f"  {label} round {r + 1}/{runs}: " + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in names) + f"  (load {loadavg()})")
    return times


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(label: str, times: dict[str, list[float]], n: int, events: dict[str, int], baseline: str,
           fixed_s: float | None = None) -> list[dict]:
    """Prints histories/s (median batch) per contender and the median of
    the per-round ratios of its time to `baseline`'s (2.0x: the baseline
    replays twice as many histories per second); for the Caisson rows also
    the rate net of `fixed_s` (a one-history `caisson replay` run)."""
    rows = []
    log(f"\n{label}: {n} histories per batch, median of {len(times[baseline])} batches")
    for name, ts in times.items():
        t = statistics.median(ts)
        ratios = [x / b for b, x in zip(times[baseline], ts)]  # > 1: the baseline is faster
        row = {"what": label, "contender": name, "events": events[name], "n": n, "median_s": t, "per_s": n / t,
               "events_per_s": n * events[name] / t, "vs_baseline": statistics.median(ratios),
               "ratio_range": (min(ratios), max(ratios)), "runs": ts}
        net = ""
        if name.startswith("Caisson") and fixed_s is not None and t > fixed_s:
            row["net_per_s"] = (n - 1) / (t - fixed_s)
            net = f"; net of the {fixed_s * 1000:.0f} ms fixed cost {row['net_per_s']:.1f} histories/s"
        rows.append(row)
        log(f"  {name:34} {t:7.3f} s = {n / t:8.1f} histories/s ({n * events[name] / t:9.0f} events/s); "
            f"this time / {baseline}'s: {row['vs_baseline']:.2f}x ({row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f}){net}")
    return rows


# ------------------------------------------------------------------ parts


async def record_all(setup: Setup, address: str) -> dict[str, dict[str, Path]]:
    """Per side, with its own worker: a finished replay-bench history and
    the history of a wait-bench after its first task. Checks that each
    language's two recordings have the same event types in the same order."""
    client = await Client.connect(address)
    recorded: dict[str, dict[str, Path]] = {}
    folder = setup.scratch / "histories"
    folder.mkdir(exist_ok=True)
    for kind, side in SIDES.items():
        log(f"  recording on the {side.name}")
        with worker(setup, kind, address, f"rec-{kind}", 100):
            paths = {}
            if side.replay_type:
                paths["replay"] = folder / f"{kind}-replay-bench.json"
                events = len((await record_replay_bench(client, address, side, f"rec-{kind}", paths["replay"]))["events"])
                log(f"    replay-bench: {events} events")
            handle = await start_waiting(client, side, f"rec-{kind}", f"wait-{kind}")
            paths["start"] = folder / f"{kind}-wait-bench.json"
            events = len(show_history(address, handle.id, paths["start"])["events"])
            log(f"    {side.wait_type} after its first task: {events} events")
            await handle.terminate()
        recorded[kind] = paths
    for caisson, sdk in (("caisson-python", "python-sdk"), ("caisson-ts", "ts-sdk")):
        for what, paths in (("replay", "replay"), ("start", "start")):
            a, b = (event_types(json.loads(recorded[k][paths].read_text())) for k in (caisson, sdk))
            if a != b:
                raise SystemExit(f"{caisson} and {sdk} recorded differently shaped {what} histories:\n{a}\n{b}")
    log("  each language's Caisson and SDK recordings have the same event types, in the same order")
    return recorded


def cross_replay(setup: Setup, recorded: dict[str, dict[str, Path]]) -> list[str]:
    """The verdict of replaying each SDK recording on Caisson and each
    Caisson recording on the SDK (not timed)."""
    notes = []
    for plugin, sdk, name in ((setup.py_plugin, "python-sdk", "caisson-python"), (setup.ts_plugin, "ts-sdk", "caisson-ts")):
        done = subprocess.run([setup.caisson, "replay", "-p", str(plugin), str(recorded[sdk]["replay"])], capture_output=True, text=True)
        notes.append(f"{sdk} recording on {name}: {done.stdout.strip().splitlines()[0][:300]}")
    replayer = Replayer(workflows=sdk_workflows(setup), workflow_runner=UnsandboxedWorkflowRunner())
    try:
        python_sdk_replay(replayer, recorded["caisson-python"]["replay"], 1)
        notes.append("caisson-python recording on the Python SDK: ok")
    except SystemExit as e:
        notes.append(f"caisson-python recording on the Python SDK: {str(e)[:300]}")
    done = subprocess.run(node(setup, "replay", str(setup.ts_bundle), str(recorded["caisson-ts"]["replay"]), "1"),
                          capture_output=True, text=True, env=node_env(setup))
    last = (done.stdout.strip().splitlines() or [""])[-1]
    notes.append(f"caisson-ts recording on the TypeScript SDK: {last[:300]}")
    for note in notes:
        log(f"  {note}")
    return notes


def replay_part(setup: Setup, recorded: dict[str, dict[str, Path]], what: str, n: int, runs: int) -> list[dict]:
    """Alternating batches of `n` histories (`what`: "replay" or "start")
    per language: Caisson -j1, Caisson default, the SDK."""
    rows = []
    workflows = sdk_workflows(setup)
    replayers = {"sandboxed": Replayer(workflows=workflows),
                 "unsandboxed": Replayer(workflows=workflows, workflow_runner=UnsandboxedWorkflowRunner())}
    langs = {
        "Python": ("caisson-python", setup.py_plugin, {
            "Python SDK sandboxed": lambda h: python_sdk_replay(replayers["sandboxed"], h, n),
            "Python SDK unsandboxed": lambda h: python_sdk_replay(replayers["unsandboxed"], h, n)}, "python-sdk"),
        "TypeScript": ("caisson-ts", setup.ts_plugin, {"TypeScript SDK": lambda h: ts_sdk_replay(setup, h, n)}, "ts-sdk"),
    }
    if what == "start":
        langs["Rust"] = ("caisson-rust", setup.rust_plugins[0], {}, None)
    for lang, (kind, plugin, sdks, sdk_kind) in langs.items():
        history = recorded[kind][what]
        folder = history_copies(history, n, setup.scratch / "copies" / f"{kind}-{what}-{n}")
        contenders: dict[str, Callable[[], float]] = {
            f"Caisson {lang} --jobs 1": lambda: caisson_replay(setup, plugin, folder, n, 1),
            f"Caisson {lang} (default --jobs)": lambda: caisson_replay(setup, plugin, folder, n, None),
        }
        events = {name: len(json.loads(history.read_text())["events"]) for name in contenders}
        for name, measure in sdks.items():
            sdk_history = recorded[sdk_kind][what]
            contenders[name] = (lambda m=measure, h=sdk_history: m(h))
            events[name] = len(json.loads(sdk_history.read_text())["events"])
        label = f"{lang} {'replay-bench' if what == 'replay' else 'first task'}"
        log(f"\n{label}: {n} copies, {runs} alternating rounds")
        times = alternate(contenders, runs, label)
        baseline = next(name for name in contenders if name.endswith("--jobs 1"))
        rows += report(label, times, n, events, baseline, setup.fixed_s.get(kind))
    return rows


def caisson_fixed_cost(setup: Setup, recorded: dict[str, dict[str, Path]], runs: int) -> list[dict]:
    """`caisson replay` of one history (process start, engine and plugin
    load from the compile cache, one replay): the fixed cost in every batch."""
    rows = []
    for kind, plugin in (("caisson-python", setup.py_plugin), ("caisson-ts", setup.ts_plugin), ("caisson-rust", setup.rust_plugins[0])):
        what = "start"  # a 5-event history: the run is nearly all fixed cost
        folder = history_copies(recorded[kind][what], 1, setup.scratch / "copies" / f"{kind}-{what}-1")
        caisson_replay(setup, plugin, folder, 1, 1)
        t = statistics.median(caisson_replay(setup, plugin, folder, 1, 1) for _ in range(runs))
        rows.append({"what": "caisson replay of 1 history", "contender": kind, "median_s": t})
        log(f"  caisson replay, 1 history, {kind}: {t * 1000:.0f} ms end to end")
    return rows


async def memory_part(setup: Setup, address: str, cached: int, sequential: int) -> list[dict]:
    """Per worker kind, one after the other: `sequential` waiting workflows
    one at a time (first task time from their histories), then `cached`
    at once (time to all first tasks; RSS growth per cached workflow)."""
    client = await Client.connect(address)
    rows = []
    for kind, side in SIDES.items():
        task_queue = f"mem-{kind}"
        log(f"\n{side.name}: {sequential} sequential starts, then {cached} cached")
        with worker(setup, kind, address, task_queue, cached + sequential + 100) as proc:
            handles = [await start_waiting(client, side, task_queue, f"{task_queue}-seq-{i}") for i in range(sequential)]
            first = [first_task_ms(await h.fetch_history()) for h in handles]
            await asyncio.gather(*(h.terminate() for h in handles))
            await asyncio.sleep(2)
            before = memory_kib(proc.pid)
            started = time.perf_counter()
            handles = []
            for batch in range(0, cached, 100):
                handles += await asyncio.gather(*(start_waiting(client, side, task_queue, f"{task_queue}-{i}")
                                                  for i in range(batch, min(cached, batch + 100))))
            all_first = time.perf_counter() - started
            await asyncio.sleep(3)
            after = memory_kib(proc.pid)
            per = {k: (after[k] - before[k]) / cached for k in before}
            row = {"what": "memory", "contender": kind, "first_task_ms": statistics.median(first),
                   "first_task_range_ms": (min(first), max(first)), "cached": cached, "all_first_tasks_s": all_first,
                   "rss_before_mib": before["VmRSS"] / 1024, "rss_after_mib": after["VmRSS"] / 1024,
                   "kib_per_workflow": per["VmRSS"], "kib_per_workflow_by_kind": per, "before_kib": before, "after_kib": after,
                   "load": loadavg()}
            rows.append(row)
            log(f"  first task in the worker: median {row['first_task_ms']:.1f} ms ({min(first):.1f}-{max(first):.1f}); "
                f"{cached} started and through their first task in {all_first:.1f} s ({cached / all_first:.0f}/s)")
            log(f"  VmRSS {before['VmRSS'] / 1024:.1f} -> {after['VmRSS'] / 1024:.1f} MiB = {per['VmRSS']:.1f} KiB per cached workflow "
                f"(RssAnon {per['RssAnon']:.1f}, RssShmem {per['RssShmem']:.1f}, Pss {per['Pss']:.1f} KiB) (load {row['load']})")
            for batch in range(0, len(handles), 200):
                await asyncio.gather(*(h.terminate() for h in handles[batch:batch + 200]))
    return rows


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (e2e_worker.rss_kib), with RssAnon and RssShmem from
    /proc/PID/status and Pss from smaps_rollup. VmRSS counts a shared page
    once per mapping: wasmtime maps a component's memory image (a memfd)
    into every instance, so for Caisson VmRSS overstates what an instance
    costs; RssAnon (and Pss) is the private part."""
    out = {"VmRSS": e2e_worker.rss_kib(pid)}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssShmem:")):
            out[line.split(":")[0]] = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["Pss"] = int(line.split()[1])
    return out


def versions(setup: Setup) -> dict[str, str]:
    """What ran: binaries, SDKs, host commit."""
    from importlib.metadata import version

    def out(cmd: list[str], **kw) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, **kw).stdout.strip()

    ts = json.loads((setup.sdk_dir / "node_modules/@temporalio/worker/package.json").read_text())["version"]
    return {
        "host commit": out(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) +
        (" (work tree modified)" if out(["git", "-C", str(ROOT), "status", "--porcelain", "host", "plugins"]) else ""),
        "caisson binary": setup.caisson,
        "python": sys.version.split()[0], "temporalio (Python SDK)": version("temporalio"),
        "@temporalio/worker (TypeScript SDK)": ts, "node": out(["node", "--version"]),
        "temporal CLI": out([str(CAISSON_HOME / "venv/bin/temporal"), "--version"]),
        "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "?") + f", {os.cpu_count()} CPUs",
    }


def bench(args: argparse.Namespace) -> None:
    """Setup, one dev server, the recordings, then the parts asked for
    (the replays outside any event loop: each Python SDK batch runs one)."""
    setup = prepare(args)
    info = versions(setup)
    for k, v in info.items():
        log(f"{k}: {v}")
    results: dict = {"versions": info, "args": {k: str(v) for k, v in vars(args).items()}, "rows": []}
    server, port = e2e_worker.start_dev_server()
    address = f"127.0.0.1:{port}"
    try:
        log(f"\nrecording on a dev server at {address} (load {loadavg()})")
        recorded = asyncio.run(record_all(setup, address))
        results["cross_replay"] = cross_replay(setup, recorded)
        if args.parts & {"replay", "start"}:
            log("\nthe fixed cost of a `caisson replay` run")
            fixed = caisson_fixed_cost(setup, recorded, args.runs)
            results["rows"] += fixed
            setup.fixed_s = {row["contender"]: row["median_s"] for row in fixed}
        if "replay" in args.parts:
            results["rows"] += replay_part(setup, recorded, "replay", args.copies, args.runs)
        if "start" in args.parts:
            results["rows"] += replay_part(setup, recorded, "start", args.copies * 2, args.runs)
        if "memory" in args.parts:
            results["rows"] += asyncio.run(memory_part(setup, address, args.cached, args.sequential))
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = setup.scratch / "results.json"
    out.write_text(json.dumps(results, indent=1))
    log(f"\nall figures in {out}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-python-sdk":
        address, task_queue, max_cached = sys.argv[2:5]
        scratch = Path(sys.argv[sys.argv.index("--scratch") + 1])
        serve_python_sdk(address, task_queue, int(max_cached), scratch)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=100, help="histories per replay batch (the first-task histories: twice as many)")
    ap.add_argument("--runs", type=int, default=5, help="alternating batches per contender (the median is reported)")
    ap.add_argument("--cached", type=int, default=300, help="waiting workflows held per worker for the memory figure")
    ap.add_argument("--sequential", type=int, default=20, help="waiting workflows started one at a time per worker (first task time)")
    ap.add_argument("--parts", default="replay,start,memory", help="which parts to run (comma-separated)")
    ap.add_argument("--scratch", type=Path, default=CAISSON_HOME / "guest-replay", help="plugins, histories, logs, results.json")
    ap.add_argument("--sdk-dir", type=Path, default=CAISSON_HOME / "bench-ts", help="where the TypeScript SDK is npm-installed")
    args = ap.parse_args()
    args.parts = set(args.parts.split(","))
    bench(args)


if __name__ == "__main__":
    main()
