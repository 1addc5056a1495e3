"""Plain-Python tests of the workflow: caisson.testing plays the worker
(virtual time, the `greet` activity replaced by a function)."""
import unittest

from caisson.testing import WorkflowEnvironment
from workflows import Request, {{pascal}}Workflow


class {{pascal}}WorkflowTest(unittest.TestCase):
    def test_greets_after_a_timer(self):
        env = WorkflowEnvironment(activities={"greet": lambda name: f"Hello, {name}!"})
        self.assertEqual(env.run({{pascal}}Workflow.run, Request(name="Ada")), "Hello, Ada! (from {{name}})")
        self.assertEqual([c[0] for c in env.commands], ["start_timer", "start_activity"])


if __name__ == "__main__":
    unittest.main()
