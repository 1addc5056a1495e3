"""The boundary to the Caisson host, in plain Python types.

The scheduler and the activity runner talk to a *host* object with the
methods below; `WitWorkflowHost` / `WitActivityHost` implement them over
the bindings componentize-py generates for the plugin's world
(``wit_world.imports.context`` and ``.types``), and `caisson.testing`
implements them in plain CPython. Nothing else in the package imports
``wit_world``, so the library and a workflow's tests run without a
component.

The records mirror `caisson:workflow@0.2.0` and `caisson:activity@0.1.0`
(wit/workflow/types.wit, wit/activity/types.wit).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Union

# ------------------------------------------------------------ records


@dataclass
class AppError:
    """WIT `application-error`."""

    message: str
    error_type: str
    non_retryable: bool = False
    details: Optional[str] = None  # JSON


@dataclass
class RetryPolicyRecord:
    initial_interval_ms: Optional[int] = None
    backoff_coefficient: Optional[float] = None
    maximum_interval_ms: Optional[int] = None
    maximum_attempts: Optional[int] = None
    non_retryable_error_types: List[str] = field(default_factory=list)


@dataclass
class PriorityRecord:
    priority_key: Optional[int] = None
    fairness_key: Optional[str] = None
    fairness_weight: Optional[float] = None


@dataclass
class SearchAttr:
    """WIT `search-attribute`: ``kind`` is the value case (``keyword``,
    ``text``, ``int``, ``double``, ``bool``, ``datetime``,
    ``keyword_list``); ``value`` None unsets it."""

    name: str
    kind: str
    value: object = None


@dataclass
class MemoEntry:
    """WIT `memo-field`: ``value`` is JSON, None removes the field."""

    name: str
    value: Optional[str]


@dataclass
class ActivityRequest:
    activity_type: str
    args: List[str]
    task_queue: Optional[str] = None
    activity_id: Optional[str] = None
    start_to_close_timeout_ms: Optional[int] = None
    schedule_to_close_timeout_ms: Optional[int] = None
    schedule_to_start_timeout_ms: Optional[int] = None
    heartbeat_timeout_ms: Optional[int] = None
    retry_policy: Optional[RetryPolicyRecord] = None
    cancellation_type: str = "try_cancel"  # | wait_cancellation_completed | abandon
    summary: Optional[str] = None
    priority: Optional[PriorityRecord] = None


@dataclass
class LocalActivityRequest:
    activity_type: str
    args: List[str]
    activity_id: Optional[str] = None
    start_to_close_timeout_ms: Optional[int] = None
    schedule_to_close_timeout_ms: Optional[int] = None
    schedule_to_start_timeout_ms: Optional[int] = None
    retry_policy: Optional[RetryPolicyRecord] = None
    local_retry_threshold_ms: Optional[int] = None
    cancellation_type: str = "try_cancel"
    summary: Optional[str] = None


@dataclass
class ChildRequest:
    workflow_type: str
    args: List[str]
    workflow_id: Optional[str] = None
    task_queue: Optional[str] = None
    execution_timeout_ms: Optional[int] = None
    run_timeout_ms: Optional[int] = None
    retry_policy: Optional[RetryPolicyRecord] = None
    parent_close_policy: str = "terminate"  # | abandon | request_cancel
    cancellation_type: str = "wait_cancellation_completed"
    memo: List[MemoEntry] = field(default_factory=list)
    search_attributes: List[SearchAttr] = field(default_factory=list)
    static_summary: Optional[str] = None
    static_details: Optional[str] = None
    priority: Optional[PriorityRecord] = None


@dataclass
class ContinueAsNewRequest:
    workflow_type: Optional[str]
    args: List[str]
    task_queue: Optional[str] = None
    memo: List[MemoEntry] = field(default_factory=list)
    search_attributes: List[SearchAttr] = field(default_factory=list)


@dataclass
class HostWorkflowInfo:
    namespace: str
    task_queue: str
    workflow_type: str
    workflow_id: str
    run_id: str
    attempt: int
    continued_from_run_id: Optional[str]
    parent_workflow_id: Optional[str]
    memo: List[MemoEntry]
    search_attributes: List[SearchAttr]
    start_time_ms: int


@dataclass
class HostActivityInfo:
    activity_id: str
    activity_type: str
    task_queue: str
    workflow_namespace: str
    workflow_type: str
    workflow_id: str
    workflow_run_id: str
    attempt: int
    start_to_close_timeout_ms: Optional[int]
    heartbeat_timeout_ms: Optional[int]


# ------------------------------------------------------------ outcomes and events


@dataclass
class Completed:
    """WIT `outcome::completed`: the result as JSON."""

    result: str


@dataclass
class Failed:
    """WIT `outcome::failed`: ``kind`` is ``application`` (with ``error``),
    ``timeout`` (``message`` names it, e.g. ``start-to-close``),
    ``cancelled`` or ``other``."""

    kind: str
    message: str = ""
    error: Optional[AppError] = None


Outcome = Union[Completed, Failed]


@dataclass
class Resolved:
    handle: int
    outcome: Outcome


@dataclass
class SignalReceived:
    name: str
    args: List[str]


@dataclass
class QueryReceived:
    id: str
    name: str
    args: List[str]


@dataclass
class UpdateReceived:
    id: str
    name: str
    args: List[str]
    run_validator: bool


@dataclass
class CancelRequested:
    pass


Event = Union[Resolved, SignalReceived, QueryReceived, UpdateReceived, CancelRequested]

LOG_LEVELS = ("trace", "debug", "info", "warn", "error")


# ------------------------------------------------------------ over the WIT bindings


class WitWorkflowHost:
    """The host of a workflow component: ``caisson:workflow/context``.

    Takes the generated modules (and the ``Ok``/``Err`` of
    ``componentize_py_types``) from the caller: a component can only use
    modules imported at build time (componentize-py snapshots them; at run
    time a workflow has no files to import from), so ``caisson.worker``
    imports them when the application is imported."""

    def __init__(self, context: Any, types: Any, ok: Any, err: Any) -> None:
        self._c = context
        self._t = types
        self._ok = ok
        self._err = err
        self._cancellation = {
            "try_cancel": types.CancellationType.TRY_CANCEL,
            "wait_cancellation_completed": types.CancellationType.WAIT_CANCELLATION_COMPLETED,
            "abandon": types.CancellationType.ABANDON,
        }
        self._levels = {
            "trace": types.LogLevel.TRACE,
            "debug": types.LogLevel.DEBUG,
            "info": types.LogLevel.INFO,
            "warn": types.LogLevel.WARN,
            "error": types.LogLevel.ERROR,
        }

    # --- conversions to WIT
    def _retry(self, r: Optional[RetryPolicyRecord]):
        if r is None:
            return None
        return self._t.RetryPolicy(
            initial_interval_ms=r.initial_interval_ms,
            backoff_coefficient=r.backoff_coefficient,
            maximum_interval_ms=r.maximum_interval_ms,
            maximum_attempts=r.maximum_attempts,
            non_retryable_error_types=list(r.non_retryable_error_types),
        )

    def _priority(self, p: Optional[PriorityRecord]):
        if p is None:
            return None
        return self._t.Priority(priority_key=p.priority_key, fairness_key=p.fairness_key, fairness_weight=p.fairness_weight)

    def _sa(self, a: SearchAttr):
        t = self._t
        value = None
        if a.value is not None:
            case = {
                "keyword": t.SearchAttributeValue_Keyword,
                "text": t.SearchAttributeValue_Text,
                "int": t.SearchAttributeValue_Int,
                "double": t.SearchAttributeValue_Double,
                "bool": t.SearchAttributeValue_Bool,
                "datetime": t.SearchAttributeValue_Datetime,
                "keyword_list": t.SearchAttributeValue_KeywordList,
            }[a.kind]
            value = case(a.value)
        return t.SearchAttribute(name=a.name, value=value)

    def _memo(self, m: MemoEntry):
        return self._t.MemoField(name=m.name, value=m.value)

    def _app_error(self, e: AppError):
        return self._t.ApplicationError(message=e.message, error_type=e.error_type, non_retryable=e.non_retryable, details=e.details)

    # --- conversions from WIT
    def _from_sa(self, a) -> SearchAttr:
        t = self._t
        v = a.value
        if v is None:
            return SearchAttr(a.name, "keyword", None)
        kind = {
            t.SearchAttributeValue_Keyword: "keyword",
            t.SearchAttributeValue_Text: "text",
            t.SearchAttributeValue_Int: "int",
            t.SearchAttributeValue_Double: "double",
            t.SearchAttributeValue_Bool: "bool",
            t.SearchAttributeValue_Datetime: "datetime",
            t.SearchAttributeValue_KeywordList: "keyword_list",
        }[type(v)]
        return SearchAttr(a.name, kind, v.value)

    def _outcome(self, o) -> Outcome:
        t = self._t
        if isinstance(o, t.Outcome_Completed):
            return Completed(o.value)
        f = o.value
        if isinstance(f, t.Failure_Application):
            e = f.value
            return Failed("application", e.message, AppError(e.message, e.error_type, e.non_retryable, e.details))
        if isinstance(f, t.Failure_Timeout):
            return Failed("timeout", f.value)
        if isinstance(f, t.Failure_Cancelled):
            return Failed("cancelled", f.value)
        return Failed("other", f.value)

    # --- the context
    def start_activity(self, r: ActivityRequest) -> int:
        return self._c.start_activity(
            self._t.ActivityOptions(
                activity_type=r.activity_type,
                args=list(r.args),
                task_queue=r.task_queue,
                activity_id=r.activity_id,
                start_to_close_timeout_ms=r.start_to_close_timeout_ms,
                schedule_to_close_timeout_ms=r.schedule_to_close_timeout_ms,
                schedule_to_start_timeout_ms=r.schedule_to_start_timeout_ms,
                heartbeat_timeout_ms=r.heartbeat_timeout_ms,
                retry_policy=self._retry(r.retry_policy),
                cancellation_type=self._cancellation[r.cancellation_type],
                summary=r.summary,
                priority=self._priority(r.priority),
            )
        )

    def start_local_activity(self, r: LocalActivityRequest) -> int:
        return self._c.start_local_activity(
            self._t.LocalActivityOptions(
                activity_type=r.activity_type,
                args=list(r.args),
                activity_id=r.activity_id,
                start_to_close_timeout_ms=r.start_to_close_timeout_ms,
                schedule_to_close_timeout_ms=r.schedule_to_close_timeout_ms,
                schedule_to_start_timeout_ms=r.schedule_to_start_timeout_ms,
                retry_policy=self._retry(r.retry_policy),
                local_retry_threshold_ms=r.local_retry_threshold_ms,
                cancellation_type=self._cancellation[r.cancellation_type],
                summary=r.summary,
            )
        )

    def start_timer(self, duration_ms: int, summary: Optional[str]) -> int:
        return self._c.start_timer(duration_ms, summary)

    def start_child_workflow(self, r: ChildRequest) -> int:
        t = self._t
        return self._c.start_child_workflow(
            t.ChildWorkflowOptions(
                workflow_type=r.workflow_type,
                args=list(r.args),
                workflow_id=r.workflow_id,
                task_queue=r.task_queue,
                execution_timeout_ms=r.execution_timeout_ms,
                run_timeout_ms=r.run_timeout_ms,
                retry_policy=self._retry(r.retry_policy),
                parent_close_policy={
                    "terminate": t.ParentClosePolicy.TERMINATE,
                    "abandon": t.ParentClosePolicy.ABANDON,
                    "request_cancel": t.ParentClosePolicy.REQUEST_CANCEL,
                }[r.parent_close_policy],
                cancellation_type=self._cancellation[r.cancellation_type],
                memo=[self._memo(m) for m in r.memo],
                search_attributes=[self._sa(a) for a in r.search_attributes],
                static_summary=r.static_summary,
                static_details=r.static_details,
                priority=self._priority(r.priority),
            )
        )

    def signal_external_workflow(self, workflow_id: str, signal_name: str, args: List[str]) -> int:
        return self._c.signal_external_workflow(workflow_id, signal_name, list(args))

    def cancel(self, handle: int) -> None:
        self._c.cancel(handle)

    def wait(self, handles: List[int]) -> Event:
        t = self._t
        e = self._c.wait(list(handles))
        if isinstance(e, t.Event_Resolved):
            return Resolved(e.value.handle, self._outcome(e.value.outcome))
        if isinstance(e, t.Event_Signal):
            return SignalReceived(e.value.name, list(e.value.args))
        if isinstance(e, t.Event_Query):
            return QueryReceived(e.value.id, e.value.name, list(e.value.args))
        if isinstance(e, t.Event_Update):
            return UpdateReceived(e.value.id, e.value.name, list(e.value.args), e.value.run_validator)
        return CancelRequested()

    def respond_query(self, id: str, answer: Optional[str], error: Optional[str] = None) -> None:
        self._c.respond_query(id, self._ok(answer) if error is None else self._err(error))

    def accept_update(self, id: str) -> None:
        self._c.accept_update(id)

    def reject_update(self, id: str, error: AppError) -> None:
        self._c.reject_update(id, self._app_error(error))

    def complete_update(self, id: str, result: Optional[str], error: Optional[AppError] = None) -> None:
        self._c.complete_update(id, self._ok(result) if error is None else self._err(self._app_error(error)))

    def upsert_search_attributes(self, attributes: List[SearchAttr]) -> None:
        self._c.upsert_search_attributes([self._sa(a) for a in attributes])

    def upsert_memo(self, fields: List[MemoEntry]) -> None:
        self._c.upsert_memo([self._memo(m) for m in fields])

    def set_current_details(self, details: str) -> None:
        self._c.set_current_details(details)

    def end_cancelled(self) -> None:
        self._c.end_cancelled()

    def is_cancel_requested(self) -> bool:
        return self._c.is_cancel_requested()

    def now_ms(self) -> int:
        return self._c.now_ms()

    def random_u64(self) -> int:
        return self._c.random_u64()

    def patched(self, patch_id: str) -> bool:
        return self._c.patched(patch_id)

    def deprecate_patch(self, patch_id: str) -> None:
        self._c.deprecate_patch(patch_id)

    def info(self) -> HostWorkflowInfo:
        i = self._c.info()
        return HostWorkflowInfo(
            namespace=i.namespace,
            task_queue=i.task_queue,
            workflow_type=i.workflow_type,
            workflow_id=i.workflow_id,
            run_id=i.run_id,
            attempt=i.attempt,
            continued_from_run_id=i.continued_from_run_id,
            parent_workflow_id=i.parent_workflow_id,
            memo=[MemoEntry(m.name, m.value) for m in i.memo],
            search_attributes=[self._from_sa(a) for a in i.search_attributes],
            start_time_ms=i.start_time_ms,
        )

    def is_replaying(self) -> bool:
        return self._c.is_replaying()

    def log(self, level: str, message: str) -> None:
        self._c.log(self._levels[level], message)

    def continue_as_new(self, r: ContinueAsNewRequest) -> None:
        self._c.continue_as_new(
            self._t.ContinueAsNewOptions(
                workflow_type=r.workflow_type,
                args=list(r.args),
                task_queue=r.task_queue,
                memo=[self._memo(m) for m in r.memo],
                search_attributes=[self._sa(a) for a in r.search_attributes],
            )
        )


class WitActivityHost:
    """The host of an activity component: ``caisson:activity/context``
    (given the generated modules, as `WitWorkflowHost`)."""

    def __init__(self, context: Any, types: Any) -> None:
        self._c = context
        self._t = types
        self._levels = {
            "trace": types.LogLevel.TRACE,
            "debug": types.LogLevel.DEBUG,
            "info": types.LogLevel.INFO,
            "warn": types.LogLevel.WARN,
            "error": types.LogLevel.ERROR,
        }

    def heartbeat(self, details: Optional[str]) -> None:
        self._c.heartbeat(details)

    def last_heartbeat_details(self) -> Optional[str]:
        return self._c.last_heartbeat_details()

    def is_cancelled(self) -> bool:
        return self._c.is_cancelled()

    def info(self) -> HostActivityInfo:
        i = self._c.info()
        return HostActivityInfo(
            activity_id=i.activity_id,
            activity_type=i.activity_type,
            task_queue=i.task_queue,
            workflow_namespace=i.workflow_namespace,
            workflow_type=i.workflow_type,
            workflow_id=i.workflow_id,
            workflow_run_id=i.workflow_run_id,
            attempt=i.attempt,
            start_to_close_timeout_ms=i.start_to_close_timeout_ms,
            heartbeat_timeout_ms=i.heartbeat_timeout_ms,
        )

    def log(self, level: str, message: str) -> None:
        self._c.log(self._levels[level], message)

    def app_error(self, e: AppError):
        """The WIT record, for ``Err(...)`` out of ``dynamic.run``."""
        return self._t.ApplicationError(message=e.message, error_type=e.error_type, non_retryable=e.non_retryable, details=e.details)
