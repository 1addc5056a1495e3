import unittest

from activities import {{snake}}
from caisson.testing import ActivityEnvironment
from greeting import greeting


class GreetingTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(greeting("Ada"), "Hello, Ada!")

    def test_the_activity_runs_with_a_test_context(self):
        self.assertEqual(ActivityEnvironment().run({{snake}}, "Ada"), "Hello, Ada!")


if __name__ == "__main__":
    unittest.main()
