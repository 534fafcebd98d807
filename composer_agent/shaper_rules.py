"""The iptables chains of the packet shaper: what its namespace sends goes to its queue,
and what a configuration rejects is refused on the spot.

Two tables, the same gate. In ``mangle``, ``COMPOSER_SHAPE_N`` (jumped to from OUTPUT for
IPv4 packets not leaving through ``lo`` and not carrying the shaper's mark) returns for
each exempt address and queues the rest (only towards the ``only`` subnets, if given)
with ``--queue-bypass``, so packets pass unshaped if the shaper dies. REJECT exists only
in the ``filter`` table: there ``COMPOSER_FILTER_N`` has the same gate and leads to
``COMPOSER_REJECT_N``, refilled per configuration in first-match order (a rule that does
not reject returns, so an earlier narrower rule wins over a later rejecting one, as in
the shaper's own lookup). Every change is one ``iptables-restore --noflush``
transaction. Imports only the standard library.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

__all__ = ["Rules"]


class Rules:
    """The chains of one shaper (queue ``queue``)."""

    def __init__(self, queue: int, mark: int, only: Sequence[str], exempt: Sequence[str]) -> None:
        self.shape, self.filter = f"COMPOSER_SHAPE_{queue}", f"COMPOSER_FILTER_{queue}"
        self.reject = f"COMPOSER_REJECT_{queue}"
        self._gate = ["!", "-o", "lo", "-m", "mark", "!", "--mark", hex(mark)]
        self._exempt = [["-d", address, "-j", "RETURN"] for address in exempt]
        self._only = list(only)
        self._queue = ["NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]

    def _to(self, target: list[str]) -> list[list[str]]:
        rules = list(self._exempt)
        rules += [["-d", cidr, "-j", *target] for cidr in self._only] if self._only else [
            ["-j", *target]]
        return rules

    def install(self) -> None:
        """Create the chains and jumps (replacing stale ones a killed shaper left)."""
        self.remove()
        _restore("mangle", [f":{self.shape} - [0:0]"]
                 + _lines(self.shape, self._to(self._queue))
                 + [_line("-I", "OUTPUT 1", [*self._gate, "-j", self.shape])])
        _restore("filter", [f":{self.filter} - [0:0]", f":{self.reject} - [0:0]"]
                 + _lines(self.filter, self._to([self.reject]))
                 + [_line("-I", "OUTPUT 1", [*self._gate, "-j", self.filter])])

    def set_rejects(self, rules: Sequence[tuple[str, bool]], default: bool) -> None:
        """Reject what goes to each rule's subnet whose flag is set (first match wins),
        and everything else if ``default``."""
        body = [["-d", subnet, "-j", "REJECT" if reject else "RETURN"]
                for subnet, reject in rules] if default or any(r for _, r in rules) else []
        if default:
            body.append(["-j", "REJECT"])
        _restore("filter", [f"-F {self.reject}"] + _lines(self.reject, body))

    def remove(self) -> None:
        for table, chains in (("mangle", [self.shape]), ("filter", [self.filter, self.reject])):
            listing = _iptables(table, "-S", "OUTPUT")
            for line in listing.splitlines():  # every jump to our chains, whatever its match
                words = shlex.split(line)
                if words[:2] == ["-A", "OUTPUT"] and words[-1] in chains:
                    _iptables(table, "-D", *words[1:])
            for chain in chains:
                _iptables(table, "-F", chain)
            for chain in chains:
                _iptables(table, "-X", chain)


def _line(action: str, chain: str, rule: list[str]) -> str:
    return " ".join([action, chain, *rule])  # plain words: restore takes no shell quoting


def _lines(chain: str, rules: list[list[str]]) -> list[str]:
    return [_line("-A", chain, rule) for rule in rules]


def _restore(table: str, lines: list[str]) -> None:
    script = "\n".join([f"*{table}", *lines, "COMMIT", ""])
    done = subprocess.run(["iptables-restore", "-w", "--noflush"], input=script,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"iptables-restore ({table}): {done.stderr.strip()}")


def _iptables(table: str, *args: str) -> str:
    return subprocess.run(["iptables", "-w", "-t", table, *args],
                          capture_output=True, text=True).stdout
