"""Links a node asks for itself (Testground's ``ConfigureNetwork``), and what the packet
shaper enforces for a node once faults are added to them.

A request is Testground's ``network.Config`` as its SDKs publish it (``sdk-go/network/
types.go``): ``enable``, ``default`` and ``rules`` of ``LinkShape`` (``latency`` and
``jitter`` in nanoseconds, ``bandwidth`` in bits/s, ``filter`` 0 accept / 1 reject /
2 drop, ``loss``, ``corrupt``, ``reorder``, ``duplicate`` in percent), a rule's
``subnet`` as a CIDR string or Go's ``{"IP", "Mask"}``, and ``callback_state``. Errors
name the field, and so do refusals of what the backend cannot apply. Imports only the
standard library.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from collections.abc import Collection, Mapping
from typing import Any

__all__ = ["Shape", "Link", "parse_config", "check_supported", "shaper_config"]

FILTERS = ("accept", "reject", "drop")
#: the fault kind a backend must have to apply each shape field
_NEEDS = {"latency": "latency", "jitter": "latency", "bandwidth": "bandwidth",
          "loss": "loss", "corrupt": "corrupt", "reorder": "reorder",
          "duplicate": "duplicate", "filter": "latency"}
_PERCENT = ("loss", "corrupt", "reorder", "duplicate")


@dataclasses.dataclass(frozen=True)
class Shape:
    """One link's behaviour: ms, kbit/s (0: unlimited), percent, and a filter."""

    latency: float = 0.0
    jitter: float = 0.0
    bandwidth: float = 0.0
    loss: float = 0.0
    corrupt: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0
    filter: str = "accept"

    def used(self) -> list[str]:
        """The fields that ask for something (not their defaults)."""
        return [f.name for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default]

    def describe(self) -> str:
        """In a few words: "latency 100ms jitter 10ms loss 5%"; "as is" when nothing."""
        units = {"latency": "ms", "jitter": "ms", "bandwidth": "kbit/s"}
        words = [self.filter if name == "filter" else
                 f"{name} {getattr(self, name):g}{units.get(name, '%')}" for name in self.used()]
        return " ".join(words) or "as is"


@dataclasses.dataclass(frozen=True)
class Link:
    """What a node asked for: its default shape and per-subnet rules (first match wins)."""

    default: Shape = Shape()
    rules: tuple[tuple[str, Shape], ...] = ()
    enabled: bool = True
    callback_state: str = ""

    def describe(self) -> str:
        """The link in a line, for the timeline's log."""
        if not self.enabled:
            return "disabled"
        rules = "".join(f"; to {subnet}: {shape.describe()}" for subnet, shape in self.rules)
        return self.default.describe() + rules


def parse_config(data: Any) -> Link:
    """Parse a Testground ``network.Config``; ``ValueError`` naming the field."""
    if not isinstance(data, dict):
        raise ValueError(f"a network config is a JSON object, not {type(data).__name__}")
    enabled = data.get("enable", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"enable: expected true or false, not {enabled!r}")
    rules = data.get("rules") or []
    if not isinstance(rules, list):
        raise ValueError("rules: expected a list of link rules")
    state = data.get("callback_state") or ""
    if not isinstance(state, str):
        raise ValueError(f"callback_state: expected a string, not {state!r}")
    return Link(default=_shape(data.get("default") or {}, "default"),
                rules=tuple((_subnet(r, f"rules[{i}]"), _shape(r, f"rules[{i}]"))
                            for i, r in enumerate(rules)),
                enabled=enabled, callback_state=state)


def _shape(data: Any, where: str) -> Shape:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object")
    values: dict[str, Any] = {}
    for name in ("latency", "jitter"):
        values[name] = _number(data, name, where) / 1e6  # ns -> ms
    values["bandwidth"] = _number(data, "bandwidth", where) / 1000  # bit/s -> kbit/s
    for name in _PERCENT:
        values[name] = _number(data, name, where)
        if values[name] > 100:
            raise ValueError(f"{where}.{name}: a percentage, at most 100, not {values[name]:g}")
    action = data.get("filter", 0)
    if action not in (0, 1, 2) and action not in FILTERS:
        raise ValueError(f"{where}.filter: 0 (accept), 1 (reject) or 2 (drop), not {action!r}")
    values["filter"] = FILTERS[action] if isinstance(action, int) else action
    return Shape(**values)


def _number(data: dict, name: str, where: str) -> float:
    value = data.get(name) or 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{where}.{name}: expected a number at least 0, not {value!r}")
    return float(value)


def _subnet(rule: Any, where: str) -> str:
    value = rule.get("subnet") if isinstance(rule, dict) else None
    try:
        if isinstance(value, dict):  # Go's net.IPNet: {"IP": "10.0.0.0", "Mask": base64}
            mask = base64.b64decode(value["Mask"])
            prefix = bin(int.from_bytes(mask, "big")).count("1")
            return str(ipaddress.ip_network(f"{value['IP']}/{prefix}", strict=False))
        return str(ipaddress.ip_network(str(value), strict=False))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{where}.subnet: expected a subnet like 10.77.3.0/24, "
                         f"not {value!r}") from None


def check_supported(link: Link, kinds: Collection[str], backend: str,
                    why: Mapping[str, str]) -> None:
    """``ValueError`` naming the first field ``backend`` cannot apply (``kinds``: the
    fault kinds it has; ``why``: its reasons for the rest)."""
    asked = [(f"default.{name}", name) for name in link.default.used()]
    if not link.enabled:
        asked.append(("enable", "filter"))
    for i, (_, shape) in enumerate(link.rules):
        asked += [(f"rules[{i}].{name}", name) for name in shape.used()]
        if shape.bandwidth:
            raise ValueError(f"rules[{i}].bandwidth: only the default shape can limit "
                             "bandwidth (one tbf per link)")
    for field, name in asked:
        kind = _NEEDS[name]
        if kind not in kinds:
            reason = why.get(kind, "not supported")
            raise ValueError(f"{field}: the {backend} backend cannot apply it here ({reason})")


def shaper_config(link: Link | None, faults: Mapping[str, float]) -> dict | None:
    """The packet shaper's configuration for one node: its link, with the packet faults
    in effect on it (``Network.packets``) added (the harsher value wins); None: the node
    needs no shaper."""
    link = link or Link()

    def sent(shape: Shape) -> Shape:  # a disabled link drops everything
        return shape if link.enabled else dataclasses.replace(shape, filter="drop")

    base = sent(link.default)
    if not faults and not link.rules and not _packet_fields(base):
        return None

    def merged(shape: Shape) -> dict:
        shape = sent(shape)
        out = {name: max(getattr(shape, name), faults.get(name, 0.0))
               for name in ("latency", "jitter", "loss", "corrupt", "reorder", "duplicate")}
        out = {k: v for k, v in out.items() if v}
        if shape.filter != "accept":
            out["filter"] = shape.filter
        return out

    rules = [{"subnet": subnet, **merged(shape)} for subnet, shape in link.rules]
    return {"default": merged(link.default), "rules": rules}


def _packet_fields(shape: Shape) -> list[str]:
    return [name for name in shape.used() if name != "bandwidth"]
