"""The test plugins' workflows (test-workflows-py/workflows.py and the
ported SDK sample) run in plain CPython on caisson.testing's host: the
same code the integration tests run in a component."""
import ast
import json
import os
import sys
import unittest
from datetime import timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "test-workflows-py")]

import workflows  # noqa: E402
from caisson.exceptions import ApplicationError, CancelledError  # noqa: E402
from caisson.testing import (  # noqa: E402
    ActivityEnvironment,
    ActivityTimeout,
    WorkflowEnvironment,
    WorkflowFailureError,
    WorkflowTaskFailedError,
    takes,
)
from sdk_samples import activities as sdk_activities  # noqa: E402
from sdk_samples import hello_activity  # noqa: E402


def rust_test_activities(fail_until_calls=None):
    """Stand-ins for plugins/rust/test-activities and greet-activity."""
    calls = fail_until_calls if fail_until_calls is not None else []

    def fail_until(succeed_at: int) -> int:
        calls.append(succeed_at)
        if len(calls) < succeed_at:
            raise ApplicationError(f"attempt {len(calls)}", type="NotYet")
        return len(calls)

    def step(name: str, fail: bool) -> str:
        if fail:
            raise ApplicationError(f"step {name} failed", type="StepFailed", non_retryable=True)
        return f"did {name}"

    return {
        "greet": lambda name: f"Hello, {name}!",
        "echo": lambda value: value,
        "upper": lambda value: value.upper(),
        "sleep-ms": takes(timedelta(minutes=1), lambda ms: ms),
        "step": step,
        "fail-until": fail_until,
    }


