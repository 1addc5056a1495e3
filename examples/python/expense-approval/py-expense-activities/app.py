"""The py-expense-activities plugin: the activities of ../activities.py."""
import activities  # noqa: F401  (@activity.defn functions register on import)

from caisson.worker import *  # noqa: F401,F403  (Dynamic)
