"""Helpers for Caisson activities written in Python (componentize-py).

Versioned with the WIT package it speaks: caisson:activity@0.1.0. A plugin
imports it by name (`import caisson_guest as act`); `caisson new` vendors
this folder into a standalone project, beside `app.py`, where
componentize-py finds it (`-p .`).

It reads the bindings componentize-py generates for the plugin's world
(`wit_world.imports.context` / `.types`), so the world must include
`caisson:activity/imports`. Import it at the top of `app.py`:
componentize-py snapshots the modules imported at build time.
"""
import json

from componentize_py_types import Err
from wit_world.imports import context
from wit_world.imports.types import ApplicationError, LogLevel

__version__ = "0.1.0"


def error(error_type: str, message: str, details=None) -> Err:
    """A retryable application error: `raise act.error("Busy", "try later")`."""
    return Err(ApplicationError(message=message, error_type=error_type, non_retryable=False,
                                details=None if details is None else json.dumps(details)))


def fatal(error_type: str, message: str, details=None) -> Err:
    """A non-retryable application error: retrying cannot fix it."""
    return Err(ApplicationError(message=message, error_type=error_type, non_retryable=True,
                                details=None if details is None else json.dumps(details)))


def log(message: str) -> None:
    """Logs at info level, tagged with the activity by the worker."""
    context.log(LogLevel.INFO, message)


def warn(message: str) -> None:
    """Logs a warning."""
    context.log(LogLevel.WARN, message)


def info():
    """Facts about this attempt: activity id, workflow id, attempt number..."""
    return context.info()


def heartbeat(details=None) -> None:
    """Records progress; `details` (JSON-serializable) reach the next attempt."""
    context.heartbeat(None if details is None else json.dumps(details))


def last_heartbeat():
    """The previous attempt's last heartbeat details, decoded, or None."""
    raw = context.last_heartbeat_details()
    return None if raw is None else json.loads(raw)


def is_cancelled() -> bool:
    """True once cancellation was requested: return promptly."""
    return context.is_cancelled()
