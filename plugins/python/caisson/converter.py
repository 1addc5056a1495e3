"""JSON conversion of arguments and results, as the SDK's default
converter does it (``json/plain``).

Encoding: JSON of the value, with dataclasses as objects, datetimes as ISO
8601 strings, UUIDs as strings and other iterables (sets, tuples) as
arrays; keys sorted, as the SDK writes them. Decoding: the parsed JSON is
converted into the type hint of the parameter (or of the return value):
dataclasses (unknown fields ignored, missing fields take their defaults),
``list[T]``, ``dict[K, V]``, ``tuple``, ``Optional``/``Union``,
``Literal``, enums, ``datetime``, ``UUID`` and primitives. A value that
does not fit raises ``TypeError`` naming the path, e.g.
``at .items[1].qty: expected int, found str``.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import json
import typing
import uuid
from datetime import date, datetime
from enum import Enum
from typing import Any, Callable, List, Optional, Tuple

try:  # 3.10+
    from types import UnionType as _UnionType
except ImportError:  # pragma: no cover
    _UnionType = None  # type: ignore[assignment,misc]

__all__ = ["AdvancedJSONEncoder", "encode", "decode", "value_to_type", "type_hints"]


class AdvancedJSONEncoder(json.JSONEncoder):
    """The SDK's encoder: dataclasses, datetimes, UUIDs and iterables."""

    def default(self, o: Any) -> Any:
        if isinstance(o, (datetime, date)):
            return o.isoformat()
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        dict_fn = getattr(o, "dict", None) or getattr(o, "model_dump", None)
        if callable(dict_fn):
            return dict_fn()
        if isinstance(o, uuid.UUID):
            return str(o)
        if not isinstance(o, list) and isinstance(o, collections.abc.Iterable):
            return list(o)
        return super().default(o)


def encode(value: Any) -> str:
    """One JSON document for ``value`` (``null`` for None)."""
    return json.dumps(value, cls=AdvancedJSONEncoder, separators=(",", ":"), sort_keys=True)


