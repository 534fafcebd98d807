"""Assertions, named and shaped exactly as in ``antithesis.assertions`` 0.4.0.

Basic: ``always``, ``always_or_unreachable``, ``sometimes``, ``reachable``,
``unreachable``. Rich, which also report the compared values as guidance:
``always_greater_than[_or_equal_to]``, ``always_less_than[_or_equal_to]``,
``sometimes_greater_than[_or_equal_to]``, ``sometimes_less_than[_or_equal_to]``,
``always_some``, ``sometimes_all``. Plus ``assert_raw`` for adapters.

Every call writes an ``antithesis_assert`` record (protocol 1.1.0) to the SDK
output, at most the first pass and the first fail per ``message`` per process;
the rich ones add ``antithesis_guidance`` records as the official SDK does. With
no output configured every function is a cheap no-op. ``message`` is the
property's name and id: give each assertion its own literal string, so
``composer`` can catalog it and report it even when it is never reached.

Imports the standard library only; never ``composer``.
"""

from __future__ import annotations

import sys
from typing import Any, Mapping, Optional

from . import _output, _tracking

__all__ = [
    "always",
    "always_or_unreachable",
    "sometimes",
    "reachable",
    "unreachable",
    "always_greater_than",
    "always_greater_than_or_equal_to",
    "always_less_than",
    "always_less_than_or_equal_to",
    "sometimes_greater_than",
    "sometimes_greater_than_or_equal_to",
    "sometimes_less_than",
    "sometimes_less_than_or_equal_to",
    "always_some",
    "sometimes_all",
    "assert_raw",
]

#: display_type -> (assert_type, must_hit), as AssertionKind in antithesis 0.4.0: the one
#: table of assertion kinds, which composer's properties, catalog and built-in properties
#: read too (not in __all__: the SDK's names are the official SDK's)
ASSERTION_KINDS = {
    "Always": ("always", True),
    "AlwaysOrUnreachable": ("always", False),
    "Sometimes": ("sometimes", True),
    "Reachable": ("reachability", True),
    "Unreachable": ("reachability", False),
}


def _emit_assert(
    condition: bool,
    message: str,
    details: Optional[Mapping[str, Any]],
    location: dict,
    hit: bool,
    must_hit: bool,
    assert_type: str,
    display_type: str,
    assert_id: str,
) -> None:
    """Dedupe and write one ``antithesis_assert`` record (keys in the official order)."""
    if not _tracking.record_hit(assert_id, location, hit, condition):
        return
    inner: dict[str, Any] = {
        "condition": condition,
        "must_hit": must_hit,
        "hit": hit,
        "id": assert_id,
        "message": message,
        "display_type": display_type,
        "assert_type": assert_type,
        "location": location,
    }
    if hit and details is not None:
        inner["details"] = _output.details_object(details)
    _output.emit({"antithesis_assert": inner}, inner, "details", assert_id)


def _basic(condition: Any, message: str, details: Any, display_type: str) -> None:
    """Common path of the basic assertions; the caller is two frames up."""
    try:
        condition = bool(condition)
        if not _output.enabled() or _tracking.peek_seen(message, condition):
            return
        assert_type, must_hit = ASSERTION_KINDS[display_type]
        location = _tracking.location_of(sys._getframe(2))
        _emit_assert(condition, message, details, location, True, must_hit, assert_type, display_type, message)
    except Exception:  # an assertion must never break the code it observes
        pass


