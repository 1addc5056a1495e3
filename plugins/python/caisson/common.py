"""Shared types, as in `temporalio.common`: retry policies, priorities and
typed search attribute keys.

Search attribute keys carry their indexed type (keyword, text, int, float,
bool, datetime, keyword list), which is what Caisson's WIT sends to the
server, exactly as the SDK's typed keys do.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, Generic, Iterator, Mapping, NamedTuple, Optional, Sequence, TypeVar, Union

__all__ = [
    "RetryPolicy",
    "Priority",
    "WorkflowIDReusePolicy",
    "RawValue",
    "SearchAttributeIndexedValueType",
    "SearchAttributeKey",
    "SearchAttributePair",
    "SearchAttributeUpdate",
    "TypedSearchAttributes",
    "SearchAttributes",
    "SearchAttributeValues",
]


@dataclass
class RetryPolicy:
    """When and how often Temporal retries a failed activity or child."""

    initial_interval: timedelta = timedelta(seconds=1)
    """Backoff before the first retry. Default 1s."""
    backoff_coefficient: float = 2.0
    """Multiplier of the backoff after each retry. Default 2.0."""
    maximum_interval: Optional[timedelta] = None
    """Upper bound of the backoff. Default 100x ``initial_interval``."""
    maximum_attempts: int = 0
    """Total attempts including the first; 0 (the default) is unlimited."""
    non_retryable_error_types: Optional[Sequence[str]] = None
    """Application error types never retried."""

    def _validate(self) -> None:
        if self.maximum_attempts == 1:
            return
        if self.initial_interval.total_seconds() < 0:
            raise ValueError("Initial interval cannot be negative")
        if self.backoff_coefficient < 1:
            raise ValueError("Backoff coefficient cannot be less than 1")
        if self.maximum_interval:
            if self.maximum_interval.total_seconds() < 0:
                raise ValueError("Maximum interval cannot be negative")
            if self.maximum_interval < self.initial_interval:
                raise ValueError("Maximum interval cannot be less than initial interval")
        if self.maximum_attempts < 0:
            raise ValueError("Maximum attempts cannot be negative")


@dataclass(frozen=True)
class Priority:
    """Priority and fairness of an activity's or child's tasks."""

    priority_key: Optional[int] = None
    """1 is the highest; unset is the server's default (3 of 1-5)."""
    fairness_key: Optional[str] = None
    """Tasks with different keys share the queue fairly (e.g. a tenant id)."""
    fairness_weight: Optional[float] = None
    """Weight of this key's share (default 1.0)."""


#: No priority set (the SDK's ``Priority.default``).
Priority.default = Priority()  # type: ignore[attr-defined]


class WorkflowIDReusePolicy(IntEnum):
    """How a child's workflow id may reuse a closed one's (only the default,
    ``ALLOW_DUPLICATE``, is supported by Caisson's WIT)."""

    UNSPECIFIED = 0
    ALLOW_DUPLICATE = 1
    ALLOW_DUPLICATE_FAILED_ONLY = 2
    REJECT_DUPLICATE = 3
    TERMINATE_IF_RUNNING = 4


class RawValue:
    """An undecoded JSON value (what dynamic handlers receive): ``payload``
    is the JSON text."""

    def __init__(self, payload: str) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"RawValue({self.payload!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawValue) and other.payload == self.payload


class SearchAttributeIndexedValueType(IntEnum):
    """How the server indexes a search attribute."""

    TEXT = 1
    KEYWORD = 2
    INT = 3
    DOUBLE = 4
    BOOL = 5
    DATETIME = 6
    KEYWORD_LIST = 7


#: The WIT `search-attribute-value` case of each indexed type.
_WIT_KIND = {
    SearchAttributeIndexedValueType.TEXT: "text",
    SearchAttributeIndexedValueType.KEYWORD: "keyword",
    SearchAttributeIndexedValueType.INT: "int",
    SearchAttributeIndexedValueType.DOUBLE: "double",
    SearchAttributeIndexedValueType.BOOL: "bool",
    SearchAttributeIndexedValueType.DATETIME: "datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "keyword_list",
}
_FROM_WIT_KIND = {v: k for k, v in _WIT_KIND.items()}

T = TypeVar("T")


