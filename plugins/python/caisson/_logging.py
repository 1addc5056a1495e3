"""``workflow.logger`` and ``activity.logger``: standard ``logging``
loggers whose records go to the host's log (tagged by the worker with the
workflow or activity), with the traceback when ``exc_info`` is given.

Outside a workflow or activity (a plain unit test) records go to
``logging``'s last-resort handler (stderr, warnings and above), as with
any unconfigured logger.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Optional


def _level_name(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


class HostLogHandler(logging.Handler):
    """Sends records to ``host_of()``'s ``log``, or to stderr without one."""

    def __init__(self, host_of: Callable[[], Optional[Any]]) -> None:
        super().__init__(logging.DEBUG)
        self._host_of = host_of
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        host = self._host_of()
        if host is None:
            if record.levelno >= logging.WARNING and logging.lastResort is not None:
                logging.lastResort.handle(record)
            return
        try:
            host.log(_level_name(record.levelno), self.format(record))
        except Exception:
            self.handleError(record)


def make_logger(name: str, host_of: Callable[[], Optional[Any]]) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if not any(isinstance(h, HostLogHandler) for h in logger.handlers):
        logger.addHandler(HostLogHandler(host_of))
    return logger


class LoggerAdapter(logging.LoggerAdapter):
    """The SDK's adapter shape (``workflow.logger.info(...)``,
    ``.base_logger``); the worker adds the workflow or activity details."""

    def __init__(self, logger: logging.Logger, extra: Optional[dict] = None) -> None:
        super().__init__(logger, extra or {})

    def process(self, msg: Any, kwargs: Any):
        return msg, kwargs

    @property
    def base_logger(self) -> logging.Logger:
        return self.logger
