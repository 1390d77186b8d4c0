"""What `joulebot` prints to a terminal: text from prompts and answers carries no control characters or
escape sequences there, and no rich markup or emoji code in it is interpreted (docs/reliability.md)."""

from __future__ import annotations

import json
import os

import pytest
from factories import make_result
from standins import OllamaStandIn
from testenv import run_cli

from joulebot.history import HistoryStore

# a window title (OSC, BEL-terminated), a screen clear (CSI), a hyperlink (OSC 8, ST-terminated),
# 8-bit CSI and OSC, a carriage return that would overwrite the line, a bell, a backspace
# (streamed in pieces that cut sequences in two)
HOSTILE = [
    "Paris\x1b]0;pw",
    "ned\x07 is\x1b[",
    "2J the\x1b]8;;http://evil.example/\x1b",
    "\\ capital\x1b]8;;\x1b\\",
    " [bold red]of[/bold red] :smile:\x9b3",
    "1m France\x9d0;t\x9c.\rX\x07\x08",
]
SHOWN = "Paris is the capital [bold red]of[/bold red] :smile: France.X"
CONTROLS = {chr(c) for c in range(0x20) if chr(c) not in "\n\t"} | {chr(c) for c in range(0x7F, 0xA0)}


def assert_plain(text: str) -> None:
    assert not CONTROLS & set(text), [hex(ord(c)) for c in CONTROLS & set(text)]


@pytest.fixture
def ollama():
    standin = OllamaStandIn()
    yield standin
    standin.close()


@pytest.mark.parametrize("mode", ["streamed", "--no-stream", "--json"])
def test_ask_prints_an_answer_without_its_escape_sequences(embedded, ollama, mode):
    ollama.answer = HOSTILE
    ollama.chunk_delay_s = 0.3 if mode == "streamed" else 0.0  # the answer reaches the terminal in pieces
    args = [] if mode == "streamed" else [mode]
    proc = run_cli(embedded, "ask", "Capital of France?", *args, OLLAMA_HOST=ollama.url, DEFAULT_MODEL="llama3")
    assert proc.returncode == 0, proc.stderr
    if mode == "--json":  # the data whole, its controls escaped as JSON writes them
        assert json.loads(proc.stdout)["answer"] == "".join(HOSTILE)
    else:
        assert proc.stdout.startswith(SHOWN + "\n"), proc.stdout
    assert_plain(proc.stdout)
    assert_plain(proc.stderr)


def test_history_prints_prompts_and_footers_without_escape_sequences_or_markup(settings):
    store = HistoryStore.open(settings.sqlalchemy_url)
    prompt = "\x1b]0;pwned\x07Hi?\x1b[2J [link=http://evil.example]x[/link] :smile:\x9b1m"
    store.record(make_result(user_id=str(os.getuid()), prompt=prompt, model="m\x1b[5m"))
    proc = run_cli(settings, "history", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "· Hi? [link=http://evil.example]x[/link] :smile:\n" in proc.stdout, proc.stdout
    assert "· m ·" in proc.stdout
    assert_plain(proc.stdout)


@pytest.mark.unit
def test_a_growing_answer_printed_piece_by_piece_shows_what_the_whole_would():
    """However the text is cut while it streams, the pieces printed add up to the whole text cleaned:
    a sequence cut in two is held back until it is whole, never shown as its printable tail."""
    from joulebot.cli.console import clean, settled

    whole = "".join(HOSTILE) + "\x1b[1;31"  # and one never completed
    assert clean(whole) == SHOWN + "[1;31"
    for step in (1, 2, 3, 5, 7):
        printed, shown = "", ""
        for end in range(0, len(whole) + 1, step):
            ready = settled(whole[:end])
            if len(ready) > len(printed):
                shown += clean(ready[len(printed) :])
                printed = ready
        shown += clean(whole[len(printed) :])  # the rest, once the answer is whole
        assert shown == clean(whole), step