class SearchAttributeKey(Generic[T]):
    """A typed search attribute key: ``SearchAttributeKey.for_keyword("OrderStatus")``.

    ``key.value_set(v)`` / ``key.value_unset()`` make the updates that
    ``workflow.upsert_search_attributes`` takes.
    """

    def __init__(self, name: str, indexed_value_type: SearchAttributeIndexedValueType) -> None:
        self._name = name
        self._indexed_value_type = indexed_value_type

    @property
    def name(self) -> str:
        return self._name

    @property
    def indexed_value_type(self) -> SearchAttributeIndexedValueType:
        return self._indexed_value_type

    @property
    def value_type(self) -> type:
        return {
            SearchAttributeIndexedValueType.TEXT: str,
            SearchAttributeIndexedValueType.KEYWORD: str,
            SearchAttributeIndexedValueType.INT: int,
            SearchAttributeIndexedValueType.DOUBLE: float,
            SearchAttributeIndexedValueType.BOOL: bool,
            SearchAttributeIndexedValueType.DATETIME: datetime,
            SearchAttributeIndexedValueType.KEYWORD_LIST: list,
        }[self._indexed_value_type]

    def value_set(self, value: T) -> "SearchAttributeUpdate[T]":
        """An update setting this attribute to ``value``."""
        if value is None:
            raise ValueError(f"search attribute {self._name}: value_set(None): use value_unset() to remove it")
        return SearchAttributeUpdate(self, value)

    def value_unset(self) -> "SearchAttributeUpdate[T]":
        """An update removing this attribute."""
        return SearchAttributeUpdate(self, None)

    @staticmethod
    def for_text(name: str) -> "SearchAttributeKey[str]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.TEXT)

    @staticmethod
    def for_keyword(name: str) -> "SearchAttributeKey[str]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD)

    @staticmethod
    def for_int(name: str) -> "SearchAttributeKey[int]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.INT)

    @staticmethod
    def for_float(name: str) -> "SearchAttributeKey[float]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DOUBLE)

    @staticmethod
    def for_bool(name: str) -> "SearchAttributeKey[bool]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.BOOL)

    @staticmethod
    def for_datetime(name: str) -> "SearchAttributeKey[datetime]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DATETIME)

    @staticmethod
    def for_keyword_list(name: str) -> "SearchAttributeKey[Sequence[str]]":
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD_LIST)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SearchAttributeKey)
            and other._name == self._name
            and other._indexed_value_type == self._indexed_value_type
        )

    def __hash__(self) -> int:
        return hash((self._name, self._indexed_value_type))

    def __repr__(self) -> str:
        return f"SearchAttributeKey({self._name!r}, {self._indexed_value_type.name})"


class SearchAttributePair(NamedTuple):
    """A key with its value."""

    key: SearchAttributeKey
    value: Any


class SearchAttributeUpdate(Generic[T]):
    """Sets (value) or removes (None) one search attribute."""

    def __init__(self, key: SearchAttributeKey[T], value: Optional[T]) -> None:
        self._key = key
        self._value = value

    @property
    def key(self) -> SearchAttributeKey[T]:
        return self._key

    @property
    def value(self) -> Optional[T]:
        return self._value


class TypedSearchAttributes:
    """A collection of search attributes with typed keys (read-only)."""

    def __init__(self, search_attributes: Sequence[SearchAttributePair] = ()) -> None:
        self.search_attributes = list(search_attributes)

    def __len__(self) -> int:
        return len(self.search_attributes)

    def __iter__(self) -> Iterator[SearchAttributePair]:
        return iter(self.search_attributes)

    def __contains__(self, key: object) -> bool:
        name = key.name if isinstance(key, SearchAttributeKey) else key
        return any(p.key.name == name for p in self.search_attributes)

    def __getitem__(self, key: SearchAttributeKey[T]) -> T:
        for pair in self.search_attributes:
            if pair.key == key:
                return pair.value
        raise KeyError(key)

    def get(self, key: SearchAttributeKey[T], default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def updated(self, *pairs: SearchAttributePair) -> "TypedSearchAttributes":
        """A copy with ``pairs`` set (a None value removes the key)."""
        by_name = {p.key.name: p for p in self.search_attributes}
        for p in pairs:
            if p.value is None:
                by_name.pop(p.key.name, None)
            else:
                by_name[p.key.name] = p
        return TypedSearchAttributes(list(by_name.values()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TypedSearchAttributes) and other.search_attributes == self.search_attributes

    def __repr__(self) -> str:
        return f"TypedSearchAttributes({self.search_attributes!r})"


TypedSearchAttributes.empty = TypedSearchAttributes()  # type: ignore[attr-defined]

SearchAttributeValues = Union[Sequence[str], Sequence[int], Sequence[float], Sequence[bool], Sequence[datetime]]
#: The deprecated untyped form: attribute name to a list of values.
SearchAttributes = Mapping[str, SearchAttributeValues]
