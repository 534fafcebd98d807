"""The one Jinja environment of ``report.html``: templates in ``report_templates/``,
autoescaped, since nearly every value shown (project, commands, properties, messages,
details, logs) was written by users or their programs. Its own module, so the report's
parts (``html_report``, ``html_timeline``, ``html_search``) each render with it without
importing one another."""

from __future__ import annotations

import functools

import jinja2

__all__ = ["environment"]


@functools.cache
def environment() -> jinja2.Environment:
    """Build the environment once per process (compiling the templates is the costly
    part: a tenth of a second)."""
    return jinja2.Environment(loader=jinja2.PackageLoader("composer", "report_templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)
