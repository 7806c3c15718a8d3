"""`ivr agents` and `ivr queues` as a supervisor runs them, against a real `ivr serve` process
on a copy of the example configuration (its admin socket under the copy's var/)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from servekit import IVR, REPO, Served, free_port, ivr

def ivr_json(*args: str | Path) -> Any:
    result = ivr(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def agent(listing: dict[str, Any], agent_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in listing["agents"] if a["id"] == agent_id)
    return found


def test_login_pause_and_the_live_views(served: Served) -> None:
    config = served.config
    before = ivr_json("agents", "--config", config)
    assert [a["id"] for a in before["agents"]] == ["1001", "1002", "1003", "1004"]
    assert {a["presence"] for a in before["agents"]} == {"logged_out"}

    login = ivr("agents", "login", "1001", "--config", config)
    assert login.returncode == 0, login.stderr
    assert login.stdout.strip() == "1001 (张伟 (Zhang Wei)): logged_out -> ready"
    shown = agent(ivr_json("agents", "--config", config), "1001")
    assert (shown["presence"], shown["activity"], shown["name"], shown["endpoint"]) == \
        ("ready", "idle", "张伟 (Zhang Wei)", "PJSIP/1001")

    # The group's --config is passed on to the subcommand too.
    pause = ivr("agents", "--config", config, "pause", "1001")
    assert pause.returncode == 0 and "ready -> paused" in pause.stdout, pause.stderr
    assert agent(ivr_json("agents", "--config", config), "1001")["presence"] == "paused"

    queues = ivr_json("queues", "--config", config)
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    assert [q["name"] for q in queues["queues"]] == list(routing["queues"])
    billing = next(q for q in queues["queues"] if q["name"] == "billing")
    assert (billing["waiting"], billing["ready"], billing["paused"]) == ([], [], ["1001"])

    assert ivr("agents", "unpause", "1001", "--config", config).returncode == 0
    assert agent(ivr_json("agents", "--config", config), "1001")["presence"] == "ready"

    table = ivr("agents", "--config", config)
    assert table.returncode == 0
    assert "1001" in table.stdout and "Zhang Wei" in table.stdout and "ready" in table.stdout
    assert "billing" in ivr("queues", "--config", config).stdout

    unknown = ivr("agents", "pause", "9999", "--config", config)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "ivr agents pause: unknown agent '9999'; expected one of: 1001, 1002, 1003, 1004"]
    refused = ivr("agents", "pause", "1003", "--config", config)
    assert refused.returncode == 1 and "logged_out: log in first" in refused.stderr

    served.stop()
    assert not served.socket.exists()
    assert "admin: agent 1001 pause (ready -> paused (supervisor))" in served.output()


def test_pause_with_a_reason_shown_in_the_table_and_json(served: Served) -> None:
    config = served.config
    assert ivr("agents", "login", "1002", "--config", config).returncode == 0
    lunch = ivr("agents", "pause", "1002", "--reason", "lunch", "--config", config)
    assert lunch.returncode == 0, lunch.stderr
    assert lunch.stdout.strip() == "1002 (李娜 (Li Na)): ready -> paused (lunch)"
    assert agent(ivr_json("agents", "--config", config), "1002")["pause_reason"] == "lunch"
    row = next(line for line in ivr("agents", "--config", config).stdout.splitlines() if "1002" in line)
    assert "paused (lunch)" in row

    meeting = ivr("agents", "pause", "1002", "--reason", "meeting", "--config", config)
    assert meeting.stdout.strip() == "1002 (李娜 (Li Na)): paused -> paused (meeting)"
    assert ivr("agents", "pause", "1002", "--reason", "meeting", "--config", config).stdout.strip() == \
        "1002 (李娜 (Li Na)): already paused (meeting)"

    unknown = ivr("agents", "pause", "1002", "--reason", "nap", "--config", config)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "ivr agents pause: unknown pause reason 'nap'; expected one of: break, coaching, lunch, meeting, phone, "
        "supervisor, training"]
    assert agent(ivr_json("agents", "--config", config), "1002")["pause_reason"] == "meeting"

    assert ivr("agents", "unpause", "1002", "--config", config).returncode == 0
    shown = agent(ivr_json("agents", "--config", config), "1002")
    assert (shown["presence"], shown["pause_reason"]) == ("ready", "")
    # --reason is the pause's alone.
    assert ivr("agents", "login", "1002", "--reason", "lunch", "--config", config).returncode == 2


def test_watch_refreshes_until_ctrl_c(served: Served) -> None:
    watch = subprocess.Popen([*IVR, "agents", "--watch", "--json", "--config", str(served.config)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert watch.stdout is not None
    first = json.loads(watch.stdout.readline())
    assert ivr("agents", "login", "1002", "--config", served.config).returncode == 0
    deadline = time.monotonic() + 10
    while agent(json.loads(watch.stdout.readline()), "1002")["presence"] != "ready":
        assert time.monotonic() < deadline
    assert first["op"] == "agents"
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=10) == 0

    table = subprocess.Popen([*IVR, "queues", "--watch", "--config", str(served.config)],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    table.send_signal(signal.SIGINT)
    out, err = table.communicate(timeout=10)
    assert table.returncode == 0, err
    assert "billing" in out and "Traceback" not in err


@pytest.mark.parametrize("command", [("agents",), ("queues",), ("agents", "--json"), ("agents", "login", "1001"),
                                     ("agents", "unpause", "1001")])
def test_without_a_running_controller_one_line_names_the_socket(config: Path, command: tuple[str, ...]) -> None:
    result = ivr(*command, "--config", config)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no running controller" in lines[0]
    assert str(config / "var" / "ivr.sock") in lines[0]
    assert result.stdout == ""


def test_a_stale_socket_is_refused_by_the_client_and_replaced_by_serve(config: Path) -> None:
    path = config / "var" / "ivr.sock"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    result = ivr("agents", "--config", config)
    assert result.returncode == 1 and f"no running controller on {path} (connection refused)" in result.stderr
    server = Served(config)
    try:
        assert ivr("agents", "login", "1004", "--config", config).returncode == 0
        second = subprocess.run([*IVR, "serve", "--config", str(config), "--port", str(free_port())],
                                capture_output=True, text=True, timeout=60, cwd=REPO)
        assert second.returncode == 2 and "is in use" in second.stderr
        assert agent(ivr_json("agents", "--config", config), "1004")["presence"] == "ready"
    finally:
        server.stop()


def test_without_routing_yaml_the_views_say_there_is_no_acd(config: Path) -> None:
    (config / "routing.yaml").unlink()
    server = Served(config)
    try:
        for command in (("agents",), ("queues",), ("agents", "login", "1001")):
            result = ivr(*command, "--config", config)
            assert result.returncode == 1
            assert "no ACD" in result.stderr and "routing.yaml" in result.stderr
    finally:
        server.stop()
