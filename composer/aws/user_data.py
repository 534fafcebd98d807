"""The script an instance runs at boot (its EC2 user data): fetch the agent, wait for the
run's certificates, serve; power off when the agent ends.

Imports only the standard library. The script is POSIX sh and needs nothing but
``python3`` (every Debian and Ubuntu cloud image has it): Python fetches the two
presigned URLs, checks the wheel's SHA-256, and unpacks it (a pure-Python wheel is a
zip, so no pip, and no clash with a distribution's externally managed Python). What the
agent needs and the image lacks (aiohttp; nftables, iptables and tc for network faults;
libfaketime and a C compiler for clock faults) comes from apt. The
certificates are not in the user data: composer mints them once it knows the
instances' addresses and puts them where the second URL points, which the script polls.
When the agent exits for any reason (it already powers off itself on heartbeat loss),
the script powers the machine off, and its shutdown behaviour terminates it.
"""

from __future__ import annotations

import shlex
import string

__all__ = ["script", "BOOT_LOG"]

#: where the script writes what it does (also in cloud-init's log)
BOOT_LOG = "/var/log/composer-boot.log"

_TEMPLATE = string.Template(r"""#!/bin/sh
# composer node boot: fetch composer's agent, wait for the run's certificates, serve.
set -eu
PYTHON=$${PYTHON:-python3}
DIR=$${COMPOSER_NODE_DIR:-/var/lib/composer}
WHEEL_URL=$wheel_url
WHEEL_SHA256=$wheel_digest
CREDENTIALS_URL=$credentials_url
LOG=$${COMPOSER_BOOT_LOG:-$boot_log}
exec >>"$$LOG" 2>&1
say() { echo "composer-boot: $$(date -u +%H:%M:%S) $$*"; }
say "starting"
missing=""
"$$PYTHON" -c 'import aiohttp' 2>/dev/null || missing="$$missing python3-aiohttp"
command -v nft >/dev/null 2>&1 || missing="$$missing nftables"
command -v iptables >/dev/null 2>&1 || missing="$$missing iptables"
command -v tc >/dev/null 2>&1 || missing="$$missing iproute2"
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing="$$missing faketime"
command -v cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"
if [ -n "$$missing" ]; then
  say "installing$$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing
fi
mkdir -p "$$DIR/certs" "$$DIR/root"
chmod 700 "$$DIR/certs"
fetch() {  # URL FILE [SHA256]: retried until the object exists (the certificates come late)
  "$$PYTHON" - "$$@" <<'PY'
import hashlib, json, os, sys, time, urllib.error, urllib.request
url, path = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + $fetch_seconds
while True:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            data = reply.read()
        break
    except (urllib.error.URLError, OSError) as exc:
        if time.monotonic() > deadline:
            sys.exit(f"composer-boot: {path}: not fetched: {exc}")
        time.sleep(1)
if len(sys.argv) > 3 and hashlib.sha256(data).hexdigest() != sys.argv[3]:
    sys.exit(f"composer-boot: {path}: SHA-256 differs from the one composer sent")
if path.endswith(".json"):  # the certificates: one file each, readable by root only
    for name, text in json.loads(data).items():
        fd = os.open(os.path.join(os.path.dirname(path), name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
else:
    with open(path, "wb") as out:
        out.write(data)
PY
}
say "fetching the agent"
fetch "$$WHEEL_URL" "$$DIR/agent.whl" "$$WHEEL_SHA256"
rm -rf "$$DIR/lib" && "$$PYTHON" -m zipfile -e "$$DIR/agent.whl" "$$DIR/lib"
say "waiting for the run's certificates"
fetch "$$CREDENTIALS_URL" "$$DIR/certs/credentials.json"
say "serving on port $port"
status=0
PYTHONPATH="$$DIR/lib" "$$PYTHON" -m composer_agent serve --listen 0.0.0.0:$port \
  --ca "$$DIR/certs/ca.pem" --cert "$$DIR/certs/server.pem" --key "$$DIR/certs/server.key" \
  --root "$$DIR/root" --heartbeat-timeout $heartbeat_timeout --poweroff || status=$$?
say "the agent ended (status $$status): powering off"
poweroff
""")


def script(wheel_url: str, wheel_digest: str, credentials_url: str, *, port: int,
           heartbeat_timeout: float, fetch_seconds: float = 900.0) -> str:
    """Return the boot script: the agent's wheel from ``wheel_url`` (checked against
    ``wheel_digest``), certificates from ``credentials_url`` (a JSON object of ``ca.pem``,
    ``server.pem``, ``server.key``, waited for up to ``fetch_seconds``), served on
    ``port``; no heartbeat for ``heartbeat_timeout`` s powers the machine off."""
    return _TEMPLATE.substitute(
        wheel_url=shlex.quote(wheel_url), wheel_digest=shlex.quote(wheel_digest),
        credentials_url=shlex.quote(credentials_url), boot_log=BOOT_LOG, port=int(port),
        heartbeat_timeout=f"{heartbeat_timeout:g}", fetch_seconds=f"{fetch_seconds:g}")
