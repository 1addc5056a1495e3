"""The py-expense-workflow plugin: ExpenseWorkflow of ../workflow.py."""
import workflow  # noqa: F401  (@workflow.defn classes register on import)

from caisson.worker import *  # noqa: F401,F403  (Declarations, Dynamic, Queries)
