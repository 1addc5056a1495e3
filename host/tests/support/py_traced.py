"""A Python SDK client and activity worker with OpenTelemetry tracing, for
the tracing test: the SDK's own `TracingInterceptor` on both.

Usage: py_traced.py ADDRESS CAISSON_QUEUE PYTHON_QUEUE WORKFLOW_ID

Starts the `traced` workflow on CAISSON_QUEUE (its `shout` activity runs
here, on PYTHON_QUEUE), signals it `go`, waits for its result and prints
one JSON object: the result and every span this process made.
"""
import asyncio
import json
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))


@activity.defn(name="shout")
async def shout(word: str) -> str:
    return word.upper() + "!"


async def main() -> None:
    address, caisson_queue, python_queue, workflow_id = sys.argv[1:5]
    client = await Client.connect(address, interceptors=[TracingInterceptor(provider.get_tracer("test"))])
    async with Worker(client, task_queue=python_queue, activities=[shout]):
        handle = await client.start_workflow("traced", python_queue, id=workflow_id, task_queue=caisson_queue)
        await handle.signal("go", "now")
        result = await handle.result()
    spans = [
        {
            "name": s.name,
            "trace_id": format(s.context.trace_id, "032x"),
            "span_id": format(s.context.span_id, "016x"),
            "parent_span_id": format(s.parent.span_id, "016x") if s.parent else "",
        }
        for s in exporter.get_finished_spans()
    ]
    print(json.dumps({"result": result, "spans": spans}), flush=True)


asyncio.run(main())
