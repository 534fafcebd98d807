"""composer: an open, property-based autonomous test composer for distributed systems.

The public entry point is the ``composer`` command (``composer.cli.main``). Tests drive
clusters through ``composer.Cluster`` (``composer.api``; a ``cluster`` fixture comes with
the pytest plugin, ``composer.pytest_plugin``). Library users reach the other pieces
through their modules: ``composer.config.load``, ``composer.templates.discover``,
``composer.explore.explore``.
"""

__version__ = "0.1.0"
__all__ = ["Cluster", "Node", "Process", "Result", "CommandFailed"]


def __getattr__(name: str):
    if name in __all__:  # imported on first use: the command line does not need them
        from composer import api

        return getattr(api, name)
    raise AttributeError(f"module 'composer' has no attribute {name!r}")
