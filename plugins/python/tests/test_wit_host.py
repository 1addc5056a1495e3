"""The conversions of caisson._host to and from the bindings componentize-py
generates (``componentize-py bindings``) for the repository's WIT: a run
through `WitWorkflowHost` and `WitActivityHost` against a recording
``context`` module, and the exports of ``caisson.worker``.

Skipped when componentize-py is not installed (the setup's venv has it).
"""
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types as pytypes
import unittest
from datetime import timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PYTHON_DIR))
sys.path.insert(0, PYTHON_DIR)


def componentize_py():
    venv = os.path.join(os.environ.get("CAISSON_HOME", os.path.expanduser("~/.cache/caisson")), "venv/bin/componentize-py")
    return venv if os.path.exists(venv) else shutil.which("componentize-py")


def generate(world_include: str, package: str) -> str:
    """Generates the bindings of a world including ``world_include`` into
    a temporary folder; returns it."""
    out = tempfile.mkdtemp(prefix="caisson-bindings-")
    wit = os.path.join(out, "wit")
    os.makedirs(os.path.join(wit, "deps"))
    shutil.copytree(os.path.join(REPO, "wit", package), os.path.join(wit, "deps", f"caisson-{package}"))
    with open(os.path.join(wit, "world.wit"), "w") as f:
        f.write(f"package test:bindings;\nworld w {{\n    include {world_include};\n}}\n")
    subprocess.run([componentize_py(), "-d", wit, "-w", "w", "bindings", os.path.join(out, "py")], check=True, capture_output=True)
    return os.path.join(out, "py")


def load_bindings(path: str, context: pytypes.ModuleType):
    """Imports the generated ``wit_world`` from ``path`` with ``context``
    standing in for the generated context module (which needs the
    component runtime)."""
    for name in [m for m in sys.modules if m == "wit_world" or m.startswith("wit_world.") or m == "componentize_py_types"]:
        del sys.modules[name]
    sys.path.insert(0, path)
    try:
        imports = importlib.import_module("wit_world.imports")
        types = importlib.import_module("wit_world.imports.types")
        context.types = types
        sys.modules["wit_world.imports.context"] = context
        imports.context = context
        return types
    finally:
        sys.path.remove(path)


from caisson import workflow  # noqa: E402
from caisson.common import RetryPolicy, SearchAttributeKey  # noqa: E402


@workflow.defn(name="wit-host")
class WitHost:
    @workflow.run
    async def run(self, name: str) -> dict:
        workflow.logger.warning("starting %s", name)
        workflow.upsert_search_attributes([SearchAttributeKey.for_int("Count").value_set(2)])
        await workflow.sleep(1.5, summary="nap")
        greeting = await workflow.execute_activity(
            "greet", name, start_to_close_timeout=timedelta(seconds=3),
            retry_policy=RetryPolicy(maximum_attempts=2), summary="say hi")
        return {"greeting": greeting, "memo": workflow.memo(), "tags": workflow.info().search_attributes}

    @workflow.query
    def hello(self) -> str:
        return "hi"


@workflow.defn(name="wit-host-fails")
class Fails:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity("charge", start_to_close_timeout=timedelta(seconds=3))


class RecordingWorkflowContext(pytypes.ModuleType):
    """``caisson:workflow/context`` with scripted answers."""

    def __init__(self) -> None:
        super().__init__("wit_world.imports.context")
        self.calls = []
        self.events = []

    def start_activity(self, options):
        self.calls.append(("start_activity", options))
        return 1

    def start_timer(self, duration, summary):
        self.calls.append(("start_timer", duration, summary))
        return 2

    def upsert_search_attributes(self, attributes):
        self.calls.append(("upsert_search_attributes", attributes))

    def wait(self, handles):
        self.calls.append(("wait", list(handles)))
        return self.events.pop(0)

    def respond_query(self, id, answer):
        self.calls.append(("respond_query", id, answer))

    def now_ms(self):
        return 1_700_000_000_000

    def random_u64(self):
        return 42

    def info(self):
        t = self.types
        return t.WorkflowInfo(
            namespace="default", task_queue="q", workflow_type="wit-host", workflow_id="w", run_id="r", attempt=1,
            continued_from_run_id=None, parent_workflow_id=None, memo=[t.MemoField(name="m", value='"v"')],
            search_attributes=[t.SearchAttribute(name="Tags", value=t.SearchAttributeValue_KeywordList(["a"]))],
            start_time_ms=0,
        )

    def log(self, level, message):
        self.calls.append(("log", level, message))


