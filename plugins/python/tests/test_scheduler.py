"""The scheduler's rules, one at a time, on caisson.testing's host: what
fails the workflow and what fails the task, read-only queries and
validators, handlers set at run time, asyncio primitives as durable
timers, cancellation of handles, and the JSON conversion."""
import asyncio
import os
import sys
import unittest
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from caisson import converter, workflow  # noqa: E402
from caisson._failures import activity_failure, child_failure, to_app_error  # noqa: E402
from caisson._host import AppError, Failed  # noqa: E402
from caisson.common import RawValue, SearchAttributeKey  # noqa: E402
from caisson.exceptions import (  # noqa: E402
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)
from caisson.testing import WorkflowEnvironment, WorkflowFailureError, WorkflowTaskFailedError, takes  # noqa: E402

SHORT = timedelta(seconds=5)


@workflow.defn(name="t-read-only")
class ReadOnly:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "ok"

    @workflow.query
    def sneaky(self) -> str:
        workflow.start_activity("echo", "x", start_to_close_timeout=SHORT)
        return "never"

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update
    def tweak(self, n: int) -> int:
        return n

    @tweak.validator
    def check_tweak(self, n: int) -> None:
        workflow.upsert_memo({"n": n})


@workflow.defn(name="t-dynamic-handlers")
class DynamicHandlers:
    def __init__(self) -> None:
        self.seen: List[Tuple[str, list]] = []

    @workflow.run
    async def run(self) -> list:
        await asyncio.sleep(10)  # the early signal arrives before any handler exists
        workflow.set_signal_handler("late", lambda v: self.seen.append(("late", [v])))
        workflow.set_dynamic_signal_handler(lambda name, args: self.seen.append((name, [a.payload for a in args])))
        workflow.set_query_handler("count", lambda: len(self.seen))
        await workflow.wait_condition(lambda: len(self.seen) >= 3)
        return self.seen

    @workflow.update(dynamic=True)
    def any_update(self, name: str, args: Sequence[RawValue]) -> str:
        return f"{name}:{args[0].payload}"


@workflow.defn(name="t-update-failures")
class UpdateFailures:
    def __init__(self) -> None:
        self.n = 0

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.n >= 2)
        return self.n

    @workflow.update
    async def bump(self, how: str) -> int:
        if how == "refuse":
            raise ApplicationError("refused", type="Refused")
        if how == "bug":
            return {}["missing"]
        self.n += 1
        return self.n


@workflow.defn(name="t-asyncio")
class AsyncioPrimitives:
    @workflow.run
    async def run(self) -> dict:
        out: Dict[str, object] = {}
        try:
            async with asyncio.timeout(1):
                await asyncio.sleep(5)
        except TimeoutError:
            out["timeout"] = "fired"
        except asyncio.TimeoutError:
            out["timeout"] = "fired"
        slow = workflow.start_activity("slow", start_to_close_timeout=SHORT)
        try:
            await asyncio.wait_for(asyncio.shield(slow), timeout=2)
        except asyncio.TimeoutError:
            out["wait_for"] = "timed out"
        out["shielded"] = await slow  # the shield kept the activity running
        async with asyncio.TaskGroup() as tg:
            a = tg.create_task(workflow.execute_activity("echo", "a", start_to_close_timeout=SHORT))
            b = tg.create_task(workflow.execute_activity("echo", "b", start_to_close_timeout=SHORT))
        out["group"] = [a.result(), b.result()]
        event = asyncio.Event()
        queue: asyncio.Queue = asyncio.Queue()

        async def producer() -> None:
            await asyncio.sleep(1)
            await queue.put("item")
            event.set()

        asyncio.create_task(producer())
        await event.wait()
        out["queue"] = await queue.get()
        first = workflow.start_activity("slow", start_to_close_timeout=SHORT)
        second = workflow.start_activity("echo", "fast", start_to_close_timeout=SHORT)
        done, pending = await workflow.wait([first, second], return_when=asyncio.FIRST_COMPLETED)
        out["first_completed"] = [t.result() for t in done]
        out["pending"] = len(pending)
        first.cancel()
        try:
            await first
        except ActivityError as err:
            out["cancelled_handle"] = type(err.cause).__name__
        return out


@workflow.defn(name="t-cancel-unstarted")
class CancelUnstarted:
    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity("slow", start_to_close_timeout=SHORT)
        handle.cancel()  # before its task ever ran
        try:
            await handle
        except asyncio.CancelledError:
            return "cancelled before start"
        return "not cancelled"


@workflow.defn(name="t-swallow-cancel")
class SwallowCancel:
    @workflow.run
    async def run(self) -> str:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            pass
        await asyncio.sleep(1)  # a caught cancellation leaves later awaits alone
        return f"went on (cancellation reason: {workflow.cancellation_reason()!r})"


@workflow.defn(name="t-bad-result")
class BadResult:
    @workflow.run
    async def run(self) -> object:
        return object()


@dataclass
class Order:
    id: str
    lines: List[int] = field(default_factory=list)


