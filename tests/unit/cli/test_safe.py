"""The CLI's escaping of other users' text: controls and bidi shown, not obeyed; no rich markup."""

from __future__ import annotations

from rich.console import Console

from cli.safe import shown, shown_markup

HOSTILE = [
    "\x1b[2J",
    "\x07",
    "\x00",
    "a\rb",
    "\x7f",
    "\x9b31m",
    "\u202eevil",
    "\u2066x\u2069",
    "\x0b",
    "\x1f",
]


def test_shown_escapes_controls_and_bidi_but_keeps_text() -> None:
    assert shown("héllo 🙂 [red]x[/red]") == "héllo 🙂 [red]x[/red]"
    assert shown("\x1b[2J\x07\x00") == "\\x1b[2J\\x07\\x00"
    assert (
        shown("line\n2024-01-01 00:00:00  me  READ  forged\r")
        == "line\\n2024-01-01 00:00:00  me  READ  forged\\r"
    )
    assert shown("\u202egnp.exe\x9b") == "\\u202egnp.exe\\x9b"
    for bad in HOSTILE:
        assert all(ch.isprintable() for ch in shown(bad))


def test_shown_markup_is_not_read_as_rich_markup() -> None:
    console = Console(record=True, width=200, force_terminal=True, color_system="truecolor")
    console.print(shown_markup("[red]alert[/red] [link=http://x]click[/link] \x1b[31m"))
    assert console.export_text().strip() == "[red]alert[/red] [link=http://x]click[/link] \\x1b[31m"
    assert "\x1b[31m" not in console.export_text(styles=True)
