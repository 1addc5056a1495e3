"""The test-activities-py plugin: SDK-shaped Python activities (the
ported sample's compose_greeting and sdk_samples.activities)."""
from sdk_samples import activities, hello_activity  # noqa: F401  (@activity.defn functions register on import)

from caisson.worker import *  # noqa: F401,F403  (Dynamic)
