"""composer: an open, property-based autonomous test composer for distributed systems.

The public entry point is the ``composer`` command (``composer.cli.main``). Library users
reach the pieces through their modules: ``composer.config.load``,
``composer.templates.discover``, ``composer.explore.explore``.
"""

__version__ = "0.1.0"
