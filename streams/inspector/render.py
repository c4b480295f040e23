"""HTML of the inspector pages: jinja2 templates (templates/), every value HTML-escaped by autoescape."""

from __future__ import annotations

import json
from typing import Any

import jinja2


class _PageEnvironment(jinja2.Environment):
    """Looks a dotted name up as a key first on the pages' data, which is all dicts.

    jinja2 tries the attribute first and the key after the AttributeError: on a page of 500
    entries that is thousands of exceptions per rendering. A method of a dict (``.keys()``,
    ``.get()``) is still found when the dict has no key of its name.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_env = _PageEnvironment(
    loader=jinja2.PackageLoader("streams.inspector", "templates"),
    # The templates ship with the code: compiled once, never re-read (jinja2 otherwise stats
    # each template file on every rendering).
    auto_reload=False,
    # Escaping is on for every template and value: table keys, values and message content
    # come from outside (a message whose content is "<script>" shows as text).
    autoescape=True,
    # A field a page shows may be absent from the JSON (a forwarded answer, an older worker).
    undefined=jinja2.ChainableUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)

REFRESH_SECONDS = 3


PAGES = ("worker", "table", "entry", "message", "error")


def load_templates() -> None:
    """Compile every page's template now (at start-up), so that no page compiles one on the event loop."""
    for name in PAGES:
        _env.get_template(f"{name}.html")


def page(name: str, data: dict[str, Any], *, status: int = 200, show_content: bool = False) -> str:
    """The HTML of page ``name`` (worker, table, entry, message, error) for its JSON ``data``."""
    template = _env.get_template(f"{name}.html")
    return template.render(d=data, status=status, show_content=show_content, refresh_seconds=REFRESH_SECONDS)
