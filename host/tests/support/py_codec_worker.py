"""A Python SDK worker with the encryption sample's codec, for the payload
codec test: serves `py-exclaim` on its own task queue.

Usage: py_codec_worker.py ADDRESS TASK_QUEUE   (prints "ready" once polling)
"""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from encryption_codec import converter  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402


@activity.defn(name="py-exclaim")
async def exclaim(value: str) -> str:
    return value + "!"


async def main() -> None:
    client = await Client.connect(sys.argv[1], data_converter=converter())
    async with Worker(client, task_queue=sys.argv[2], activities=[exclaim]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
