"""Activities written as for the Python SDK (only the imports differ),
served by the test-activities-py plugin: sync and async functions,
heartbeats, retries and a non-retryable application error."""
import asyncio

from caisson import activity  # was: from temporalio import activity
from caisson.exceptions import ApplicationError  # was: from temporalio.exceptions import ApplicationError


@activity.defn(name="py-beat")
async def beat(n: int) -> int:
    """Heartbeats `n` times, sleeping 10 ms between beats; returns `n`."""
    for i in range(n):
        activity.heartbeat(i)
        await asyncio.sleep(0.01)
    return n


@activity.defn(name="py-attempts-until")
def attempts_until(succeed_at: int) -> int:
    """Fails (retryably, with a plain exception) before attempt `succeed_at`."""
    attempt = activity.info().attempt
    if attempt < succeed_at:
        raise RuntimeError(f"attempt {attempt} is too early")
    activity.logger.info("succeeded at attempt %d", attempt)
    return attempt


@activity.defn(name="py-refuse")
def refuse(reason: str) -> None:
    """Fails for good: retrying cannot help."""
    raise ApplicationError(f"refused: {reason}", type="Refused", non_retryable=True)


@activity.defn(name="py-until-cancelled")
async def until_cancelled() -> str:
    """Heartbeats until cancelled (asyncio.CancelledError at the sleep)."""
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.1)
