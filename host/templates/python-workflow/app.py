"""The `{{name}}` workflow plugin (componentize-py).

`workflows.py` holds the workflow, written as for the Temporal Python SDK
(`from caisson import workflow` in place of `from temporalio import
workflow`). This file makes the component: it imports the workflow
classes (each `@workflow.defn` class is one workflow type) and the
component's exports from `caisson.worker`. Import everything at the top:
componentize-py snapshots the modules imported at build time.
"""
import workflows  # noqa: F401  (@workflow.defn classes register on import)

from caisson.worker import *  # noqa: F401,F403  (the exports: Declarations, Dynamic, Queries)
