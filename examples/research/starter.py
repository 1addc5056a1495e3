#!/usr/bin/env python3
"""Runs the research workflow from the Temporal Python SDK: a plain client,
nothing Caisson-specific.

    python3 starter.py --topic "WebAssembly plugins" [--feedback "mention fuel limits"] [--reviewer ada]

Starts `research`, follows its `status` query, sends `request-changes`
with the feedback (if given) once the first draft is ready, then `approve`,
and prints the report. The last line printed is the result as JSON.
"""
import argparse
import asyncio
import json
import os
import sys
import uuid

from temporalio.client import Client


async def wait_for(handle, predicate, what):
    for _ in range(600):
        status = await handle.query("status")
        if predicate(status):
            return status
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the workflow never reached: {what}")


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="localhost:7233")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", default="caisson")
    parser.add_argument("--workflow-id", default=f"research-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--topic", default="WebAssembly plugins")
    parser.add_argument("--feedback", help="request changes once with this feedback before approving")
    parser.add_argument("--reviewer", default="ada")
    parser.add_argument("--review-timeout-ms", type=int, default=600_000)
    args = parser.parse_args()

    client = await Client.connect(args.address, namespace=args.namespace)
    handle = await client.start_workflow(
        "research",
        {"topic": args.topic, "review_timeout_ms": args.review_timeout_ms},
        id=args.workflow_id,
        task_queue=args.task_queue,
    )
    print(f"started {args.workflow_id}", flush=True)

    status = await wait_for(handle, lambda s: s["stage"] == "awaiting-review", "the first draft")
    print(f"questions: {status['questions']}\nsources:   {status['sources']}\ndraft:     {status['draft']}", flush=True)
    if args.feedback:
        await handle.signal("request-changes", {"reviewer": args.reviewer, "feedback": args.feedback})
        status = await wait_for(
            handle, lambda s: s["revisions"] == 1 and s["stage"] == "awaiting-review", "the revised draft"
        )
        print(f"revised:   {status['draft']}", flush=True)
    await handle.signal("approve", {"reviewer": args.reviewer})
    result = await handle.result()
    print(f"report:    {result['report']}", flush=True)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    # Leave without interpreter finalization: the SDK's Rust core threads
    # can still hold Python thread states then, which now and then aborts
    # the process ("PyGILState_Release ... finalizing") after the work is
    # done. Everything is printed and flushed by now.
    sys.stdout.flush()
    os._exit(0)
