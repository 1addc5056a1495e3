"""What the decorators record: workflow classes with their handlers, and
activity functions, plus the registry the component's exports read.

Decorating does no I/O and calls nothing of the host: componentize-py
imports the application at build time and snapshots the result, so the
registry is filled then and every instance starts with it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import converter

# ---------------------------------------------------------------- handlers


@dataclass
class HandlerDefinition:
    """A signal, query or update method (``name`` None: the dynamic one)."""

    kind: str  # "signal" | "query" | "update"
    name: Optional[str]
    fn: Callable
    description: Optional[str] = None
    validator: Optional[Callable] = None
    unfinished_policy: Any = None
    #: False for handlers set at run time (``workflow.set_signal_handler``):
    #: plain callables, not methods of the workflow class.
    is_method: bool = True
    _hints: Optional[Tuple[List[Tuple[str, Any]], Any]] = field(default=None, repr=False)

    @property
    def is_dynamic(self) -> bool:
        return self.name is None

    def hints(self) -> Tuple[List[Tuple[str, Any]], Any]:
        """(parameters, return hint), resolved on first use so forward
        references to classes defined later in the module work."""
        if self._hints is None:
            self._hints = converter.type_hints(self.fn)
        return self._hints


@dataclass
class WorkflowDefinition:
    """A ``@workflow.defn`` class."""

    name: Optional[str]  # None: dynamic
    cls: type
    run_fn: Callable
    init_takes_args: bool
    signals: Dict[Optional[str], HandlerDefinition]
    queries: Dict[Optional[str], HandlerDefinition]
    updates: Dict[Optional[str], HandlerDefinition]
    failure_exception_types: Sequence[type]
    description: Optional[str] = None
    _hints: Optional[Tuple[List[Tuple[str, Any]], Any]] = field(default=None, repr=False)

    def hints(self) -> Tuple[List[Tuple[str, Any]], Any]:
        if self._hints is None:
            self._hints = converter.type_hints(self.run_fn)
        return self._hints


@dataclass
class ActivityDefinition:
    """An ``@activity.defn`` function (``name`` None: dynamic)."""

    name: Optional[str]
    fn: Callable
    is_async: bool
    _hints: Optional[Tuple[List[Tuple[str, Any]], Any]] = field(default=None, repr=False)

    def hints(self) -> Tuple[List[Tuple[str, Any]], Any]:
        if self._hints is None:
            self._hints = converter.type_hints(self.fn)
        return self._hints


# ---------------------------------------------------------------- registry

#: Workflow definitions by type name (None: the dynamic workflow).
workflows: Dict[Optional[str], WorkflowDefinition] = {}
#: Activity definitions by type name (None: the dynamic activity).
activities: Dict[Optional[str], ActivityDefinition] = {}


def register_workflow(defn: WorkflowDefinition) -> None:
    other = workflows.get(defn.name)
    if other is not None and other.cls is not defn.cls:
        label = defn.name or "<dynamic>"
        raise ValueError(
            f"two workflow classes are named `{label}`: {other.cls.__qualname__} and {defn.cls.__qualname__} "
            f"(give one another name with @workflow.defn(name=...))"
        )
    workflows[defn.name] = defn


def register_activity(defn: ActivityDefinition) -> None:
    other = activities.get(defn.name)
    if other is not None and other.fn is not defn.fn:
        label = defn.name or "<dynamic>"
        raise ValueError(
            f"two activities are named `{label}`: {other.fn.__qualname__} and {defn.fn.__qualname__} "
            f"(give one another name with @activity.defn(name=...))"
        )
    activities[defn.name] = defn


# ---------------------------------------------------------------- class analysis


def _params(fn: Callable) -> List[inspect.Parameter]:
    return [p.replace(name="x") for p in inspect.signature(fn).parameters.values()]


def build_workflow_definition(
    cls: type, *, name: Optional[str], failure_exception_types: Sequence[type], description: Optional[str]
) -> WorkflowDefinition:
    """Collects the run method and handlers of ``cls``, checking them as
    the SDK does; problems are listed in one ``ValueError``."""
    issues: List[str] = []
    run_fn = None
    init_fn = None
    signals: Dict[Optional[str], HandlerDefinition] = {}
    queries: Dict[Optional[str], HandlerDefinition] = {}
    updates: Dict[Optional[str], HandlerDefinition] = {}
    for attr, member in inspect.getmembers(cls):
        if getattr(member, "__caisson_workflow_run", False):
            if run_fn is not None:
                issues.append(f"multiple @workflow.run methods ({run_fn.__name__} and {attr})")
            run_fn = member
        handler = getattr(member, "__caisson_handler", None)
        if isinstance(handler, HandlerDefinition):
            table = {"signal": signals, "query": queries, "update": updates}[handler.kind]
            if handler.name in table:
                issues.append(f"multiple {handler.kind} methods for `{handler.name or '<dynamic>'}`")
            table[handler.name] = handler
        if attr == "__init__" and getattr(member, "__caisson_workflow_init", False):
            init_fn = member
    if run_fn is None:
        issues.append("missing @workflow.run method")
    if init_fn is not None and run_fn is not None and _params(init_fn) != _params(run_fn):
        issues.append("@workflow.init and @workflow.run method parameters do not match")
    for u in updates.values():
        if u.validator is not None and _params(u.validator) != _params(u.fn):
            issues.append(f"update validator {u.validator.__name__} parameters do not match update method {u.fn.__name__}")
    if issues:
        raise ValueError(f"invalid workflow class {cls.__qualname__}: " + "; ".join(issues))
    # The docstring's first paragraph, on one line.
    doc = description or " ".join((inspect.getdoc(cls) or "").strip().split("\n\n")[0].split()) or None
    return WorkflowDefinition(
        name=name,
        cls=cls,
        run_fn=run_fn,  # type: ignore[arg-type]
        init_takes_args=init_fn is not None,
        signals=signals,
        queries=queries,
        updates=updates,
        failure_exception_types=tuple(failure_exception_types),
        description=doc,
    )


def workflow_definition_of(cls_or_fn: Any) -> Optional[WorkflowDefinition]:
    """The definition of a workflow class or of its run method."""
    return getattr(cls_or_fn, "__caisson_workflow_definition", None)


def activity_definition_of(fn: Any) -> Optional[ActivityDefinition]:
    """The definition of an ``@activity.defn`` function (or bound method)."""
    target = getattr(fn, "__func__", fn)
    return getattr(target, "__caisson_activity_definition", None)