@workflow.defn(name="t-typed")
class Typed:
    @workflow.run
    async def run(self, order: Order, when: datetime, note: Optional[str] = None) -> Order:
        return Order(order.id + (note or ""), order.lines + [when.year])


@workflow.defn(name="t-update-can")
class UpdateContinueAsNew:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    def restart(self) -> None:
        workflow.continue_as_new()


@workflow.defn(name="t-info")
class InfoAndMemo:
    @workflow.run
    async def run(self) -> dict:
        info = workflow.info()
        workflow.upsert_search_attributes([SearchAttributeKey.for_int("Count").value_set(3)])
        return {
            "type": info.workflow_type,
            "id": info.workflow_id,
            "start": info.start_time.isoformat(),
            "memo": workflow.memo_value("customer", type_hint=str),
            "missing": workflow.memo_value("nope", "default"),
            "count": workflow.info().typed_search_attributes.get(SearchAttributeKey.for_int("Count")),
            "in_workflow": workflow.in_workflow(),
            "replaying": workflow.unsafe.is_replaying(),
        }


class FailureRules(unittest.TestCase):
    def test_queries_and_validators_are_read_only(self):
        env = WorkflowEnvironment()
        q = env.query("sneaky", at=1)
        env.signal("finish", at=3)
        self.assertEqual(env.run(ReadOnly.run), "ok")
        self.assertIn("query `sneaky` may not start", q.error)

    def test_a_validator_that_writes_fails_the_task(self):
        env = WorkflowEnvironment()
        env.update("tweak", 1, at=1)
        with self.assertRaises(WorkflowTaskFailedError) as caught:
            env.run(ReadOnly.run)
        self.assertIn("the validator of update `tweak` may not upsert the memo", caught.exception.text)

    def test_update_handler_errors_fail_the_update_or_the_task(self):
        env = WorkflowEnvironment()
        refused = env.update("bump", "refuse", at=1)
        env.update("bump", "ok", at=2)
        env.update("bump", "ok", at=3)
        self.assertEqual(env.run(UpdateFailures.run), 2)
        self.assertTrue(refused.accepted)
        self.assertEqual(refused.error.error_type, "Refused")
        env = WorkflowEnvironment()
        env.update("bump", "bug", at=1)
        with self.assertRaises(WorkflowTaskFailedError) as caught:
            env.run(UpdateFailures.run)
        self.assertIn("KeyError: 'missing'", caught.exception.text)

    def test_continue_as_new_from_an_update_fails_the_task(self):
        env = WorkflowEnvironment()
        env.update("restart", at=1)
        with self.assertRaises(WorkflowTaskFailedError) as caught:
            env.run(UpdateContinueAsNew.run)
        self.assertIn("only the run method may", caught.exception.text)

    def test_a_result_that_is_not_json_fails_the_task(self):
        with self.assertRaises(WorkflowTaskFailedError) as caught:
            WorkflowEnvironment().run(BadResult.run)
        self.assertIn("not JSON-serializable", caught.exception.text)

    def test_undecodable_arguments_fail_the_task_naming_the_field(self):
        with self.assertRaises(WorkflowTaskFailedError) as caught:
            WorkflowEnvironment().run(Typed.run, {"id": "A", "lines": ["x"]}, "2026-01-01T00:00:00Z")
        self.assertIn("workflow `t-typed` argument `order` at `.lines[0]`: expected int", caught.exception.text)


class Handlers(unittest.TestCase):
    def test_handlers_set_at_run_time_get_buffered_signals(self):
        env = WorkflowEnvironment()
        env.signal("late", "early-bird", at=1)
        env.signal("other", 7, at=20)
        env.signal("late", "on-time", at=21)
        count = env.query("count", at=20.5)
        dyn = env.update("whatever", {"k": 1}, at=20.6)
        self.assertEqual(
            env.run(DynamicHandlers.run),
            [["late", ["early-bird"]], ["other", ["7"]], ["late", ["on-time"]]],
        )
        self.assertEqual(count.result, 2)
        self.assertEqual(dyn.result, 'whatever:{"k":1}')


class AsyncioAsDurableWork(unittest.TestCase):
    def test_asyncio_primitives(self):
        env = WorkflowEnvironment(activities={"echo": lambda v: v, "slow": takes(60, lambda: "slow")})
        out = env.run(AsyncioPrimitives.run)
        self.assertEqual(
            out,
            {
                "timeout": "fired",
                "wait_for": "timed out",
                "shielded": "slow",
                "group": ["a", "b"],
                "queue": "item",
                "first_completed": ["fast"],
                "pending": 1,
                "cancelled_handle": "CancelledError",
            },
        )
        timers = [c[1] for c in env.commands if c[0] == "start_timer"]
        self.assertEqual(timers[:3], [1000, 5000, 2000], "asyncio.sleep, asyncio.timeout and wait_for are durable timers")

    def test_cancelling_an_unstarted_handle_tells_the_host(self):
        env = WorkflowEnvironment(activities={"slow": takes(60, lambda: "slow")})
        self.assertEqual(env.run(CancelUnstarted.run), "cancelled before start")
        self.assertEqual([c[0] for c in env.commands], ["start_activity", "cancel"])

    def test_a_caught_cancellation_lets_the_workflow_go_on(self):
        env = WorkflowEnvironment()
        env.cancel(at=5)
        self.assertEqual(env.run(SwallowCancel.run), "went on (cancellation reason: '')")


