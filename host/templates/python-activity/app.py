"""The `{{name}}` activity, in Python (componentize-py).

Every function the world in wit/world.wit exports is an activity type
(kebab-case there, snake_case here). It reaches only what caisson.toml
grants. Import everything at the top: componentize-py snapshots the modules
imported at build time.
"""
import wit_world

import caisson_guest as act
from greeting import greeting


class WitWorld(wit_world.WitWorld):
    def {{snake}}(self, name: str) -> str:
        act.log(f"greeting {name} (attempt {act.info().attempt})")
        return greeting(name)
