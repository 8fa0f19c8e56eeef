"""Write the configs of one AudioBridge Janus and two relay Janus for `make run-scaled` (JANUS=1).

    .venv/bin/python deploy/janus_scaled.py var/janus

Prints the shell exports for Django (JANUS_URL, JANUS_RELAYS and the shared secrets). The three
configs come from the same writer the tests use (tests/janus_fixture.py: loopback only, HTTP
transport, AudioBridge and Streaming), on fixed ports 8188/8288/8388 and their own UDP ranges.
On several machines, write one config per host instead (docs/janus.md).
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.janus_fixture import write_config  # noqa: E402

NAMES = ("bridge", "relay1", "relay2")


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    api_secret, admin_secret, admin_key = (secrets.token_urlsafe(12) for _ in range(3))
    for number, name in enumerate(NAMES):
        write_config(
            root / name,
            http_port=8188 + 100 * number,
            admin_port=7188 + 100 * number,
            rtp_start=40000 + 1000 * number,
            api_secret=api_secret,
            admin_secret=admin_secret,
            admin_key=admin_key,
        )
    relays = ",".join(f"http://127.0.0.1:{8188 + 100 * n}/janus" for n in (1, 2))
    print(f"export JANUS_URL=http://127.0.0.1:8188/janus JANUS_RELAYS={relays}")
    print(f"export JANUS_API_SECRET={api_secret} JANUS_ADMIN_KEY={admin_key}")
    print(f"export JANUS_ADMIN_URL=http://127.0.0.1:7188/admin JANUS_ADMIN_SECRET={admin_secret}")
    print(f"export JANUS_CONF={root}")


if __name__ == "__main__":
    main()