class GreetingAndSample(unittest.TestCase):
    def test_greeting_calls_greet_and_logs(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        self.assertEqual(env.run(workflows.Greeting.run, "Ada"), "Hello, Ada!")
        self.assertEqual(env.commands, [("start_activity", "greet", ('"Ada"',))])
        self.assertIn(("info", "greeting Ada"), env.logs)

    def test_the_ported_sdk_sample_runs_as_written(self):
        env = WorkflowEnvironment(activities=[hello_activity.compose_greeting])
        self.assertEqual(env.run(hello_activity.GreetingWorkflow.run, "World"), "Hello, World!")
        self.assertEqual(env.commands, [("start_activity", "compose_greeting", ('{"greeting":"Hello","name":"World"}',))])


class Parallel(unittest.TestCase):
    def test_gather_tasks_and_as_completed(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        result = env.run(workflows.Parallel.run, ["a", "b", "c"])
        self.assertEqual(result, {"upper": ["A", "B", "C"], "echoed": ["aa", "bb", "cc"], "pending": 0, "first": "a"})
        scheduled = [c[1] for c in env.commands if c[0] == "start_activity"]
        # gather schedules all three before waiting for any
        self.assertEqual(scheduled[:3], ["upper", "upper", "upper"])


class Timers(unittest.TestCase):
    def test_timers_condition_timeout_and_replay_safe_values(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        result = env.run(workflows.Timers.run, 2000)
        self.assertTrue(result["timed_out"])
        self.assertEqual(result["elapsed_ms"], 6000)
        self.assertTrue(result["patched"])
        timers = [c for c in env.commands if c[0] == "start_timer"]
        self.assertEqual(timers, [("start_timer", 2000, None), ("start_timer", 2000, "second nap"), ("start_timer", 2000, "poke or not")])
        # What was drawn is what was sent to `echo` (history), and a second
        # run of the same workflow id draws the same values.
        echo_input = ast.literal_eval(json.loads(env.commands[0][2][0]))
        self.assertEqual(echo_input, result["drawn"])
        again = WorkflowEnvironment(activities=rust_test_activities())
        self.assertEqual(again.run(workflows.Timers.run, 2000)["drawn"], result["drawn"])
        self.assertEqual(again.commands, env.commands)

    def test_a_signal_satisfies_the_condition_before_its_timeout(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        env.signal("poke", at=4.5)
        result = env.run(workflows.Timers.run, 2000)
        self.assertFalse(result["timed_out"])
        self.assertEqual(result["elapsed_ms"], 4500)
        self.assertIn(("cancel", 4), env.commands, "the condition's timer is cancelled")

    def test_patched_is_false_for_histories_without_the_patch(self):
        env = WorkflowEnvironment(activities=rust_test_activities(), unpatched=["timers-v2"])
        self.assertFalse(env.run(workflows.Timers.run, 10)["patched"])


class Approval(unittest.TestCase):
    def test_signals_queries_and_a_validated_update(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        first = env.query("status", at=1)
        bad = env.update("set-amount", -5, at=2)
        good = env.update("set-amount", 250, at=3)
        env.signal("comment", "looks fine", at=4)
        env.signal("approve", "alice", at=5)
        result = env.run(workflows.ApprovalWorkflow.run, 100.0)
        self.assertEqual(result, workflows.Approval(amount=250.0, approver="alice", state="approved", comments=["looks fine"]))
        self.assertEqual(first.result, {"amount": 100.0, "approver": None, "comments": [], "state": "pending"})
        self.assertFalse(bad.accepted)
        self.assertEqual((bad.rejected.error_type, bad.rejected.message), ("InvalidAmount", "amount -5.0 must be positive"))
        self.assertTrue(good.accepted and good.completed)
        self.assertEqual(good.result, 250.0)
        self.assertEqual(env.query_after("status")["state"], "approved", "queries work after completion")

    def test_validators_do_not_run_on_replay(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        replayed = env.update("set-amount", -5, at=1, replaying=True)
        env.signal("approve", "bob", at=2)
        self.assertEqual(env.run(workflows.ApprovalWorkflow.run, 1.0).amount, -5.0)
        self.assertTrue(replayed.accepted)

    def test_unknown_updates_are_rejected_naming_them_and_bad_signals_dropped(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        unknown = env.update("no-such", 1, at=1)
        env.signal("approve", 42, at=2)  # not a str: dropped with a warning
        env.signal("approve", "carol", at=3)
        self.assertEqual(env.run(workflows.ApprovalWorkflow.run, 1.0).approver, "carol")
        self.assertIn("Update handler for 'no-such' expected but not found", unknown.rejected.message)
        self.assertIn("set-amount", unknown.rejected.message)
        self.assertTrue(any(level == "warn" and "dropping signal `approve`" in m and "expected str" in m for level, m in env.logs), env.logs)

    def test_unknown_query_fails_naming_the_known_ones(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        q = env.query("nope", at=1)
        env.signal("approve", "x", at=2)
        env.run(workflows.ApprovalWorkflow.run, 1.0)
        self.assertIn("Query handler for 'nope' expected but not found, known queries: [status]", q.error)


class Children(unittest.TestCase):
    def test_children_by_method_and_name_with_memo(self):
        env = WorkflowEnvironment(activities=rust_test_activities(), workflow_id="parent-1")
        result = env.run(workflows.Parent.run, 2)
        self.assertEqual(result[0], {"n": 0, "memo": {"index": 0}, "parent": "parent-1"})
        self.assertEqual(result[1]["memo"], {"index": 1})
        self.assertEqual(result[2], {"n": 200, "memo": {"by": "name"}, "parent": "parent-1"})
        ids = [c[2] for c in env.commands if c[0] == "start_child_workflow"]
        self.assertEqual(ids[:2], ["parent-1-child-0", "parent-1-child-1"])
        self.assertEqual(len(ids[2]), 36, "the default child id is a workflow.uuid4()")


class LocalActivities(unittest.TestCase):
    def test_local_activities(self):
        env = WorkflowEnvironment(activities={**rust_test_activities(), "fail-until": lambda n: 3})
        self.assertEqual(env.run(workflows.Local.run, "hi"), {"attempt": 3, "echoed": "hi"})
        self.assertEqual([c[0] for c in env.commands], ["start_local_activity", "start_local_activity"])


class Cancellation(unittest.TestCase):
    def test_cancelled_activity_compensates_then_ends_cancelled(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        env.cancel(at=5)
        with self.assertRaises(WorkflowFailureError) as caught:
            env.run(workflows.Cancellable.run, 60_000)
        self.assertIsInstance(caught.exception.cause, CancelledError)
        names = [c[1] if c[0] == "start_activity" else c[0] for c in env.commands]
        self.assertEqual(names, ["sleep-ms", "cancel", "step"], "cancel the activity, then compensate")
        self.assertIn(("info", "cancelled: compensating"), env.logs)

    def test_cancelled_timer_raises_asyncio_cancelled_error(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        env.cancel(at=1)
        with self.assertRaises(WorkflowFailureError):
            env.run(workflows.CancellableTimer.run, 3600)
        self.assertEqual([c[0] for c in env.commands], ["start_timer", "cancel", "start_activity"])


class Upserts(unittest.TestCase):
    def test_search_attributes_memo_and_continue_as_new(self):
        env = WorkflowEnvironment(activities=rust_test_activities())
        result = env.run(workflows.Upserts.run, 0)
        self.assertEqual(result, {"round": 2, "memo": {"note": "upserted", "round": 2}, "status": "round-2", "continued": True})
        self.assertEqual([r[1] for r in env.continued_as_new], [[1], [2]])
        self.assertIn(("upsert_search_attributes", (("OrderStatus", "keyword", '"round-0"'),)), env.commands)


class Failures(unittest.TestCase):
    def test_unexpected_exception_fails_the_task_with_its_traceback(self):
        env = WorkflowEnvironment()
        env.signal("take", "pear", at=1)
        with self.assertRaises(WorkflowTaskFailedError) as caught:
            env.run(workflows.Buggy.run)
        text = caught.exception.text
        self.assertIn("workflow py-buggy task failed: KeyError: 'pear'", text)
        self.assertIn("Traceback (most recent call last)", text)
        self.assertIn("in take", text)

    def test_application_error_fails_the_workflow(self):
        with self.assertRaises(WorkflowFailureError) as caught:
            WorkflowEnvironment().run(workflows.Fails.run, "application")
        cause = caught.exception.cause
        self.assertEqual((cause.type, cause.message, cause.non_retryable, cause.details), ("BadOrder", "order is bad", True, ({"order": 7},)))

    def test_activity_error_let_out_fails_the_workflow_with_its_cause(self):
        with self.assertRaises(WorkflowFailureError) as caught:
            WorkflowEnvironment(activities=rust_test_activities()).run(workflows.Fails.run, "activity")
        cause = caught.exception.cause
        self.assertEqual(cause.type, "StepFailed")
        self.assertEqual(cause.message, "Activity task failed: step doomed failed")

    def test_activity_timeouts_reach_the_workflow_as_timeout_errors(self):
        def times_out(_: str) -> str:
            raise ActivityTimeout("start-to-close")

        with self.assertRaises(WorkflowFailureError) as caught:
            WorkflowEnvironment(activities={"greet": times_out}).run(workflows.Greeting.run, "x")
        self.assertEqual(caught.exception.cause.type, "TimeoutError")


class CrossQueue(unittest.TestCase):
    def test_activities_on_another_task_queue(self):
        def flaky(key: str, failures: int) -> dict:
            return {"key": key, "attempt": failures + 1}

        def fatal() -> str:
            raise ApplicationError("fatal problem", type="Fatal")

        env = WorkflowEnvironment(activities={"py-flaky": flaky, "py-fatal": fatal})
        self.assertEqual(
            env.run(workflows.CrossQueue.run, "py-queue"),
            {"flaky": {"key": "k", "attempt": 3}, "fatal": {"type": "Fatal", "message": "fatal problem"}},
        )


class SdkShapedActivities(unittest.TestCase):
    def test_the_workflow_calls_them_by_function(self):
        env = WorkflowEnvironment(activities=[sdk_activities.beat, sdk_activities.refuse, sdk_activities.attempts_until])
        # attempts_until(3) fails on attempt 1 here (no retries in the test
        # environment): so call it with a stand-in that succeeds.
        env._activities["py-attempts-until"] = lambda n: n
        result = env.run(workflows.SdkActivities.run, 3)
        self.assertEqual(result, {"beats": 3, "attempt": 3, "refused": {"type": "Refused", "non_retryable": True}})

    def test_activity_environment_runs_them_with_a_context(self):
        env = ActivityEnvironment()
        beats = []
        env.on_heartbeat = lambda *d: beats.append(d)
        self.assertEqual(env.run(sdk_activities.beat, 3), 3)
        self.assertEqual(beats, [(0,), (1,), (2,)])
        with self.assertRaises(RuntimeError):
            env.run(sdk_activities.attempts_until, 2)
        self.assertEqual(env.run(hello_activity.compose_greeting, hello_activity.ComposeGreetingInput("Hi", "Bo")), "Hi, Bo!")

    def test_cancellation_reaches_an_async_activity(self):
        import asyncio

        env = ActivityEnvironment()
        env.on_heartbeat = lambda *d: env.cancel()
        with self.assertRaises(asyncio.CancelledError):
            env.run(sdk_activities.until_cancelled)


if __name__ == "__main__":
    unittest.main()
