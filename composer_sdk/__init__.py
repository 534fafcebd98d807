"""The composer SDK: the ``antithesis`` 0.4.0 Python API, name for name.

Drivers and the system under test report properties with ``always``,
``sometimes``, ``reachable``, ...; say setup is done with ``setup_complete``; and draw
randomness with ``get_random``/``random_choice`` (deterministic under
``$COMPOSER_SEED``); coordinate nodes with ``sdk.sync`` (barriers, topics). Records go
as protocol-1.1.0 JSONL to ``$COMPOSER_SDK_OUTPUT``,
else ``$ANTITHESIS_SDK_LOCAL_OUTPUT``, else nowhere. Use it flat (``sdk.always``) or
as the official modules (``from composer_sdk.assertions import always``).

Imports the standard library only; never ``composer``.
"""

from . import assertions, history, lifecycle, random, sync
from .assertions import (
    always,
    always_greater_than,
    always_greater_than_or_equal_to,
    always_less_than,
    always_less_than_or_equal_to,
    always_or_unreachable,
    always_some,
    assert_raw,
    reachable,
    sometimes,
    sometimes_all,
    sometimes_greater_than,
    sometimes_greater_than_or_equal_to,
    sometimes_less_than,
    sometimes_less_than_or_equal_to,
    unreachable,
)
from .lifecycle import send_event, setup_complete
from .random import AntithesisRandom, get_random, random_choice

__all__ = [*assertions.__all__, *lifecycle.__all__, *random.__all__]


def _check_exports() -> None:
    """Fail at import if a public name was added to a module but not re-exported here."""
    missing = [name for name in __all__ if globals().get(name) is None]
    assert not missing, f"composer_sdk/__init__.py does not re-export {missing}"


_check_exports()