@unittest.skipUnless(componentize_py(), "componentize-py is not installed")
class WitWorkflowHostTest(unittest.TestCase):
    def test_a_run_through_the_generated_types(self):
        context = RecordingWorkflowContext()
        t = load_bindings(generate("caisson:workflow/dynamic-workflows@0.2.0", "workflow"), context)
        from componentize_py_types import Err, Ok

        from caisson._host import WitWorkflowHost
        from caisson._scheduler import WorkflowRuntime

        context.events = [
            t.Event_Query(t.Query(id="q1", name="hello", args=[])),
            t.Event_Resolved(t.Resolution(handle=2, outcome=t.Outcome_Completed("null"))),
            t.Event_Resolved(t.Resolution(handle=1, outcome=t.Outcome_Completed('"Hello, Ada!"'))),
        ]
        result = WorkflowRuntime(getattr(WitHost, "__caisson_workflow_definition"), WitWorkflowHost(context, t, Ok, Err)).run(['"Ada"'])
        self.assertEqual(json.loads(result), {"greeting": "Hello, Ada!", "memo": {"m": "v"}, "tags": {"Count": [2], "Tags": ["a"]}})
        kinds = [c[0] for c in context.calls]
        self.assertEqual(kinds, ["log", "upsert_search_attributes", "start_timer", "wait", "respond_query", "wait", "start_activity", "wait"])
        self.assertEqual(context.calls[0][1], t.LogLevel.WARN)
        self.assertEqual(context.calls[1][1], [t.SearchAttribute(name="Count", value=t.SearchAttributeValue_Int(2))])
        self.assertEqual(context.calls[2][1:], (1500, "nap"))
        self.assertEqual(context.calls[4][1:], ("q1", Ok('"hi"')))
        options = context.calls[6][1]
        self.assertIsInstance(options, t.ActivityOptions)
        self.assertEqual(
            (options.activity_type, options.args, options.start_to_close_timeout_ms, options.summary, options.cancellation_type),
            ("greet", ['"Ada"'], 3000, "say hi", t.CancellationType.TRY_CANCEL),
        )
        self.assertEqual(options.retry_policy, t.RetryPolicy(1000, 2.0, 100000, 2, []))

    def test_failures_come_back_as_the_sdk_exceptions(self):
        context = RecordingWorkflowContext()
        t = load_bindings(generate("caisson:workflow/dynamic-workflows@0.2.0", "workflow"), context)
        from componentize_py_types import Err, Ok

        from caisson._host import WitWorkflowHost
        from caisson._scheduler import WorkflowFailed, WorkflowRuntime

        context.events = [
            t.Event_Resolved(t.Resolution(handle=1, outcome=t.Outcome_Failed(t.Failure_Application(
                t.ApplicationError(message="declined", error_type="Declined", non_retryable=True, details='{"code": 5}'))))),
        ]
        with self.assertRaises(WorkflowFailed) as caught:
            WorkflowRuntime(getattr(Fails, "__caisson_workflow_definition"), WitWorkflowHost(context, t, Ok, Err)).run([])
        e = caught.exception.error
        self.assertEqual((e.message, e.error_type, e.non_retryable, e.details), ("Activity task failed: declined", "Declined", True, '{"code":5}'))


class RecordingActivityContext(pytypes.ModuleType):
    def __init__(self) -> None:
        super().__init__("wit_world.imports.context")
        self.calls = []

    def heartbeat(self, details):
        self.calls.append(("heartbeat", details))

    def last_heartbeat_details(self):
        return "7"

    def is_cancelled(self):
        return False

    def info(self):
        return self.types.ActivityInfo(
            activity_id="1", activity_type="py-beat", task_queue="q", workflow_namespace="default", workflow_type="w",
            workflow_id="wid", workflow_run_id="rid", attempt=3, start_to_close_timeout_ms=5000, heartbeat_timeout_ms=None,
        )

    def log(self, level, message):
        self.calls.append(("log", level, message))


@unittest.skipUnless(componentize_py(), "componentize-py is not installed")
class WitActivityHostTest(unittest.TestCase):
    def test_an_attempt_through_the_generated_types(self):
        context = RecordingActivityContext()
        t = load_bindings(generate("caisson:activity/dynamic-activities@0.1.0", "activity"), context)
        from caisson import activity
        from caisson._activity_runner import ActivityFailed, run_activity
        from caisson._host import WitActivityHost
        from caisson.exceptions import ApplicationError

        @activity.defn(name="wit-attempt")
        def attempt(n: int) -> dict:
            info = activity.info()
            activity.heartbeat(n, "half")
            activity.logger.info("attempt %d", info.attempt)
            return {"attempt": info.attempt, "previous": list(info.heartbeat_details), "timeout": info.start_to_close_timeout.total_seconds()}

        @activity.defn(name="wit-refuse")
        def refuse() -> None:
            raise ApplicationError("no", {"why": "because"}, type="Refused", non_retryable=True)

        host = WitActivityHost(context, t)
        self.assertEqual(json.loads(run_activity(host, "wit-attempt", ["2"])), {"attempt": 3, "previous": [7], "timeout": 5.0})
        self.assertEqual(context.calls, [("heartbeat", '[2,"half"]'), ("log", t.LogLevel.INFO, "attempt 3")])
        with self.assertRaises(ActivityFailed) as caught:
            run_activity(host, "wit-refuse", [])
        self.assertEqual(host.app_error(caught.exception.error),
                         t.ApplicationError(message="no", error_type="Refused", non_retryable=True, details='{"why":"because"}'))


if __name__ == "__main__":
    unittest.main()