def _merge(details: Any, guidance_data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Caller details with the guidance values merged over them (as the official SDK)."""
    if details is None:
        return guidance_data
    merged = dict(_output.details_object(details) or {})
    merged.update(guidance_data)
    return merged


def _guidance(kind: str, message: str, location: dict, maximize: bool, data: Any) -> None:
    record = {
        "guidance_type": kind,
        "id": message,
        "message": message,
        "location": location,
        "maximize": maximize,
        "hit": True,
    }
    if data is not None:
        record["guidance_data"] = data
    _output.emit({"antithesis_guidance": record}, record, "guidance_data", message, _output.OnError.DROP_RECORD)


def _rich_numeric(
    condition: bool, left: Any, right: Any, message: str, details: Any, display_type: str, maximize: bool
) -> None:
    try:
        if not _output.enabled():
            return
        location = _tracking.location_of(sys._getframe(2))
        data = {"left": left, "right": right}
        _emit_assert(bool(condition), message, _merge(details, data), location, True, True,
                     ASSERTION_KINDS[display_type][0], display_type, message)
        gap = _tracking.numeric_gap(left, right)
        if gap is None:
            _output.warn_once(6004, message)
        elif _tracking.improves(message, maximize, gap):
            _guidance("numeric", message, location, maximize, data)
    except Exception:
        pass


def _rich_boolean(
    condition: bool, named_bools: Mapping[str, bool], message: str, details: Any, display_type: str, maximize: bool
) -> None:
    try:
        if not _output.enabled():
            return
        location = _tracking.location_of(sys._getframe(2))
        data = dict(named_bools)
        _emit_assert(bool(condition), message, _merge(details, data), location, True, True,
                     ASSERTION_KINDS[display_type][0], display_type, message)
        _guidance("boolean", message, location, maximize, data)
    except Exception:
        pass


def always(condition: bool, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert ``condition`` is true every time; the property fails if it is never reached."""
    _basic(condition, message, details, "Always")


def always_or_unreachable(condition: bool, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert ``condition`` is true every time; never reaching it is fine."""
    _basic(condition, message, details, "AlwaysOrUnreachable")


def sometimes(condition: bool, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert ``condition`` is true at least once across the whole exploration."""
    _basic(condition, message, details, "Sometimes")


def reachable(message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert this line is reached at least once across the whole exploration."""
    _basic(True, message, details, "Reachable")


def unreachable(message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert this line is never reached; reaching it fails the timeline."""
    _basic(False, message, details, "Unreachable")


# Each comparison takes ``maximize`` from antithesis 0.4.0: which way ``left - right``
# moves toward flipping the assertion.


def always_greater_than(left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert ``left > right`` every time, reporting both values as guidance."""
    _rich_numeric(left > right, left, right, message, details, "Always", False)


def always_greater_than_or_equal_to(
    left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None
) -> None:
    """Assert ``left >= right`` every time, reporting both values as guidance."""
    _rich_numeric(left >= right, left, right, message, details, "Always", False)


def always_less_than(left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert ``left < right`` every time, reporting both values as guidance."""
    _rich_numeric(left < right, left, right, message, details, "Always", True)


def always_less_than_or_equal_to(
    left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None
) -> None:
    """Assert ``left <= right`` every time, reporting both values as guidance."""
    _rich_numeric(left <= right, left, right, message, details, "Always", True)


def sometimes_greater_than(left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert ``left > right`` at least once, reporting both values as guidance."""
    _rich_numeric(left > right, left, right, message, details, "Sometimes", True)


def sometimes_greater_than_or_equal_to(
    left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None
) -> None:
    """Assert ``left >= right`` at least once, reporting both values as guidance."""
    _rich_numeric(left >= right, left, right, message, details, "Sometimes", True)


def sometimes_less_than(left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert ``left < right`` at least once, reporting both values as guidance."""
    _rich_numeric(left < right, left, right, message, details, "Sometimes", False)


def sometimes_less_than_or_equal_to(
    left: Any, right: Any, message: str, details: Optional[Mapping[str, Any]] = None
) -> None:
    """Assert ``left <= right`` at least once, reporting both values as guidance."""
    _rich_numeric(left <= right, left, right, message, details, "Sometimes", False)


def always_some(named_bools: Mapping[str, bool], message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert at least one of ``named_bools`` is true every time, reporting each as guidance."""
    _rich_boolean(any(named_bools.values()), named_bools, message, details, "Always", False)


def sometimes_all(named_bools: Mapping[str, bool], message: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Assert all of ``named_bools`` are true together at least once, reporting each as guidance."""
    _rich_boolean(all(named_bools.values()), named_bools, message, details, "Sometimes", True)


def assert_raw(
    condition: bool,
    message: str,
    details: Optional[Mapping[str, Any]],
    loc_filename: str,
    loc_function: str,
    loc_class: str,
    loc_begin_line: int,
    loc_begin_column: int,
    hit: bool,
    must_hit: bool,
    assert_type: str,
    display_type: str,
    assert_id: str,
    guidance_data: Optional[Mapping[str, Any]] = None,
):
    """Write an assertion with every field given, for adapters; ``hit=False`` declares one."""
    try:
        if not _output.enabled():
            return
        if hit and guidance_data is not None:
            details = _merge(details, guidance_data)
        location = {
            "file": loc_filename,
            "function": loc_function,
            "class": loc_class,
            "begin_line": loc_begin_line,
            "begin_column": loc_begin_column,
        }
        _emit_assert(condition, message, details, location, hit, must_hit, assert_type, display_type, assert_id)
    except Exception:
        pass
