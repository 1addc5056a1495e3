# The shape of the Temporal Python SDK's "hello activity" sample: a
# dataclass input, an activity that logs and composes a greeting, and a
# workflow that logs and calls it. Ported to Caisson by changing the one
# import line below; host/tests/python_workflows.rs runs this very file
# on Caisson and, with the line changed back, on the Python SDK, and
# compares the results. The client and worker code of the SDK sample
# (`main()`) stays outside: Caisson's worker serves the built plugins.
from dataclasses import dataclass
from datetime import timedelta

from caisson import activity, workflow  # was: from temporalio import activity, workflow


# A single dataclass argument, so fields can be added later without
# breaking running workflows.
@dataclass
class ComposeGreetingInput:
    greeting: str
    name: str


@activity.defn
async def compose_greeting(input: ComposeGreetingInput) -> str:
    activity.logger.info("Running activity with parameter %s" % input)
    return f"{input.greeting}, {input.name}!"


@workflow.defn
class GreetingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        workflow.logger.info("Running workflow with parameter %s" % name)
        return await workflow.execute_activity(
            compose_greeting,
            ComposeGreetingInput("Hello", name),
            start_to_close_timeout=timedelta(seconds=10),
        )
