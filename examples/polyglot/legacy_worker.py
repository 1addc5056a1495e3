#!/usr/bin/env python3
"""A plain Temporal Python SDK worker: the "legacy" part of the polyglot
example. It serves the activity `archive-report` on its own task queue;
the Caisson workflow routes that one activity here.

    python3 legacy_worker.py [--address localhost:7233] [--task-queue polyglot-legacy]

Prints `ready` once polling.
"""
import argparse
import asyncio
import hashlib
import json

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn(name="archive-report")
async def archive_report(report: dict) -> dict:
    """Archives a report (here: a content hash stands for the storage key)."""
    body = json.dumps(report, sort_keys=True).encode()
    key = "ARCH-" + hashlib.sha256(body).hexdigest()[:12].upper()
    activity.logger.info("archived %s (%d bytes)", key, len(body))
    return {"archive_id": key, "bytes": len(body), "worker": "temporalio-python"}


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="localhost:7233")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="polyglot-legacy")
    args = parser.parse_args()
    client = await Client.connect(args.address, namespace=args.namespace)
    async with Worker(client, task_queue=args.task_queue, activities=[archive_report]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
