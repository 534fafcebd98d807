"""composer: an open, property-based autonomous test composer for distributed systems.

The public entry point is the ``composer`` command (``composer.cli.main``). Tests drive
clusters through ``composer.Cluster`` (``composer.api``; a ``cluster`` fixture comes with
the pytest plugin, ``composer.pytest_plugin``) and ducktape-style services through
``composer.Service`` and ``composer.run_parallel`` (``composer.service``). Library users
reach the other pieces through their modules: ``composer.config.load``,
``composer.templates.discover``, ``composer.explore.explore``.
"""

__version__ = "0.1.0"
#: public name -> the module that defines it, imported on first use (the command line
#: does not need them)
_HOMES = {"Cluster": "api", "Node": "api", "Process": "api", "Result": "api",
          "CommandFailed": "api", "Service": "service", "run_parallel": "service"}
__all__ = list(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"composer.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'composer' has no attribute {name!r}")
