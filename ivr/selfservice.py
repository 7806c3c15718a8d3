"""Self-service lookups: ask a backend over HTTP and pick what to tell the caller.

`lookup` never raises for backend trouble (timeouts, errors, bad JSON): the menu's
`on_failure` branch handles those, so a slow CRM never leaves a caller in silence.
"""

from __future__ import annotations

import asyncio

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ivr.config.models import Condition, HttpRequest, LookupBranch

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_-]+)*$")
_MISSING = object()


class TemplateError(ValueError):
    """A placeholder names nothing known, or is not a plain name/path."""


def _path_value(data: Any, path: Sequence[str]) -> Any:
    for part in path:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _substitute(template: str, variables: Mapping[str, str], answer: Any, encode: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if not _NAME.match(name):
            raise TemplateError(f"placeholder {{{name}}} is not a plain name or answer path")
        parts = name.split(".")
        if parts[0] == "answer" and len(parts) > 1:
            value = _path_value(answer, parts[1:])
        elif len(parts) == 1 and name in variables:
            value = variables[name]
        else:
            value = _MISSING
        if value is _MISSING:
            raise TemplateError(f"placeholder {{{name}}} has no value")
        text = _text(value)
        return quote(text, safe="") if encode else text

    return _PLACEHOLDER.sub(replace, template)


def render(template: str, variables: Mapping[str, str], answer: Any = None) -> str:
    """`{name}` is a call variable, `{answer.a.0.b}` a value of the JSON answer."""
    return _substitute(template, variables, answer, encode=False)


def render_url(template: str, variables: Mapping[str, str], answer: Any = None) -> str:
    """Like `render`, but each substituted value is URL-encoded (a digit string cannot
    smuggle `/`, `?` or `&` into the backend's URL)."""
    return _substitute(template, variables, answer, encode=True)


@dataclass(frozen=True)
class LookupResult:
    ok: bool
    status: int | None
    answer: Any
    error: str | None
    elapsed_ms: float


async def lookup(
    client: httpx.AsyncClient,
    request: HttpRequest,
    variables: Mapping[str, str],
    *,
    base_url: str | None = None,
) -> LookupResult:
    started = time.perf_counter()

    def done(ok: bool, status: int | None, answer: Any, error: str | None) -> LookupResult:
        return LookupResult(ok, status, answer, error, (time.perf_counter() - started) * 1000)

    try:
        url = render_url(request.url, variables)
        if url.startswith("/"):
            if not base_url:
                return done(False, None, None, f"relative URL {request.url!r} and no lookups.base_url")
            url = base_url.rstrip("/") + url
        params = {key: render(value, variables) for key, value in request.params.items()}
        headers = {key: render(value, variables) for key, value in request.headers.items()}
        body = _render_json(request.json_body, variables) if request.json_body is not None else None
    except TemplateError as exc:
        return done(False, None, None, f"template: {exc}")
    try:
        # httpx's timeout bounds each phase; the caller waits for the sum, and for a slot.
        async with asyncio.timeout(request.timeout):
            response = await client.request(
                request.method, url, params=params, headers=headers, json=body, timeout=request.timeout
            )
    except (httpx.TimeoutException, TimeoutError):
        return done(False, None, None, f"timeout after {request.timeout:g} s")
    except httpx.HTTPError as exc:
        return done(False, None, None, f"connect error: {type(exc).__name__}: {exc}")
    if not 200 <= response.status_code < 300:
        return done(False, response.status_code, None, f"HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        return done(False, response.status_code, None, "invalid JSON")
    return done(True, response.status_code, answer, None)


class GatedTransport(httpx.AsyncBaseTransport):
    """At most `limit` requests in flight; the rest wait here, not in httpcore's pool,
    whose wait queue costs time quadratic in its length (hundreds of callers at once)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int) -> None:
        self._inner = inner
        self._gate = asyncio.Semaphore(limit)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._gate:
            response = await self._inner.handle_async_request(request)
            await response.aread()  # the slot is held until the body is in
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _render_json(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return render(value, variables)
    if isinstance(value, dict):
        return {key: _render_json(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_json(item, variables) for item in value]
    return value


def matches(condition: Condition, answer: Any) -> bool:
    value = _path_value(answer, condition.field.split("."))
    if value is _MISSING:
        return condition.exists is False
    fields = condition.model_fields_set
    if condition.exists is False:
        return False
    if "equals" in fields and value != condition.equals:
        return False
    if condition.in_ is not None and value not in condition.in_:
        return False
    if condition.gt is not None or condition.lt is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if condition.gt is not None and not value > condition.gt:
            return False
        if condition.lt is not None and not value < condition.lt:
            return False
    return True


def choose_branch(branches: Sequence[LookupBranch], answer: Any) -> LookupBranch | None:
    """The first branch whose condition holds (a branch without one always matches)."""
    for branch in branches:
        if branch.when is None or matches(branch.when, answer):
            return branch
    return None
