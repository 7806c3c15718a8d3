"""A copy of the example configuration with AMI pointed at the test's AMI peer."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def config_with_ami(tmp_path: Path, port: int, *, secret: str = "secret", reconnect_max: float = 0.2) -> Path:
    """config/ copied to tmp_path, its server.yaml enabling AMI towards 127.0.0.1:`port` with
    fast back-off; the prompts are linked (prompts.local_dir is ../prompts/sounds)."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    (tmp_path / "prompts").symlink_to(REPO / "prompts")
    server = target / "server.yaml"
    text = server.read_text()
    start = text.index("ami:")
    end = text.index("\n", text.index("reconnect_max", start))
    server.write_text(text[:start] + (
        "ami:\n  enabled: true\n  host: 127.0.0.1\n"
        f"  port: {port}\n"
        f"  username: ivr\n  secret: \"{secret}\"\n  reconnect_min: 0.05\n  reconnect_max: {reconnect_max}"
    ) + text[end:])
    return target
