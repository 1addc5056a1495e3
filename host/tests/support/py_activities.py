"""Activities served by a plain Python SDK worker, for interop tests.

Usage: py_activities.py ADDRESS TASK_QUEUE   (prints "ready" once polling)
"""
import asyncio
import sys

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker


@activity.defn(name="py-flaky")
async def flaky(key: str, failures: int) -> dict:
    """Fails `failures` times with a Transient error, then succeeds."""
    attempt = activity.info().attempt
    if attempt <= failures:
        raise ApplicationError(f"{key}: attempt {attempt} fails", type="Transient")
    return {"key": key, "attempt": attempt}


@activity.defn(name="py-fatal")
async def fatal() -> str:
    """Fails with an error type the retry policy lists as non-retryable."""
    raise ApplicationError("fatal problem", type="Fatal")


@activity.defn(name="py-sleep")
async def sleep(seconds: float) -> str:
    """Sleeps without heartbeating."""
    await asyncio.sleep(seconds)
    return "woke"


async def main() -> None:
    client = await Client.connect(sys.argv[1])
    async with Worker(client, task_queue=sys.argv[2], activities=[flaky, fatal, sleep]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