class Conversion(unittest.TestCase):
    def test_typed_arguments_and_results(self):
        result = WorkflowEnvironment().run(Typed.run, Order("A", [1]), datetime(2030, 5, 1, tzinfo=timezone.utc), "!")
        self.assertEqual(result, Order("A!", [1, 2030]))

    def test_decoding_rules(self):
        class Color(Enum):
            RED = "red"

        self.assertEqual(converter.decode('{"id":"x","extra":1}', Order), Order("x", []))
        self.assertEqual(converter.decode('"red"', Color), Color.RED)
        self.assertEqual(converter.decode("[1, 2]", Tuple[int, ...]), (1, 2))
        self.assertEqual(converter.decode('{"a": [1]}', Dict[str, List[int]]), {"a": [1]})
        self.assertIsNone(converter.decode("null", Optional[Order]))
        self.assertEqual(converter.decode("3", float), 3.0)
        with self.assertRaises(TypeError) as caught:
            converter.decode('{"lines": []}', Order, what="argument `o`")
        self.assertEqual(str(caught.exception), "argument `o` at `.id`: missing field `id` of Order")
        with self.assertRaises(TypeError):
            converter.decode("true", int)
        self.assertEqual(converter.encode({"b": datetime(2026, 1, 1, tzinfo=timezone.utc), "a": {1, 2}}), '{"a":[1,2],"b":"2026-01-01T00:00:00+00:00"}')

    def test_failures_map_to_the_sdk_exception_chain(self):
        err = activity_failure(Failed("application", "card declined", AppError("card declined", "Declined", True, '{"c": 1}')),
                               activity_type="charge", activity_id="7")
        self.assertIsInstance(err, ActivityError)
        self.assertEqual((err.cause.type, err.cause.non_retryable, err.cause.details), ("Declined", True, ({"c": 1},)))
        timeout = activity_failure(Failed("timeout", "heartbeat"), activity_type="a", activity_id="1")
        self.assertIsInstance(timeout.cause, TimeoutError)
        self.assertEqual(timeout.cause.type, TimeoutType.HEARTBEAT)
        self.assertTrue(is_cancelled_exception(activity_failure(Failed("cancelled", "x"), activity_type="a", activity_id="1")))
        child = child_failure(Failed("other", "terminated"), namespace="n", workflow_id="c", workflow_type="t")
        self.assertIsInstance(child, ChildWorkflowError)
        self.assertIsInstance(child.cause, TerminatedError)
        taken = child_failure(Failed("other", "child workflow c (t) could not start: WorkflowAlreadyExists"),
                              namespace="n", workflow_id="c", workflow_type="t")
        self.assertIsInstance(taken, WorkflowAlreadyStartedError)
        self.assertEqual(to_app_error(err).message, "Activity task failed: card declined")
        self.assertEqual(to_app_error(ApplicationError("m", 1, 2)).details, "[1,2]")
        self.assertEqual(to_app_error(CancelledError("stop")).error_type, "CancelledError")


class StackTrace(unittest.TestCase):
    def test_the_stack_trace_query_shows_where_each_task_waits(self):
        env = WorkflowEnvironment()
        trace = env.query("__stack_trace", at=1)
        env.signal("finish", at=2)
        env.run(ReadOnly.run)
        self.assertIn("Stack for run", trace.result)
        self.assertIn("in wait_condition", trace.result)
        self.assertIn("in run", trace.result)


class InfoTest(unittest.TestCase):
    def test_info_memo_and_search_attributes(self):
        env = WorkflowEnvironment(memo={"customer": "acme"}, workflow_id="wf-9")
        out = env.run(InfoAndMemo.run)
        self.assertEqual(
            out,
            {"type": "t-info", "id": "wf-9", "start": "2026-01-01T00:00:00+00:00", "memo": "acme", "missing": "default",
             "count": 3, "in_workflow": True, "replaying": False},
        )
        self.assertFalse(workflow.in_workflow())


class Definitions(unittest.TestCase):
    def test_bad_classes_are_refused_with_every_reason(self):
        with self.assertRaises(ValueError) as caught:

            @workflow.defn
            class NoRun:
                @workflow.init
                def __init__(self, a: int) -> None:
                    pass

        self.assertIn("missing @workflow.run method", str(caught.exception))
        with self.assertRaises(ValueError):
            workflow.run(lambda self: None)
        with self.assertRaises(ValueError):

            @workflow.defn(dynamic=True)
            class Dyn:
                @workflow.run
                async def run(self) -> None:
                    pass


if __name__ == "__main__":
    unittest.main()
