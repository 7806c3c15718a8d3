"""`ivr check` finds every server.yaml value `ivr serve` would fail on at start-up, with the
file, line and column (these used to pass the check and then end `ivr serve` in a traceback)."""

from __future__ import annotations

import pytest

from configkit import Example


@pytest.mark.parametrize("allow, message", [
    ('["localhost"]', "fastagi.allow: 'localhost' is not an IP address or network"),
    ('["not-an-ip"]', "fastagi.allow: 'not-an-ip' is not an IP address or network"),
    ('["-1"]', "fastagi.allow: '-1' is not an IP address or network"),
    ("[]", "fastagi.allow: empty: every FastAGI connection would be refused"),
])  # fmt: skip
def test_fastagi_allow_takes_addresses_and_networks_only(example: Example, allow: str, message: str) -> None:
    example.edit("server.yaml", 'allow: ["127.0.0.1", "::1"]', f"allow: {allow}")

    [problem] = example.problems()

    assert problem.startswith(example.where("server.yaml", "allow: ", offset=7) + ": " + message), problem


def test_networks_and_ipv6_are_allowed(example: Example) -> None:
    example.edit("server.yaml", 'allow: ["127.0.0.1", "::1"]', 'allow: ["10.0.0.0/24", "fe80::1", "127.0.0.1"]')

    assert example.problems() == []


@pytest.mark.parametrize("url, message", [
    ("mysql://root:secret@db/calls", "store.url: 'mysql://db/calls': expected postgresql://"),
    ("postgresql//db/calls", "store.url: 'postgresql//db/calls': expected postgresql://"),
    ("postgresql://ivr:secret@db", "store.url: 'postgresql://db': a PostgreSQL URL needs a host and a database name"),
])  # fmt: skip
def test_a_store_url_the_store_cannot_open_is_named_without_its_password(example: Example, url: str, message: str) -> None:
    example.edit("server.yaml", "  sqlite_path: var/calls.sqlite", f"  sqlite_path: var/calls.sqlite\n  url: {url}")

    [problem] = example.problems()

    assert message in problem and "secret" not in problem, problem


def test_a_sqlite_path_that_is_a_folder_or_another_file_is_refused(example: Example) -> None:
    (example.config / "var").mkdir(exist_ok=True)
    example.edit("server.yaml", "sqlite_path: var/calls.sqlite", "sqlite_path: var")
    assert [p.split(": ", 1)[1] for p in example.problems()] == [
        f"store.sqlite_path: {example.config / 'var'} is a folder: name the database file in it (e.g. calls.sqlite)"]

    (example.config / "hostname.sqlite").write_text("ivr-host\n")
    example.edit("server.yaml", "sqlite_path: var", "sqlite_path: hostname.sqlite")
    assert [p.split(": ", 1)[1] for p in example.problems()] == [
        f"store.sqlite_path: {example.config / 'hostname.sqlite'} exists and is not a SQLite database"]


def test_an_admin_socket_path_longer_than_a_unix_socket_takes_is_refused(example: Example) -> None:
    example.edit("server.yaml", "admin_socket: var/ivr.sock", "admin_socket: var/" + "s" * 120 + ".sock")

    [problem] = example.problems()

    assert "admin_socket: " in problem and "is longer than 107 bytes, the limit of a Unix socket path" in problem
