"""Validate a parsed YAML document against a model; turn pydantic errors into Problems.

A pydantic error location (`("nodes", "main-menu", "menu", "options", "1")`) mixes keys
of the data with union tags (`menu`) and markers (`[key]`); we walk it along the data and
the model types at once, so that every error lands on the line and column it concerns and
an unknown key is told which keys were expected.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ivr.config.problems import Problem, one_of
from ivr.config.yamlsource import Document, Path

M = TypeVar("M", bound=BaseModel)

# Errors that an unquoted YAML 1.1 scalar (9, yes, 1.10, 2026-10-01) causes in a field that
# wants a string: the string as written is what the admin meant.
_STRING_WANTED = {"string_type", "literal_error"}

_PATTERN_HINTS = {
    r"^[0-9*#]$": "expected a single key: 0-9, * or #",
    r"^[A-Za-z0-9_.-]+$": "expected letters, digits, '_', '.' or '-'",
    r"^[A-Za-z0-9_./-]+$": "expected letters, digits, '_', '.', '/' or '-'",
    r"^\d{2}:\d{2}-\d{2}:\d{2}$": "expected HH:MM-HH:MM, e.g. 09:00-18:00",
    r"^[a-z][a-z0-9_]*$": "expected lower-case letters, digits and '_', starting with a letter",
}


@dataclass
class _Located:
    path: Path  # the deepest part of the error location that exists in the data
    model: type[BaseModel] | None  # the model owning the last key, if any
    at_key: bool  # the error concerns a mapping key itself
    missing: str | None  # a required key that is absent
    complete: bool  # every data key of the location was found


def _members(tp: Any) -> list[Any]:
    """Strip Annotated and Optional; flatten unions."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        out: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is not type(None):
                out.extend(_members(arg))
        return out
    return [tp]


def _model(tp: Any) -> type[BaseModel] | None:
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info.annotation
    return Any


def expected_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _pick(members: list[Any], data: Any) -> Any:
    """The union member that fits the data (by its Literal tag field), else the first."""
    models = [m for m in members if _model(m) is not None]
    if isinstance(data, dict):
        for m in models:
            for name, info in m.model_fields.items():
                if typing.get_origin(info.annotation) is Literal and data.get(name) in typing.get_args(info.annotation):
                    return m
    return models[0] if models else (members[0] if members else Any)


def _child(tp: Any, key: str | int, data: Any) -> Any:
    members = _members(tp)
    if isinstance(key, str):
        chosen = _pick(members, data)
        model = _model(chosen)
        if model is not None:
            return _field(model, key)
        for m in members:
            if typing.get_origin(m) is dict:
                return typing.get_args(m)[1]
        return Any
    for m in members:
        origin = typing.get_origin(m)
        if origin in (tuple, list):
            return typing.get_args(m)[0]
    return Any


def locate(root: Any, data: Any, loc: tuple[str | int, ...]) -> _Located:
    tp: Any = root
    owner: type[BaseModel] | None = None
    cur = data
    path: Path = ()
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if part == "[key]":
            return _Located(path, owner, True, None, True)
        if isinstance(cur, dict):
            if isinstance(part, str) and part in cur:
                owner = _model(_pick(_members(tp), cur))
                tp = _child(tp, part, cur)
                cur = cur[part]
                path = (*path, part)
                continue
            model = _model(_pick(_members(tp), cur))
            if last and isinstance(part, str) and model is not None and part in expected_keys(model):
                return _Located(path, model, False, part, True)
            # a union tag (e.g. "menu"): narrow the type, stay on the same data
            tp = _pick(_members(tp), cur)
            continue
        if isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            tp = _child(tp, part, cur)
            cur = cur[part]
            path = (*path, part)
            owner = None
            continue
        # a tag inside a scalar's union (e.g. "str", "function-after[...]"): ignore
    return _Located(path, owner, False, None, True)


def _get(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: Any, path: Path, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"{value!r} (a yes/no value)"
    return repr(value)


def _message(err: ErrorDetails, where: _Located, doc: Document) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if where.at_key:
        key = where.path[-1] if where.path else value
        hint = _PATTERN_HINTS.get(str(ctx.get("pattern")), err["msg"])
        return f"invalid key {key!r} ({hint})"
    if kind == "extra_forbidden":
        key = str(where.path[-1]) if where.path else "?"
        names = expected_keys(where.model) if where.model is not None else []
        return f"unknown key {key!r} ({one_of(names, key)})"
    if kind == "missing":
        return f"missing required key {where.missing or err['loc'][-1]!r}"
    if kind == "union_tag_invalid":
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        return f"unknown type {ctx.get('tag')!r} ({one_of(tags, str(ctx.get('tag')))})"
    if kind == "union_tag_not_found":
        return f"missing required key 'type' (it says what kind of entry this is)"
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(str(ctx.get("pattern")), f"expected to match {ctx.get('pattern')}")
        return f"invalid value {value!r} ({hint})"
    if kind == "literal_error":
        return f"invalid value {_describe(value)} (expected {ctx.get('expected')})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping, got {_describe(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected a list, got {_describe(value)}"
    if kind == "string_type":
        return f"expected a string, got {_describe(value)}"
    if kind == "value_error" and ctx.get("error") is not None:
        return str(ctx["error"])  # a model's own rule says what is wrong in its own words
    text = err["msg"]
    if text.startswith("Input should be "):
        text = "expected " + text.removeprefix("Input should be ")
    return f"{text[0].lower()}{text[1:]}, got {_describe(value)}"


def _mark_for(err: ErrorDetails, where: _Located, doc: Document) -> Problem:
    src = doc.source
    if where.at_key or err["type"] == "extra_forbidden":
        mark = src.key(where.path)
        path = where.path[:-1] if err["type"] == "extra_forbidden" else where.path
    elif err["type"] in ("union_tag_invalid",) and (*where.path, "type") in src.values:
        mark = src.value((*where.path, "type"))
        path = (*where.path, "type")
    else:
        mark = src.value(where.path)
        path = where.path
    return Problem.at(mark, path, _message(err, where, doc))


def validate_document(model: type[M], doc: Document, empty: Any = None) -> tuple[M | None, list[Problem]]:
    """Validate `doc.data` as `model`; on failure, every error with its mark.

    `empty` is used for an empty document (None: an empty document is an error).
    """
    data = doc.data
    if data is None and empty is not None:
        data = empty
    for _ in range(20):
        try:
            return model.model_validate(data), []
        except ValidationError as exc:
            errors = exc.errors()
        fixed = False
        for err in errors:
            if err["type"] not in _STRING_WANTED:
                continue
            where = locate(model, data, err["loc"])
            text = doc.source.plain_text.get(where.path)
            if text is not None and where.path and not isinstance(_get(data, where.path), str):
                _set(data, where.path, text)
                fixed = True
        if not fixed:
            break
    problems = []
    for err in errors:
        where = locate(model, data, err["loc"])
        problems.append(_mark_for(err, where, doc))
    return None, problems
