"""The `{{name}}` workflow, with the API of the Temporal Python SDK.

`python3 -m unittest` runs it without a worker (test_workflows.py).
"""
import asyncio
from dataclasses import dataclass
from datetime import timedelta

from caisson import workflow


@dataclass
class Request:
    name: str


def shout(greeting: str) -> str:
    return f"{greeting} (from {{name}})"


@workflow.defn(name="{{name}}")
class {{pascal}}Workflow:
    @workflow.run
    async def run(self, request: Request) -> str:
        workflow.logger.info("{{name}} started for %s", request.name)
        await asyncio.sleep(1)  # a durable timer: survives worker restarts
        greeting = await workflow.execute_activity("greet", request.name, start_to_close_timeout=timedelta(seconds=10))
        return shout(greeting)