def decode(text: str, hint: Any = None, *, what: str = "value") -> Any:
    """Parses JSON ``text`` and converts it into ``hint`` (when given).
    Errors name ``what`` (e.g. "argument `order`") and the path."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise TypeError(f"{what}: not JSON ({err}): {text[:80]!r}") from None
    if hint is None or hint is inspect.Parameter.empty:
        return value
    try:
        return value_to_type(hint, value)
    except _PathError as err:
        raise TypeError(f"{what}{err.where()}: {err.message}") from None


class _PathError(TypeError):
    def __init__(self, message: str, path: Tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def at(self, step: str) -> "_PathError":
        return _PathError(self.message, (step,) + self.path)

    def where(self) -> str:
        return f" at `{''.join(self.path)}`" if self.path else ""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "int", float: "float", str: "str", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _expected(name: str, value: Any) -> _PathError:
    return _PathError(f"expected {name}, found {_kind(value)} {json.dumps(value)[:40] if _kind(value) in ('int', 'float', 'str', 'bool') else ''}".rstrip())


def value_to_type(hint: Any, value: Any) -> Any:
    """Converts parsed JSON ``value`` into type ``hint`` (see the module doc)."""
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return value
    if hint is datetime:
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise _PathError(f"not an ISO 8601 datetime: {value!r}") from None
        raise _expected("datetime (ISO 8601 string)", value)
    if hint is bool:
        if not isinstance(value, bool):
            raise _expected("bool", value)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            raise _expected("int", value)
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _expected("float", value)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise _expected("str", value)
        return value
    if hint is bytes:
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, list):
            return bytes(value)
        raise _expected("bytes", value)
    if hint is type(None) or hint is None:
        if value is not None:
            raise _expected("null", value)
        return None
    supertype = getattr(hint, "__supertype__", None)  # NewType
    if supertype is not None:
        return value_to_type(supertype, value)
    if isinstance(hint, str):
        return value  # an unresolved forward reference: leave as parsed

    origin = typing.get_origin(hint) or hint
    args = typing.get_args(hint)

    if origin is typing.Literal:
        if value not in args:
            raise _PathError(f"expected one of {list(args)}, found {value!r}")
        return value
    if origin is typing.Union or (_UnionType is not None and isinstance(hint, _UnionType)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return value_to_type(arg, value)
            except TypeError as err:
                errors.append(err)
        if len(errors) == 1 and isinstance(errors[0], _PathError):
            raise errors[0]
        raise _PathError(f"expected {_type_name(hint)}, found {_kind(value)}")
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise _expected(f"object ({hint.__name__})", value)
        hints = _class_hints(hint)
        init_values, late_values = {}, {}
        for field in dataclasses.fields(hint):
            if field.name not in value:
                if field.init and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                    raise _PathError(f"missing field `{field.name}` of {hint.__name__}").at(f".{field.name}")
                continue
            try:
                converted = value_to_type(hints.get(field.name, Any), value[field.name])
            except _PathError as err:
                raise err.at(f".{field.name}") from None
            (init_values if field.init else late_values)[field.name] = converted
        obj = hint(**init_values)
        for name, v in late_values.items():
            object.__setattr__(obj, name, v)
        return obj
    if inspect.isclass(hint) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise _PathError(f"expected one of {[m.value for m in hint]}, found {value!r}") from None
    if inspect.isclass(hint) and issubclass(hint, uuid.UUID):
        if not isinstance(value, str):
            raise _expected("UUID string", value)
        return hint(value)
    if inspect.isclass(origin) and issubclass(origin, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise _expected("object", value)
        key_type = args[0] if args else None
        value_type = args[1] if len(args) > 1 else None
        typed_keys = _class_hints(origin) if getattr(origin, "__required_keys__", None) is not None else None
        out = {}
        for k, v in value.items():
            if key_type in (int, float):
                try:
                    k = key_type(k)
                except ValueError:
                    raise _PathError(f"key {k!r} is not {key_type.__name__}") from None
            vt = typed_keys.get(k) if typed_keys is not None else value_type
            try:
                out[k] = value_to_type(vt, v) if vt is not None else v
            except _PathError as err:
                raise err.at(f"[{json.dumps(k)}]") from None
        return hint(**out) if typed_keys is not None else out
    if inspect.isclass(origin) and issubclass(origin, collections.abc.Iterable) and origin not in (str, bytes):
        if not isinstance(value, list):
            raise _expected("array", value)
        items = []
        for i, item in enumerate(value):
            if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
                if i >= len(args):
                    raise _PathError(f"expected at most {len(args)} items, found {len(value)}")
                item_type = args[i]
            else:
                item_type = args[0] if args else Any
            try:
                items.append(value_to_type(item_type, item))
            except _PathError as err:
                raise err.at(f"[{i}]") from None
        if origin in (list, collections.abc.Sequence, collections.abc.Iterable, collections.abc.MutableSequence):
            return items
        return origin(items)
    if inspect.isclass(hint) and isinstance(value, hint):
        return value
    raise _PathError(f"cannot convert {_kind(value)} to {_type_name(hint)}")


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


_hint_cache: dict = {}


def _class_hints(cls: type) -> dict:
    hints = _hint_cache.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable forward references: fields stay as parsed
            hints = {}
        _hint_cache[cls] = hints
    return hints


def type_hints(fn: Callable) -> Tuple[List[Tuple[str, Any]], Any]:
    """The positional parameters (name, hint) of ``fn`` without ``self``,
    and its return hint (``Any`` where unannotated)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    params = []
    for index, p in enumerate(inspect.signature(fn).parameters.values()):
        if index == 0 and p.name == "self":
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            params.append((p.name, p.kind))
            continue
        params.append((p.name, hints.get(p.name, Any)))
    return params, hints.get("return", Any)


def decode_args(params: List[Tuple[str, Any]], args: List[str], *, what: str) -> List[Any]:
    """Decodes JSON ``args`` into the parameters' types. Extra arguments
    beyond the parameters are dropped (as the SDK does); ``*args`` takes
    them undecoded."""
    out = []
    for i, text in enumerate(args):
        if i >= len(params):
            break
        name, hint = params[i]
        if hint is inspect.Parameter.VAR_POSITIONAL:
            out.extend(json.loads(t) for t in args[i:])
            break
        if hint is inspect.Parameter.VAR_KEYWORD:
            break
        out.append(decode(text, hint, what=f"{what} argument `{name}`"))
    return out


def optional_hint(hint: Any) -> Optional[Any]:
    """``hint`` unless it says nothing (Any / empty)."""
    return None if hint is Any or hint is inspect.Parameter.empty else hint
