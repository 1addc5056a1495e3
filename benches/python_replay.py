"""Replay throughput of the Python SDK, for comparison with Caisson.

Replays the recorded fixture histories (host/tests/fixtures/histories:
small, medium, large, from real runs of the guest `replay-mix` workflow of
plugins/rust/test-workflows) with `temporalio.worker.Replayer`, sandboxed
(the default runner) and unsandboxed (`UnsandboxedWorkflowRunner`), N copies
of each history per batch, each copy with a run id of its own (core's
replay worker tells histories apart by run id). Prints histories/s and
events/s per size and mode; fails if any history does not replay cleanly.

    ~/.cache/caisson/venv/bin/python benches/python_replay.py [--runs 3] [--scale 1.0]

The workflow below is a port of the guest `replay-mix` (and `child-upper`,
registered although only the parent is replayed), with the options the
guest sends through Caisson (see benches/src/native.rs for the Rust SDK
version and the details): activity `echo` with start-to-close 60 s and no
retry policy, 1 ms timers, a 30 s timer for the signal wait, child
`child-upper` with id `{workflow id}-child-{i}`, parent close policy
TERMINATE, cancellation WAIT_CANCELLATION_COMPLETED.

Timer ids: the guest numbers all its handles (activities, timers, signals,
children) with one counter and core checks a timer's id when it fires,
while the Python SDK numbers timers on their own. Before each timer the
workflow therefore starts and at once cancels timers until the SDK's timer
number reaches the guest's; core drops a timer cancelled in the activation
that started it (no command, no event), so the recorded histories replay
unchanged. (Renumbering the histories' timers to the SDK's numbering is
not possible in general: a timer started and cancelled in one activation,
the signal wait when the signal is already there, leaves no event but
takes an SDK number.)
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "host", "tests", "fixtures", "histories")


class _ReplayMix:
    """The workflow body; `ReplayMix` registers it under the guest's name."""

    def __init__(self) -> None:
        self.ticks = 0
        # The guest's last handle number and the SDK's last timer number.
        self._handle = 0
        self._sdk_timer = 0

    def _next(self) -> int:
        self._handle += 1
        return self._handle

    def _timer(self, seconds: float) -> tuple[asyncio.Future[None], asyncio.TimerHandle]:
        """Starts a timer under the guest's next handle number."""
        guest_id = self._next()
        loop = asyncio.get_running_loop()
        while self._sdk_timer + 1 < guest_id:
            self._sdk_timer += 1
            loop.call_later(0.001, lambda: None).cancel()
        self._sdk_timer += 1
        fired: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, lambda: fired.done() or fired.set_result(None))
        return fired, handle

    async def _run(self, rounds: int) -> int:
        me = workflow.info().workflow_id
        signals = 0
        for i in range(rounds):
            echo = workflow.start_activity(
                "echo",
                f"round-{i}",
                activity_id=str(self._next()),
                start_to_close_timeout=timedelta(seconds=60),
            )
            tick, _ = self._timer(0.001)
            await asyncio.gather(echo, tick, return_exceptions=True)
            if i % 10 == 0:
                self._next()
                try:
                    await workflow.get_external_workflow_handle(me).signal("tick", i)
                except Exception:
                    pass
                # Like the guest's wait_condition: the timeout timer first,
                # then the condition.
                wait, wait_handle = self._timer(30)
                arrived = asyncio.ensure_future(workflow.wait_condition(lambda: self.ticks > 0))
                done, _ = await workflow.wait([arrived, wait], return_when=asyncio.FIRST_COMPLETED)
                if arrived in done:
                    wait_handle.cancel()
                    self.ticks -= 1
                else:
                    arrived.cancel()
                signals += 1
            if i % 25 == 0:
                self._next()
                try:
                    await workflow.execute_child_workflow(
                        "child-upper",
                        "x",
                        id=f"{me}-child-{i}",
                        parent_close_policy=workflow.ParentClosePolicy.TERMINATE,
                        cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                    )
                except Exception:
                    pass
        return signals


@workflow.defn(name="replay-mix")
class ReplayMix(_ReplayMix):
    @workflow.run
    async def run(self, rounds: int) -> int:
        return await self._run(rounds)

    @workflow.signal(name="tick")
    def tick(self, round: int) -> None:
        self.ticks += 1


