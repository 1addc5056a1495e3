#!/usr/bin/env python3
"""Runs a port's workflow.py and activities.py on a plain Temporal Python
SDK worker, with their import lines changed back.

    python3 examples/python/sdk_worker.py examples/python/research [--address localhost:7233] [--task-queue sdk]

Every line of the two files that ends in `# was: ORIGINAL` is replaced by
ORIGINAL (`from caisson import workflow  # was: from temporalio import
workflow` becomes `from temporalio import workflow`); nothing else
changes. The rewritten files go to a temporary folder, and a worker
serves every `@workflow.defn` class and `@activity.defn` function they
define, sync activities on a thread pool, workflows in the SDK's sandbox.
`--print-diff` prints the lines that differ and exits. Prints `ready`
once the worker runs; the environment (LLM_URL, STATE_DIR, ...) is the
activities' configuration, as on Caisson.
"""
import argparse
import asyncio
import concurrent.futures
import importlib
import inspect
import os
import re
import sys
import tempfile
from pathlib import Path

#: `code  # was: original` (the original is everything after the marker).
WAS = re.compile(r"^(?P<code>.*?)\s*# was: (?P<original>.*)$")
FILES = ("workflow.py", "activities.py")


def original(source: str) -> str:
    """`source` with every `# was:` line replaced by its original."""
    return "".join(
        (m.group("original") + "\n") if (m := WAS.match(line.rstrip("\n"))) else line
        for line in source.splitlines(keepends=True)
    )


def diff(folder: Path) -> str:
    """The lines that differ, as a unified diff (Temporal SDK → Caisson)."""
    import difflib

    def code(line: str) -> str:
        m = WAS.match(line.rstrip("\n"))
        return m.group("code") + "\n" if m else line

    out = []
    for name in FILES:
        ported = (folder / name).read_text()
        out.extend(difflib.unified_diff(
            original(ported).splitlines(keepends=True), [code(line) for line in ported.splitlines(keepends=True)],
            f"temporal/{name}", f"caisson/{name}", n=0,
        ))
    return "".join(out)


async def serve(folder: Path, address: str, namespace: str, task_queue: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    staging = Path(tempfile.mkdtemp(prefix="temporal-sdk-port-"))
    for name in FILES:
        (staging / name).write_text(original((folder / name).read_text()))
    sys.path.insert(0, str(staging))
    modules = [importlib.import_module(Path(name).stem) for name in FILES]
    members = [m for module in modules for _, m in inspect.getmembers(module)]
    workflows = list({id(m): m for m in members if inspect.isclass(m) and hasattr(m, "__temporal_workflow_definition")}.values())
    activities = list({id(m): m for m in members if callable(m) and hasattr(m, "__temporal_activity_definition")}.values())

    client = await Client.connect(address, namespace=namespace)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as executor:
        worker = Worker(client, task_queue=task_queue, workflows=workflows, activities=activities, activity_executor=executor)
        async with worker:
            print("ready", flush=True)
            await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a port's folder (with workflow.py and activities.py)")
    parser.add_argument("--address", default=os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"))
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="sdk")
    parser.add_argument("--print-diff", action="store_true", help="print what differs from the SDK version and exit")
    args = parser.parse_args()
    if args.print_diff:
        print(diff(args.folder), end="")
        return
    try:
        asyncio.run(serve(args.folder.resolve(), args.address, args.namespace, args.task_queue))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
