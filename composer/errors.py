"""Errors every part of composer raises, and the exit codes the CLI maps them to.

Imports nothing from composer. Each error message says what is wrong (file, key or
``name=value``), and what to do about it.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode", "ComposerError", "ConfigError", "TemplateError", "InfraError"]


class ExitCode(enum.IntEnum):
    """Exit codes of the ``composer`` command."""

    #: every property holds
    OK = 0
    #: a property failed
    PROPERTY_FAILED = 1
    #: bad usage, configuration or templates
    USAGE = 2
    #: the infrastructure failed (a backend, the machine)
    INFRA = 3


class ComposerError(Exception):
    """Base of every error composer raises on purpose."""

    exit_code: ExitCode = ExitCode.INFRA


class ConfigError(ComposerError):
    """``composer.toml`` or a command-line option is wrong; the message names the key."""

    exit_code = ExitCode.USAGE


class TemplateError(ConfigError):
    """A test template is malformed; the message names the file and the fix."""


class InfraError(ComposerError):
    """The cluster backend or the machine failed in a way the project did not cause."""

    exit_code = ExitCode.INFRA
