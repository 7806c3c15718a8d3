"""dialplans/*.conf: valid for Asterisk 22 and consistent with config/ (the example configuration)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asterisk_conf import (
    Category,
    Config,
    Dialplan,
    check_dialplan,
    check_manager,
    check_pjsip,
    check_queues,
    dialplan,
    queue_members,
    read,
    split_args,
)
from ivr.flow.script import SURVEY_CONTEXT
from ivr.config.loader import LoadedConfig, load_config
from ivr.config.models import TransferNode, VoicemailNode

REPO = Path(__file__).resolve().parents[2]
DIALPLANS = REPO / "dialplans"
FILES = ["extensions.conf", "pjsip.conf", "queues.conf", "manager.conf", "voicemail.conf", "modules.conf", "musiconhold.conf"]


@pytest.fixture(scope="module")
def example() -> LoadedConfig:
    return load_config(REPO / "config")


@pytest.fixture(scope="module")
def plan() -> Dialplan:
    return dialplan(read(DIALPLANS / "extensions.conf"))


def conf(name: str) -> Config:
    return read(DIALPLANS / name)


def lines(problems: object) -> list[str]:
    return [str(p) for p in problems]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", FILES)
def test_file_reads_without_problems(name: str) -> None:
    assert lines(conf(name).problems) == []


def test_extensions_include_the_ivr_contexts() -> None:
    config = conf("extensions.conf")
    assert {c.file.name for c in config.sections()} == {"extensions.conf", "extensions_ivr.conf"}


def test_dialplan_checks(plan: Dialplan) -> None:
    assert lines(check_dialplan(plan)) == []


def missing_places(plan: Dialplan, example: LoadedConfig) -> list[str]:
    """Every dialplan place config/ sends a caller to that has no extension in the dialplan."""
    places: list[tuple[str, str, str]] = [("ivr-hotline", n, f"hotline {n}") for n in example.directory.hotlines]
    for name, queue in example.directory.queues.items():
        places.append((queue.context, queue.extension or name, f"queue {name}"))
    for name in example.routing.queues if example.routing is not None else ():
        # The controller sends a caller whose agent hung up first to ivr-survey,<queue>,1.
        places.append((SURVEY_CONTEXT, name, f"survey after ACD queue {name}"))
    for flow_name, flow in example.flows.items():
        for node_id, node in flow.nodes.items():
            if isinstance(node, TransferNode):
                places.append((node.context, node.extension, f"flows/{flow_name}.yaml {node_id}"))
            elif isinstance(node, VoicemailNode):
                places.append((node.context, node.mailbox, f"flows/{flow_name}.yaml {node_id}"))
    return [f"{why}: {ctx},{ext},1" for ctx, ext, why in places if not plan.has_place(ctx, ext)]


def test_every_place_the_example_config_names_exists(plan: Dialplan, example: LoadedConfig) -> None:
    assert missing_places(plan, example) == []
    assert plan.has_place("ivr-hotline", "400"), "the short test number 400"


def test_a_missing_place_is_found(tmp_path: Path, example: LoadedConfig) -> None:
    text = (DIALPLANS / "extensions_ivr.conf").read_text(encoding="utf-8")
    assert text.count("[ivr-voicemail]") == 1 and text.count("exten => _400XXXXXXX,") == 1
    text = text.replace("[ivr-voicemail]", "[ivr-mailbox]").replace("exten => _400XXXXXXX,", "exten => _400XXXXXX,")
    (tmp_path / "extensions_ivr.conf").write_text(text, encoding="utf-8")
    broken = dialplan(read(tmp_path / "extensions_ivr.conf"))
    assert missing_places(broken, example) == [
        "hotline 4008001234: ivr-hotline,4008001234,1",
        "hotline 4008005678: ivr-hotline,4008005678,1",
        "flows/main.yaml leave-message: ivr-voicemail,400,1",
    ]
    assert any("context 'ivr-voicemail' does not exist" in str(p) for p in check_dialplan(broken))


def _steps(plan: Dialplan, context: str) -> list[tuple[str, str]]:
    return [(s.app, s.data) for steps in plan.contexts[context].extensions.values() for _, s in sorted(steps.items())]


def test_hotline_calls_the_controller_and_handles_its_failures(plan: Dialplan, example: LoadedConfig) -> None:
    fastagi = example.server.fastagi
    assert plan.globals["IVR_AGI"] == f"agi://{fastagi.bind}:{fastagi.port}"
    steps = _steps(plan, "ivr-controller")
    assert ("AGI", "${IVR_AGI}/ivr?hotline=${EXTEN}") in steps
    conditions = " ".join(data for app, data in steps if app == "GotoIf")
    for needle in ('"${AGISTATUS}" = "FAILURE"', '"${AGISTATUS}" = "NOTFOUND"', '"${IVR_STATUS}" = "NO_HOTLINE"',
                   '"${IVR_STATUS}" = "ACTIVE"', '"${IVR_AGI_2}" != ""'):
        assert needle in conditions
    # ACTIVE before the AGI: a controller that stops or dies mid-call leaves it so, and the
    # caller goes to the fallback queue (tests/faults/test_shutdown.py).
    assert steps.index(("Set", "IVR_STATUS=ACTIVE")) < steps.index(("AGI", "${IVR_AGI}/ivr?hotline=${EXTEN}"))
    assert ("AGI", "${IVR_AGI_2}/ivr?hotline=${EXTEN}") in steps
    fallback = plan.globals["IVR_FALLBACK_QUEUE"]
    assert fallback in example.directory.queues
    assert any(app == "Goto" and data == "ivr-queue,${IVR_FALLBACK_QUEUE},1" for app, data in steps)


def test_queue_continues_to_the_survey_after_the_agent_hangs_up(plan: Dialplan) -> None:
    steps = _steps(plan, "ivr-queue")
    (queue,) = [split_args(data) for app, data in steps if app == "Queue"]
    assert "c" in queue[1], "option c: the caller continues in the dialplan when the agent hangs up"
    assert queue[4] == "${IVR_QUEUE_TIMEOUT}"
    assert ("ExecIf", '$["${IVR_LANGUAGE}" != ""]?Set(CHANNEL(language)=${IVR_LANGUAGE})') in steps
    assert ("GotoIf", '$["${QUEUESTATUS}" = "CONTINUE"]?ivr-survey,${EXTEN},1') in steps
    survey = _steps(plan, "ivr-survey")
    assert ("AGI", "${IVR_AGI}/survey?call_id=${IVR_CALL_ID}&queue=${EXTEN}") in survey


def _asterisk_queue(plan: Dialplan, name: str) -> str:
    return plan.globals.get(f"IVR_QUEUE_MAP_{name}", name)


def test_every_queue_of_the_example_config_is_in_queues_conf(plan: Dialplan, example: LoadedConfig) -> None:
    queues = {c.name for c in conf("queues.conf").sections() if c.name.lower() != "general"}
    for name, target in example.directory.queues.items():
        if target.context != "ivr-queue":
            continue
        section = _asterisk_queue(plan, target.extension or name)
        assert section.lower() != "general", (
            f"queue {name!r}: [general] holds app_queue's global settings; map it with IVR_QUEUE_MAP_{name} in extensions.conf"
        )
        assert section in queues, f"queue {name!r}: no [{section}] in dialplans/queues.conf"


def test_queues_conf_options_members_and_music(plan: Dialplan) -> None:
    config = conf("queues.conf")
    assert lines(check_queues(config)) == []
    endpoints = {c.name for c in conf("pjsip.conf").sections() if c.get("type") == "endpoint"}
    for queue, members in queue_members(config).items():
        assert members, f"[{queue}] has no member"
        for member in members:
            interface = member.value.split(",")[0]
            assert interface.startswith("PJSIP/") and interface[6:] in endpoints, f"{member.file}:{member.line}: {interface}"
    classes = {c.name for c in conf("musiconhold.conf").sections()}
    for cat in config.sections():
        music = cat.get("musicclass")
        assert music is None or music in classes, f"{cat.where()}: musicclass {music} not in musiconhold.conf"


def test_pjsip_agents_caller_and_transport(plan: Dialplan) -> None:
    config = conf("pjsip.conf")
    assert lines(check_pjsip(config)) == []
    endpoints: dict[str, Category] = {c.name: c for c in config.sections() if c.get("type") == "endpoint"}
    for agent in ("1001", "1002", "1003", "1004"):
        assert endpoints[agent].get("context") == "agents"
        assert plan.has_place("ivr-transfer", agent) and plan.has_place("agents", agent)
    callers = [c for c in endpoints.values() if c.get("dtmf_mode") == "inband"]
    assert [c.get("context") for c in callers] == ["ivr-hotline"]
    for endpoint in endpoints.values():
        assert endpoint.get("context") in plan.contexts, endpoint.where()
    (transport,) = [c for c in config.sections() if c.get("type") == "transport"]
    assert transport.get("protocol") == "udp"
    assert re.fullmatch(r"(127\.0\.0\.1|0\.0\.0\.0):5060", transport.get("bind") or "")


def test_voicemail_has_every_mailbox_the_flows_name(plan: Dialplan, example: LoadedConfig) -> None:
    boxes = {v.name for c in conf("voicemail.conf").sections("ivr") for v in c.variables if v.object}
    named = {node.mailbox for flow in example.flows.values() for node in flow.nodes.values() if isinstance(node, VoicemailNode)}
    assert named and named <= boxes
    assert plan.globals["IVR_MAILBOX"] in boxes
    assert any(app == "VoiceMail" and data.startswith("${EXTEN}@ivr,") for app, data in _steps(plan, "ivr-voicemail"))


def test_modules_are_loaded() -> None:
    (modules,) = conf("modules.conf").sections("modules")
    loaded = {v.value for v in modules.variables if v.name == "load"}
    wanted = ("res_agi app_mixmonitor app_queue app_dial app_voicemail func_channel chan_pjsip res_musiconhold"
              " res_manager_devicestate")  # DeviceStateList, sent after every AMI login
    assert {f"{m}.so" for m in wanted.split()} <= loaded


def _controller_user(example: LoadedConfig) -> Category:
    config = conf("manager.conf")
    users = config.sections(example.server.ami.username)
    assert len(users) == 1, f"manager.conf has no [{example.server.ami.username}] (config/server.yaml ami.username)"
    return users[0]


def test_manager_user_for_the_controller(example: LoadedConfig) -> None:
    config = conf("manager.conf")
    assert lines(check_manager(config)) == []
    (general,) = config.sections("general")
    assert (general.get("bindaddr"), general.get("port")) == ("127.0.0.1", str(example.server.ami.port))
    user = _controller_user(example)
    read_classes = {c.strip() for c in (user.get("read") or "").split(",")}
    assert {"call", "agent", "dialplan"} <= read_classes
    assert user.get("secret"), "an AMI user without a secret can never log in"
    assert user.get("permit") and user.get("deny")


def test_manager_secret_matches_server_yaml(example: LoadedConfig) -> None:
    ami = example.server.ami
    if not ami.secret:
        pytest.skip(
            "config/server.yaml has ami.secret \"\" (ami.enabled: false): set it to manager.conf's secret "
            "when attaching Asterisk"
        )
    assert _controller_user(example).get("secret") == ami.secret


# What the controller sends over AMI (ivr.ami.client: the callback worker's Originate, the
# DeviceStateList after every login) and the privilege Asterisk 22 requires for it
# (`manager show command <Action>`; Ping and Login need none).
ACTIONS_SENT = {"Originate": "originate", "DeviceStateList": "call"}


def test_manager_user_may_send_what_the_controller_sends_and_no_more(example: LoadedConfig) -> None:
    write = {c.strip() for c in (_controller_user(example).get("write") or "").split(",")}
    assert write == set(ACTIONS_SENT.values())


def _attaching_section() -> str:
    readme = (REPO / "README.md").read_text()
    return readme[readme.index("## Attaching a real Asterisk 22"):readme.index("## Configuration (`config/`)")]


def test_readme_names_the_manager_permissions_manager_conf_grants(example: LoadedConfig) -> None:
    user = _controller_user(example)
    section = " ".join(_attaching_section().split())
    assert f"`read = {user.get('read')}`" in section and f"`write = {user.get('write')}`" in section
    for action, privilege in ACTIONS_SENT.items():
        assert f"`{action}` (privilege `{privilege}`" in section or f"`{action}` (`{privilege}`" in section


def test_readme_lists_exactly_the_modules_of_modules_conf() -> None:
    (modules,) = conf("modules.conf").sections("modules")
    assert (modules.get("autoload") or "").lower() == "no"
    loaded = {v.value.removesuffix(".so") for v in modules.variables if v.name == "load"}
    section = _attaching_section()
    step = section[section.index("4. Modules:"):section.index("5. Prompts:")]
    assert set(re.findall(r"`([a-z_0-9]+)`", step)) - {"autoload", "noload"} == loaded


def test_readme_sets_ivr_agi_to_the_url_extensions_conf_has(plan: Dialplan, example: LoadedConfig) -> None:
    fastagi = example.server.fastagi
    url = plan.globals["IVR_AGI"]
    assert url == f"agi://{fastagi.bind}:{fastagi.port}"
    assert f"`IVR_AGI = {url}`" in _attaching_section()


def test_agent_headers_handler_adds_the_headers_the_controller_passes(plan: Dialplan) -> None:
    """[ivr-agent-headers], the ACD Dial's b() handler: ARGn sets routing.agent_leg.HEADERS[n-1]
    on a PJSIP agent channel (X-IVR-Pop-Url only when given), then returns; pbxsim's model
    of it (ivr.pbxsim.channel.PREDIAL_HANDLERS) says the same."""
    from ivr.pbxsim.channel import PREDIAL_HANDLERS
    from routing.agent_leg import HEADERS, PREDIAL_CONTEXT

    steps = _steps(plan, PREDIAL_CONTEXT)
    assert steps[0] == ("GotoIf", '$["${CHANNEL(channeltype)}" != "PJSIP"]?done')
    added = [re.fullmatch(r"PJSIP_HEADER\(add,([\w-]+)\)=\$\{ARG(\d)\}", data) for app, data in steps if app == "Set"]
    assert [(m.group(1), int(m.group(2))) for m in added if m] == [(name, n) for n, name in enumerate(HEADERS, 1)]
    assert ("GotoIf", '$["${ARG6}" = ""]?done') in steps and steps[-1] == ("Return", "")
    model = PREDIAL_HANDLERS[PREDIAL_CONTEXT]
    assert model([f"v{n}" for n in range(1, 7)]) == {name: f"v{n}" for n, name in enumerate(HEADERS, 1)}
    assert model([f"v{n}" for n in range(1, 6)] + [""]) == {name: f"v{n}" for n, name in enumerate(HEADERS[:5], 1)}


def test_the_pre_dial_handler_has_its_modules() -> None:
    (modules,) = conf("modules.conf").sections("modules")
    loaded = {v.value for v in modules.variables if v.name == "load"}
    assert {"app_stack.so", "res_pjsip_header_funcs.so", "func_channel.so"} <= loaded  # Gosub/Return, PJSIP_HEADER
