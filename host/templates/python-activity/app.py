"""The `{{name}}` activity plugin (componentize-py).

`activities.py` holds the activity, written as for the Temporal Python
SDK (`from caisson import activity`). This file makes the component: it
imports the activity functions (each `@activity.defn` function is one
activity type) and the component's exports from `caisson.worker`. Import
everything at the top: componentize-py snapshots the modules imported at
build time.
"""
import activities  # noqa: F401  (@activity.defn functions register on import)

from caisson.worker import *  # noqa: F401,F403  (the export: Dynamic)
