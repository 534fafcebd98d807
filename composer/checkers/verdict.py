"""What a checker says about a history: valid, invalid, or unknown (a time limit ran out
before it could tell: unknown is never shown as a pass), with an explanation a person can
follow and, for the report, the details of what went wrong. Imports only the standard
library."""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Verdict", "VALID", "INVALID", "UNKNOWN"]

VALID, INVALID, UNKNOWN = "valid", "invalid", "unknown"


@dataclasses.dataclass
class Verdict:
    """A checker's judgement of one history."""

    outcome: str
    explanation: str
    #: JSON-able specifics (the offending window of a linearizability failure, the lost
    #: elements of a set, ...), for the report and summary.json
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def valid(self) -> bool | None:
        """True, False, or None when unknown."""
        return None if self.outcome == UNKNOWN else self.outcome == VALID

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "explanation": self.explanation, **self.details}
