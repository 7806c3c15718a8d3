"""A real SIP registrar and proxy for the rig's loopback tests: kamailio on a free loopback
port, with a generated minimal configuration (registrar + usrloc in memory, tm, sl, rr),
in a temp dir. The rig's phones REGISTER with it and call each other through it, as they
do through Asterisk.

Without the binary the tests skip, except when CI=true: then they fail, so that CI never
passes without having run them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

KAMAILIO_MISSING = "kamailio not found: install it (Debian/Ubuntu: apt-get install kamailio)"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")

CONFIG = """#!KAMAILIO
# Generated for the ivr rig's tests: a registrar and proxy for phones on loopback.
debug=2
log_stderror=yes
children=2
listen=udp:127.0.0.1:{port}
mpath="{modules}"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"

modparam("usrloc", "db_mode", 0)

request_route {{
    xlog("L_INFO", "$rm $ru from $si:$sp\\n");
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("REGISTER")) {{
        save("location");
        exit;
    }}
    if (has_totag()) {{
        # pyVoIP sends in-dialog requests without Route headers, some to the AOR.
        if (!loose_route() && uri == myself) {{
            lookup("location");
        }}
        if (is_method("ACK")) {{
            forward();
            exit;
        }}
        t_relay();
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
    }}
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    t_relay();
}}
"""


def kamailio_binary() -> str:
    """The path of `kamailio`; skips the test, or fails it when CI=true, if missing."""
    path = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/usr/local/sbin")
    if path is None or not MODULES.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{KAMAILIO_MISSING}; CI=true, so the SIP loopback tests must run")
        pytest.skip(KAMAILIO_MISSING)
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def options(port: int, user: str = "ping", *, timeout: float = 0.3) -> bytes | None:
    """Send OPTIONS sip:<user>@127.0.0.1:<port>; the first response, if any comes in time."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:{user}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK-rigtest-{time.monotonic_ns()}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1:{local}>;tag=probe\r\n"
            f"To: <sip:{user}@127.0.0.1:{port}>\r\n"
            f"Call-ID: probe-{time.monotonic_ns()}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        sock.sendto(request.encode(), ("127.0.0.1", port))
        try:
            while True:
                response = sock.recv(4096)
                if not response.startswith(b"SIP/2.0 100 "):
                    return response
        except OSError:
            return None


class Kamailio:
    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_udp_port()
        self.config = workdir / "kamailio.cfg"
        self.config.write_text(CONFIG.format(port=self.port, modules=MODULES))
        self.log = workdir / "kamailio.log"
        with self.log.open("wb") as out:
            # -DD: stay in the foreground (children are still forked); -E: log to stderr.
            # A session of its own: stop() can then end the children with the main process.
            self.process = subprocess.Popen(
                [binary, "-DD", "-E", "-f", str(self.config), "-m", "32", "-M", "8"],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while options(self.port) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kamailio did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        """End kamailio and every process it forked (some children ignore SIGTERM once
        the main process is gone)."""
        group = self.process.pid  # the session leader: its pid is the process group id
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass  # every process of the group has exited
        self.process.wait()
