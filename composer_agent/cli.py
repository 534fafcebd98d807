"""The ``composer-agent`` command: ``serve`` runs an agent, ``certs`` makes certificates.

Imports ``composer_agent.tls``, ``composer_agent.server`` (``composer_agent.certs`` only for ``certs``) and the
standard library; it only parses and checks arguments, so usage errors (a missing
certificate, a port in use) exit with status 2 and one line that says what to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import shlex
import shutil
import ssl
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from composer_agent.tls import Credentials, server_context
from composer_agent.server import serve

__all__ = ["main"]

_LISTEN_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``composer-agent`` with ``argv`` (default: the command line); return the status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(parser, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="composer-agent",
        description="The composer's node agent: an HTTPS server (mutual TLS) that runs "
                    "processes, moves files and proxies TCP for a composer run.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "serve", help="run the agent", description=(
            "Serve until SIGTERM/SIGINT, or until no heartbeat came for the timeout; then "
            "kill every process started and exit. Prints 'composer-agent listening on "
            "https://HOST:PORT' once it accepts connections."))
    run.add_argument("--listen", required=True, metavar="HOST:PORT",
                     help="address to listen on, e.g. 10.0.0.2:7800 ([::1]:7800 for IPv6; "
                          "port 0 picks a free one)")
    run.add_argument("--ca", required=True, type=Path,
                     help="CA certificate (PEM) that client certificates must come from")
    run.add_argument("--cert", required=True, type=Path, help="this agent's certificate (PEM)")
    run.add_argument("--key", required=True, type=Path, help="this agent's private key (PEM)")
    run.add_argument("--root", type=Path,
                     help="working directory, holding logs/ of detached processes "
                          "(default: a temporary directory removed on exit)")
    run.add_argument("--heartbeat-timeout", type=float, default=30.0, metavar="SECONDS",
                     help="stop after this long without a heartbeat; 0: never "
                          "(default: %(default)r)")
    run.add_argument("--poweroff", action="store_true",
                     help="on heartbeat loss, power the node off instead of exiting")
    run.set_defaults(run=_serve)

    certs = commands.add_parser(
        "certs", help="make a CA, a server and a client certificate", description=(
            "Write ca.pem/ca.key, server.pem/server.key (every --hosts entry in its "
            "SubjectAltName) and client.pem/client.key into DIR; keys get mode 0600."))
    certs.add_argument("directory", type=Path, metavar="DIR",
                       help="where to write (must not hold a CA yet)")
    certs.add_argument("--hosts", required=True, metavar="H1,H2",
                       help="comma-separated addresses and DNS names clients will dial")
    certs.add_argument("--hours", type=float, default=24.0,
                       help="validity of the certificates (default: %(default)r)")
    certs.set_defaults(run=_certs)
    return parser


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    host, port = _listen(parser, args.listen)
    credentials = Credentials(ca=args.ca, cert=args.cert, key=args.key)
    for flag, path in (("--ca", args.ca), ("--cert", args.cert), ("--key", args.key)):
        if not path.is_file():
            parser.error(f"{flag} {path}: no such file (make certificates with "
                         "'composer-agent certs DIR --hosts ADDRESS')")
    try:
        server_context(credentials)
    except (ssl.SSLError, OSError, ValueError) as exc:
        parser.error(f"--ca/--cert/--key: cannot load them for TLS: {exc}")
    if args.heartbeat_timeout < 0:
        parser.error(f"--heartbeat-timeout {args.heartbeat_timeout}: give seconds >= 0")
    temporary = args.root is None
    root = Path(tempfile.mkdtemp(prefix="composer-agent-")) if temporary else args.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        return asyncio.run(serve(host, port, credentials, root=root.resolve(),
                                 heartbeat_timeout=args.heartbeat_timeout,
                                 poweroff=args.poweroff))
    except OSError as exc:
        if exc.errno not in _LISTEN_ERRORS:
            raise
        print(f"composer-agent: error: cannot listen on {args.listen}: {os.strerror(exc.errno)} "
              "(is another agent running there? pick another --listen)", file=sys.stderr)
        return 2
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


def _listen(parser: argparse.ArgumentParser, text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or int(port) > 65535:
        parser.error(f"--listen {text!r}: give HOST:PORT, e.g. 10.0.0.2:7800")
    return host, int(port)


def _certs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    if not hosts:
        parser.error(f"--hosts {args.hosts!r}: give at least one address or DNS name")
    if args.hours <= 0:
        parser.error(f"--hours {args.hours}: give a positive number of hours")
    directory: Path = args.directory
    if (directory / "ca.pem").exists():
        parser.error(f"{directory}/ca.pem exists: choose an empty directory, or remove it "
                     "(agents trusting the old CA would refuse the new certificates)")
    from composer_agent.certs import Authority  # cryptography: only this command needs it

    authority = Authority.create(directory, hours=args.hours)
    server = authority.issue(directory, "server", server=True, hosts=hosts, hours=args.hours)
    client = authority.issue(directory, "client", server=False, hours=args.hours)
    for path in (authority.cert, authority.key, server.cert, server.key, client.cert,
                 client.key):
        print(f"wrote {path}")
    first = f"[{hosts[0]}]" if ":" in hosts[0] else hosts[0]
    command = ["composer-agent", "serve", "--listen", f"{first}:7800", "--ca",
               str(authority.cert), "--cert", str(server.cert), "--key", str(server.key)]
    print(f"serve with: {shlex.join(command)}")
    print(f"connect with: --ca {authority.cert} --cert {client.cert} --key {client.key}")
    return 0
