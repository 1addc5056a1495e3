"""The `{{name}}` activity, with the API of the Temporal Python SDK. It
reaches only what caisson.toml grants."""
from caisson import activity
from greeting import greeting


@activity.defn(name="{{name}}")
def {{snake}}(name: str) -> str:
    activity.logger.info(f"greeting {name} (attempt {activity.info().attempt})")
    return greeting(name)