@workflow.defn(name="child-upper")
class ChildUpper:
    @workflow.run
    async def run(self, item: str) -> str:
        await asyncio.sleep(0.001)
        return item.upper()


def copies(history: WorkflowHistory, n: int) -> list[WorkflowHistory]:
    """`n` copies, each with a run id of its own."""
    out = []
    for i in range(n):
        first = type(history.events[0])()
        first.CopyFrom(history.events[0])
        first.workflow_execution_started_event_attributes.original_execution_run_id += f"-replay-{i}"
        out.append(WorkflowHistory(history.workflow_id, [first, *history.events[1:]]))
    return out


async def replay(replayer: Replayer, histories: list[WorkflowHistory]) -> float:
    """Replays the batch; fails unless every history replayed cleanly. The
    time it took."""

    async def each():
        for h in histories:
            yield h

    started = time.perf_counter()
    replayed = 0
    failures = []
    async with replayer.workflow_replay_iterator(each()) as results:
        async for result in results:
            replayed += 1
            if result.replay_failure is not None:
                failures.append(result.replay_failure)
    elapsed = time.perf_counter() - started
    if failures or replayed != len(histories):
        raise SystemExit(f"{len(histories)} histories, {replayed} replayed, failures: {failures[:3]}")
    return elapsed


async def replay_files(replayer: Replayer, mode: str, folder: str, runs: int) -> None:
    """Replays every `FOLDER/*/NAME.json` (workflow id NAME), reading and
    parsing each file inside the timed region; prints the median of `runs`."""
    paths = sorted(glob.glob(os.path.join(folder, "*", "*.json")))
    if not paths:
        raise SystemExit(f"no histories in {folder}/*/*.json")

    def read_all() -> list[WorkflowHistory]:
        histories = []
        for i, path in enumerate(paths):
            with open(path) as f:
                history = WorkflowHistory.from_json(os.path.splitext(os.path.basename(path))[0], json.load(f))
            # Core tells histories apart by run id, as `caisson replay` does.
            history.events[0].workflow_execution_started_event_attributes.original_execution_run_id += f"-replay-{i}"
            histories.append(history)
        return histories

    await replay(replayer, read_all()[:2])  # warm-up (sandbox imports)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        histories = read_all()
        await replay(replayer, histories)
        times.append(time.perf_counter() - started)
    t = statistics.median(times)
    print(
        f"python {mode}, {len(paths)} files read, parsed and replayed: {t:.2f} s (median of {runs}) = "
        f"{len(paths) / t:.1f} histories/s",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="batches per figure (the median is printed)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the batch sizes")
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--modes", default="sandboxed,unsandboxed")
    parser.add_argument(
        "--files",
        help="a folder of exported JSON histories (DIR/*/medium.json): time reading and parsing them "
        "with the replay, as `caisson replay` does, instead of the fixtures",
    )
    args = parser.parse_args()

    replayers = {
        "sandboxed": Replayer(workflows=[ReplayMix, ChildUpper]),
        "unsandboxed": Replayer(workflows=[ReplayMix, ChildUpper], workflow_runner=UnsandboxedWorkflowRunner()),
    }
    batch = {"small": 200, "medium": 100, "large": 10}
    print(f"Python {sys.version.split()[0]}, temporalio {_version()}, median of {args.runs} runs", flush=True)
    if args.files:
        for mode in args.modes.split(","):
            await replay_files(replayers[mode], mode, args.files, args.runs)
        return
    for size in args.sizes.split(","):
        with open(os.path.join(FIXTURES, f"{size}.json")) as f:
            recorded = json.load(f)
        history = WorkflowHistory.from_json(size, recorded)
        events = len(history.events)
        n = max(1, int(batch[size] * args.scale))
        for mode in args.modes.split(","):
            replayer = replayers[mode]
            await replay(replayer, copies(history, 2))  # warm-up (sandbox imports)
            times = [await replay(replayer, copies(history, n)) for _ in range(args.runs)]
            t = statistics.median(times)
            print(
                f"python {mode} {size}: {n} histories of {events} events in {t:.3f} s = "
                f"{n / t:.1f} histories/s, {n * events / t:.0f} events/s",
                flush=True,
            )


def _version() -> str:
    from importlib.metadata import version

    return version("temporalio")


if __name__ == "__main__":
    asyncio.run(main())
