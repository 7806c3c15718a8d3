"""dialplans/pjsip_rig.conf: valid pjsip configuration once included in pjsip.conf."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from rigkit import REPO

sys.path.insert(0, str(REPO / "tests" / "dialplans"))
from asterisk_conf import check_pjsip, read  # noqa: E402 - the dialplan tests' Asterisk config reader


def test_the_rig_caller_sample_is_a_valid_rfc4733_caller_of_the_hotline(tmp_path: Path) -> None:
    shutil.copy(REPO / "dialplans" / "pjsip_rig.conf", tmp_path)
    pjsip = tmp_path / "pjsip.conf"
    pjsip.write_text((REPO / "dialplans" / "pjsip.conf").read_text() + "\n#include pjsip_rig.conf\n")

    config = read(pjsip)

    assert check_pjsip(config) == []
    endpoint, auth, aor = config.sections("rigcaller")
    assert (endpoint.get("type"), endpoint.get("context"), endpoint.get("dtmf_mode")) == ("endpoint", "ivr-hotline", "rfc4733")
    assert (auth.get("type"), auth.get("username")) == ("auth", "rigcaller")
    assert aor.get("type") == "aor"
