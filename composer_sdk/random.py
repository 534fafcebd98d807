"""Randomness, named and shaped exactly as in ``antithesis.random`` 0.4.0.

Deterministic where composer needs it: when ``$COMPOSER_SEED`` is set, every value
comes from one ``random.Random(seed)`` per process, so a replayed timeline repeats
each driver's choices; otherwise from the OS. Call these at the moment of each
decision, as with Antithesis. Imports the standard library only; never ``composer``.
"""

from __future__ import annotations

import os
import random as _random
import threading
from typing import Any, List

__all__ = ["get_random", "random_choice", "AntithesisRandom"]

SEED_ENV_VAR = "COMPOSER_SEED"
_U64_MAX = 2**64 - 1
_lock = threading.Lock()
_source: _random.Random | None = None


def _rng() -> _random.Random:
    """The process's source, chosen on first use from ``$COMPOSER_SEED``."""
    global _source
    with _lock:
        if _source is None:
            seed = os.environ.get(SEED_ENV_VAR, "").strip()
            if not seed:
                _source = _random.SystemRandom()
            else:
                try:
                    _source = _random.Random(int(seed))
                except ValueError:  # not an integer: still deterministic (str seeds hash)
                    _source = _random.Random(seed)
        return _source


def get_random() -> int:
    """Return a random 64-bit unsigned int (deterministic under ``$COMPOSER_SEED``)."""
    rng = _rng()
    with _lock:
        return rng.getrandbits(64)


def random_choice(things: List[Any]) -> Any:
    """Return one element of ``things``, chosen with ``get_random`` as the official SDK does.

    Raises IndexError if ``things`` is empty.
    """
    lx = len(things)
    if lx == 0:
        raise IndexError("Cannot choose from an empty sequence")
    if lx == 1:
        return things[0]
    ceiling = (_U64_MAX // lx) * lx
    val = get_random()
    while val >= ceiling:  # rejection sampling keeps the choice unbiased
        val = get_random()
    return things[val % lx]


class AntithesisRandom(_random.Random):
    """A ``random.Random`` whose every bit comes from ``get_random``."""

    def random(self) -> float:
        return (get_random() & ((1 << 53) - 1)) / (2**53)

    def getrandbits(self, k: int) -> int:
        result = 0
        bits_needed = k
        while bits_needed > 0:
            result = (result << 64) | get_random()
            bits_needed -= 64
        return result & ((1 << k) - 1)

    def _notimplemented(self, *args: Any, **kwds: Any) -> Any:
        raise NotImplementedError("AntithesisRandom state is controlled by get_random().")

    getstate = setstate = _notimplemented
