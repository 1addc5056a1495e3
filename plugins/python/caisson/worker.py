"""The component's exports: what ``app.py`` star-imports.

::

    # app.py
    from workflows import GreetingWorkflow   # @workflow.defn classes and/or
    from activities import compose_greeting  # @activity.defn functions
    from caisson.worker import *             # the exports componentize-py binds

componentize-py binds each export interface of the plugin's world to the
class of that name in the app module (``Declarations``, ``Dynamic``,
``Queries``), so importing them into ``app.py`` is all it takes. This
module reads which world the plugin was built against (the generated
``wit_world.exports``): in a workflow plugin (world
``caisson:workflow/dynamic-workflows``) the exports serve the
``@workflow.defn`` classes, in an activity plugin
(``caisson:activity/dynamic-activities``) the ``@activity.defn``
functions. Both are what was decorated by the time the app module was
imported (at build time: componentize-py snapshots it).

Every module the exports use is imported here, at build time: at run time
a component has no files to import more from.
"""
from __future__ import annotations

from typing import Any, List, Optional

from . import _definition

try:
    import wit_world.exports as _exports
    from componentize_py_types import Err, Ok
    from wit_world.imports import context as _context
    from wit_world.imports import types as _types
except ImportError as _err:  # pragma: no cover (plain CPython, outside a build)
    raise ImportError(
        "caisson.worker holds a component's exports and only imports inside componentize-py "
        "(the plugin's world generates wit_world); import caisson.workflow / caisson.activity in tests"
    ) from _err

#: "workflow" or "activity": the kind of world the plugin was built against.
KIND = "workflow" if hasattr(_exports, "Declarations") else "activity"

#: The workflow run of this instance, kept for queries after it returned.
_last_run: Optional[Any] = None


if KIND == "workflow":
    import asyncio.events

    from wit_world.exports.declarations import Handler, HandlerKind, WorkflowType

    from ._host import WitWorkflowHost
    from ._scheduler import TaskFailure, WorkflowFailed, WorkflowRuntime

    class Declarations:
        """``caisson:workflow/declarations``: the workflow types and handlers."""

        def declare(self) -> List[Any]:
            kinds = {"signal": HandlerKind.SIGNAL, "query": HandlerKind.QUERY, "update": HandlerKind.UPDATE}
            out = []
            for name in sorted(n for n in _definition.workflows if n):
                d = _definition.workflows[name]
                handlers = [
                    Handler(name=h.name, kind=kinds[h.kind], has_validator=h.validator is not None, description=h.description)
                    for table in (d.signals, d.queries, d.updates)
                    for h in sorted((h for h in table.values() if h.name), key=lambda h: h.name)
                ]
                out.append(WorkflowType(name=name, handlers=handlers, description=d.description))
            return out

    class Dynamic:
        """``caisson:workflow/dynamic``: runs one declared workflow type."""

        def run(self, workflow_type: str, args: List[str]) -> str:
            global _last_run
            host = WitWorkflowHost(_context, _types, Ok, Err)
            defn = _definition.workflows.get(workflow_type)
            if defn is None:
                known = ", ".join(sorted(n for n in _definition.workflows if n)) or "none"
                text = f"no workflow type `{workflow_type}` in this plugin (it declares: {known})"
                host.log("error", text)
                raise RuntimeError(text)
            runtime = WorkflowRuntime(defn, host)
            _last_run = runtime
            try:
                return runtime.run(args)
            except WorkflowFailed as failed:
                e = failed.error
                raise Err(host._app_error(e)) from None
            except TaskFailure as failure:
                # The host appends this last error line to the task failure;
                # raising out of the export traps, which fails the task.
                host.log("error", failure.text)
                raise

    class Queries:
        """``caisson:workflow/queries``: queries after the run returned."""

        def handle(self, name: str, args: List[str]) -> str:
            if _last_run is None:
                raise Err(f"query `{name}`: no workflow has run in this instance")
            asyncio.events._set_running_loop(_last_run)
            try:
                return _last_run.answer_query(name, args)
            except Exception as err:
                raise Err(f"{type(err).__name__}: {err}") from None
            finally:
                asyncio.events._set_running_loop(None)

    __all__ = ["Declarations", "Dynamic", "Queries"]

else:
    # Modules the standard library imports lazily on a first network
    # call, imported now so they are in the snapshot: `socket.getaddrinfo`
    # encodes host names with the `idna` codec (`urllib.request.urlopen`,
    # `http.client` and `socket.create_connection` all go through it).
    import encodings.idna  # noqa: F401

    from ._activity_runner import ActivityFailed, run_activity
    from ._host import WitActivityHost

    class Dynamic:  # type: ignore[no-redef]
        """``caisson:activity/dynamic``: the activity types, and one attempt."""

        def declare(self) -> List[str]:
            return sorted(n for n in _definition.activities if n)

        def run(self, activity_type: str, args: List[str]) -> str:
            host = WitActivityHost(_context, _types)
            try:
                return run_activity(host, activity_type, args)
            except ActivityFailed as failed:
                raise Err(host.app_error(failed.error)) from None

    __all__ = ["Dynamic"]
