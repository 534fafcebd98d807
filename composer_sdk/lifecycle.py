"""Lifecycle records, named and shaped exactly as in ``antithesis.lifecycle`` 0.4.0.

``setup_complete`` tells composer the system is up (``[setup] sdk = true`` waits for
it) and writes ``{"antithesis_setup": {"status": "complete", "details": ...}}``;
``send_event`` writes ``{event_name: details}`` for the timeline's log. Neither ever
raises into the caller. Imports the standard library only; never ``composer``.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from . import _output

__all__ = ["setup_complete", "send_event"]


def setup_complete(details: Optional[Mapping[str, Any]] = None) -> None:
    """Declare that the system and workload are initialised, so faults may start."""
    try:
        inner: Dict[str, Any] = {"status": "complete"}
        if details is not None:
            inner["details"] = _output.details_object(details)
        _output.emit({"antithesis_setup": inner}, inner, "details", "setup_complete")
    except Exception:
        pass


def send_event(event_name: str, details: Optional[Mapping[str, Any]] = None) -> None:
    """Record that ``event_name`` happened, with ``details``, in the timeline's log."""
    try:
        record = {event_name: {} if details is None else _output.details_object(details)}
        _output.emit(record, record, event_name, event_name, _output.OnError.EMPTY_DETAILS)
    except Exception:
        pass
