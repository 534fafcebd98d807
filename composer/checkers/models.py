"""Sequential specifications a history is checked against, as Knossos and Porcupine
define them: an initial state and a step that applies one operation to a state.

A step returns the next state, or ``INCONSISTENT`` when the operation could not have
returned what it did from that state. States are hashable (the linearizability search
memoises on them). An ``info`` operation's output is unknown: its step only says whether
it can take effect and what state it leaves; an info read has no effect and is dropped
before the search.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from composer.history import Operation

__all__ = ["Model", "MODELS", "INCONSISTENT", "model", "prune"]

#: What a step returns when the operation cannot follow the state.
INCONSISTENT = object()


@dataclasses.dataclass(frozen=True)
class Model:
    """A named sequential specification."""

    name: str
    initial: Any
    step: Callable[[Any, Operation], Any]
    #: the ``f`` names it knows; anything else is an error in the history
    functions: tuple[str, ...]
    #: functions that only observe, so an ``info`` one has no effect and is dropped
    reads: tuple[str, ...] = ("read",)
    #: how a state is shown to a person
    show: Callable[[Any], str] = repr
    #: the values an ``info`` operation would leave behind, and the values the
    #: operations that succeeded saw: an info operation whose values no one saw is
    #: dropped before the search (see ``prune``); None: never drop
    leaves: Callable[[Operation], tuple] | None = None
    sees: Callable[[Operation], tuple] | None = None


def prune(spec: Model, ops: list[Operation]) -> list[Operation]:
    """Drop the ``info`` operations whose effect no completed operation observed: a
    write or add of a value no read returned (and no compare-and-set expected) changes
    nothing anyone saw, so a linearization with it exists iff one without it does. Each
    pending info operation doubles what the search must rule out, so this keeps
    histories with many timeouts checkable."""
    if spec.leaves is None or spec.sees is None:
        return ops
    seen = {value for op in ops if op.type == "ok" for value in spec.sees(op)}
    pending = [op for op in ops if op.type == "info" and spec.leaves(op)]
    needed: set[int] = set()
    grown = True
    while grown:  # a kept info compare-and-set needs the value it expects: keep its writer
        grown = False
        for op in pending:
            if id(op) not in needed and any(v in seen for v in spec.leaves(op)):
                needed.add(id(op))
                seen.update(spec.sees(op))
                grown = True
    # (an operation that leaves no value, a dequeue, always stays)
    return [op for op in ops
            if op.type != "info" or not spec.leaves(op) or id(op) in needed]


def _known(op: Operation) -> bool:
    return op.type == "ok"


def _register(state: Any, op: Operation) -> Any:
    if op.f == "write":
        return op.value
    if op.f == "read":
        return state if not _known(op) or op.output == state else INCONSISTENT
    return INCONSISTENT


def _cas_register(state: Any, op: Operation) -> Any:
    if op.f == "cas":
        try:
            old, new = op.value
        except (TypeError, ValueError):
            return INCONSISTENT
        return new if state == old else INCONSISTENT
    return _register(state, op)


def _set(state: frozenset, op: Operation) -> Any:
    if op.f == "add":
        return state | {op.value}
    if op.f == "read":
        if not _known(op):
            return state
        seen = op.output if isinstance(op.output, tuple) else ()
        return state if frozenset(seen) == state and len(set(seen)) == len(seen) \
            else INCONSISTENT
    return INCONSISTENT


def _queue(state: tuple, op: Operation) -> Any:
    if op.f == "enqueue":
        return (*state, op.value)
    if op.f == "dequeue":
        if not state:  # an empty queue answers nothing
            return state if not _known(op) or op.output is None else INCONSISTENT
        if _known(op) and op.output != state[0]:
            return INCONSISTENT
        return state[1:]
    return INCONSISTENT


def _mutex(state: bool, op: Operation) -> Any:
    if op.f == "acquire":
        return True if not state else INCONSISTENT
    if op.f == "release":
        return False if state else INCONSISTENT
    return INCONSISTENT


def _register_leaves(op: Operation) -> tuple:
    if op.f == "write":
        return (op.value,)
    if op.f == "cas" and isinstance(op.value, tuple) and len(op.value) == 2:
        return (op.value[1],)
    return ()


def _register_sees(op: Operation) -> tuple:
    if op.f == "read":
        return (op.output,)
    if op.f == "cas" and isinstance(op.value, tuple) and len(op.value) == 2:
        return (op.value[0],)
    return ()


def _set_sees(op: Operation) -> tuple:
    return op.output if op.f == "read" and isinstance(op.output, tuple) else ()


MODELS: dict[str, Model] = {m.name: m for m in (
    Model("register", None, _register, ("read", "write"),
          leaves=_register_leaves, sees=_register_sees),
    Model("cas-register", None, _cas_register, ("read", "write", "cas"),
          leaves=_register_leaves, sees=_register_sees),
    Model("set", frozenset(), _set, ("add", "read"),
          show=lambda s: "{" + ", ".join(sorted(map(repr, s))) + "}",
          leaves=lambda op: (op.value,) if op.f == "add" else (), sees=_set_sees),
    Model("queue", (), _queue, ("enqueue", "dequeue"), reads=(),
          leaves=lambda op: (op.value,) if op.f == "enqueue" else (),
          sees=lambda op: (op.output,) if op.f == "dequeue" else ()),
    Model("mutex", False, _mutex, ("acquire", "release"), reads=(),
          show=lambda held: "held" if held else "free"),
)}


def model(name: str) -> Model:
    """Return the model called ``name``; ``ValueError`` naming the known ones if none is."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of "
                         f"{', '.join(MODELS)}") from None
