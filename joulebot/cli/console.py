"""What the commands print, and how: plain lines, one-line failures, the waiting spinner, and rich
(JSON, progress bars) loaded only by a command that uses it.

Prompts, answers, model and box names come from outside this program: they reach the terminal only
through `say`, `fail` and the spinner, which drop control characters and escape sequences, so an
answer cannot set the window's title, clear the screen, move the cursor or plant a hyperlink. Rich
interprets no markup and no emoji codes here: `[bold]` and `:smile:` in an answer stay as written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.status import Status

# ECMA-48, in its 7-bit (ESC …) and 8-bit (C1) forms: a control sequence (CSI, parameters, final
# byte); a control string (OSC, DCS, SOS, PM, APC) up to its terminator; any other escape sequence
# (ESC, intermediates, a final byte that does not open one of the former).
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-OQ-WYZ\\`-~]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1
_INTRODUCER = re.compile(r"[\x1b\x90\x98\x9b\x9d\x9e\x9f]")


def clean(text: str) -> str:
    """The text without escape sequences and control characters (newline and tab stay)."""
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def settled(text: str) -> str:
    """The part of a growing text that can be printed now: all of it but an escape sequence that is not
    complete yet (its next part may complete it; once the text is whole, `clean` drops what is left)."""
    position = 0
    while (introducer := _INTRODUCER.search(text, position)) is not None:
        sequence = _SEQUENCE.match(text, introducer.start())
        if sequence is None:
            return text[: introducer.start()]
        position = sequence.end()
    return text


def say(text: str = "", *, end: str = "\n", stderr: bool = False) -> None:
    """A line of text as given, less control characters and escape sequences; flushed at once."""
    print(clean(text), end=end, file=sys.stderr if stderr else sys.stdout, flush=True)


def fail(message: str, code: int = 1) -> SystemExit:
    """`raise fail(...)`: one line on stderr, then exit with `code`."""
    say(f"joulebot: {message}", stderr=True)
    return SystemExit(code)


# `joulebot ask` on a warm worker is mostly Python starting up: its path imports only what it
# uses. rich (the spinner, JSON, progress bars) is loaded on first use, and the answer and its
# footer are plain text written with print().
@functools.cache
def console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)


_RAW_IN_JSON = re.compile(r"[\x7f-\x9f]")  # DEL and C1: JSON escapes only C0 controls itself


def print_json(text: str) -> None:
    """JSON on stdout, indented (and coloured on a terminal) as rich's print_json prints it, with DEL
    and the C1 controls, which JSON may carry raw, written as \\u escapes (the data is unchanged)."""
    from rich.highlighter import JSONHighlighter

    indented = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    highlighted = JSONHighlighter()(_RAW_IN_JSON.sub(lambda c: f"\\u{ord(c.group()):04x}", indented))
    highlighted.no_wrap, highlighted.overflow = True, None
    console(False).print(highlighted, soft_wrap=True)


class _LazyConsole:
    def __init__(self, stderr: bool) -> None:
        self.stderr = stderr

    def __getattr__(self, name: str) -> Any:
        return getattr(console(self.stderr), name)


err = _LazyConsole(stderr=True)


class Spinner:
    """The waiting line on stderr, shown from the first progress report on: a warm answer comes
    before the first report (about a second), and then rich is never imported."""

    def __init__(self) -> None:
        self.status: Status | None = None

    def update(self, text: str) -> None:
        from rich.text import Text  # a status given a str would read it as markup

        shown = Text(clean(text))
        if self.status is None:
            self.status = console(True).status(shown, spinner="dots")
            self.status.start()
        else:
            self.status.update(shown)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()


@contextlib.contextmanager
def ticking(tick: Callable[[float], None], period_s: float = 0.1) -> Iterator[None]:
    """`tick(seconds since the block began)` every `period_s`, on a thread of its own, while the block
    runs: a waiting line's progress where the work itself cannot report it."""
    done = threading.Event()
    start = time.monotonic()

    def run() -> None:
        while not done.wait(period_s):
            tick(time.monotonic() - start)

    thread = threading.Thread(target=run, name="joulebot-ticking", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
