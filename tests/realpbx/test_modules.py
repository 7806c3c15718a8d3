"""dialplans/modules.conf is `autoload = no` with exactly the modules a call needs: the
whole tier runs on it as shipped; here, every module it names is running."""

from __future__ import annotations

import re

from asteriskkit import DIALPLANS, RealAsterisk


def test_every_module_the_shipped_modules_conf_loads_is_running(pbx: RealAsterisk) -> None:
    text = (DIALPLANS / "modules.conf").read_text()
    assert re.search(r"(?m)^autoload = no$", text)
    wanted = re.findall(r"(?m)^load => (\S+)", text)
    shown = pbx.cli("module show")
    running = set(re.findall(r"(?m)^(\S+\.so)\s.*\bRunning\b", shown))
    assert [m for m in wanted if m not in running] == [], shown
    # Nothing else was loaded: the file is the whole set.
    assert sorted(running) == sorted(wanted), sorted(running ^ set(wanted))
