"""Checkers: judge a whole history after a timeline, as Jepsen's checkers do.

Each checker is a module with ``check(history, ...) -> Verdict``; ``linearizable``
searches for a linearization against a model of ``checkers.models``. ``CHECKERS`` names
them and the models each takes, for the configuration; ``judge`` runs one by name.
"""

from __future__ import annotations

import importlib

from composer.checkers.models import MODELS
from composer.checkers.verdict import INVALID, UNKNOWN, VALID, Verdict
from composer.history import History

__all__ = ["CHECKERS", "default_name", "model_problem", "judge", "Verdict", "VALID", "INVALID", "UNKNOWN"]

#: checker name -> the models it takes (empty: none)
CHECKERS: dict[str, tuple[str, ...]] = {
    "linearizable": tuple(MODELS),
    "set": (),
    "counter": (),
    "bank": (),
    "queue": (),
    "append": (),
    "rw-register": (),
}


#: the property a check is reported as when its table names none
DEFAULT_NAMES = {
    "set": "Acknowledged set elements are never lost",
    "counter": "Counter reads are within the increments",
    "bank": "Bank transfers conserve money",
    "queue": "Queued values are dequeued exactly once",
    "append": "List-append transactions are serializable",
    "rw-register": "Register transactions are serializable",
}


def model_problem(checker: str, model: str | None) -> str | None:
    """What is wrong with running ``checker`` with ``model`` (None: nothing)."""
    if checker not in CHECKERS:
        return f"unknown checker {checker!r}; choose one of {', '.join(CHECKERS)}"
    models = CHECKERS[checker]
    if models and model not in models:
        return f"model {model!r}: the {checker} checker needs one of {', '.join(models)}"
    if not models and model is not None:
        return f"the {checker} checker takes no model"
    return None


def default_name(checker: str, model: str | None = None) -> str:
    """The name of a check whose table gives none."""
    if checker == "linearizable":
        return f"History is linearizable as a {model}"
    return DEFAULT_NAMES[checker]


def judge(checker: str, history: History, model: str | None = None,
          time_limit: float = 60.0) -> Verdict:
    """Run ``checker`` on ``history``: its module's ``check``, with ``model`` if it takes
    one."""
    problem = model_problem(checker, model)
    if problem:
        raise ValueError(problem)
    module = importlib.import_module(f"composer.checkers.{checker.replace('-', '_')}")
    if CHECKERS[checker]:
        return module.check(history, model, time_limit=time_limit)
    return module.check(history, time_limit=time_limit)
