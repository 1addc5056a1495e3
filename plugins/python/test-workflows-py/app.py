"""The test-workflows-py plugin: the workflows of workflows.py and the
ported SDK sample, served through the exports of caisson.worker."""
import workflows  # noqa: F401  (@workflow.defn classes register on import)
from sdk_samples import hello_activity  # noqa: F401

from caisson.worker import *  # noqa: F401,F403  (Declarations, Dynamic, Queries)
