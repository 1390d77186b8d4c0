"""Every command, subcommand, argument and option of `joulebot`, and each command's help.

argparse, built explicitly: one function per group of commands, each command naming the module and
function that run it. The standard library's, so a warm `joulebot ask` pays no CLI framework's
import; and a command's module is imported only when that command runs (`Handler.load`).
"""

from __future__ import annotations

import argparse
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, get_args

from joulebot.exchange import Units

DAY_S, YEAR_S = 86_400, 365 * 86_400

DESCRIPTION = """joulebot asks open LLMs and tells you what each answer cost: the energy the measurement box
drew (measured or estimated, with its uncertainty), its CO2e at the grid's carbon intensity, and its SCI
score. This terminal, the Telegram and Discord bots, the dashboard and its OpenAI-compatible API share one
queue and one history.

To ask: ask, compare. To look back: history, stats, budgets, bench. To run a measurement box: worker, stop,
meters, meter. Around them: boxes, models, carbon, web, keys, telegram, discord, health."""


@dataclass(frozen=True)
class Handler:
    """The function that runs a command, by module (in joulebot.cli) and name, imported only to run."""

    module: str
    name: str

    def load(self) -> Callable[..., None]:
        return getattr(importlib.import_module(f"joulebot.cli.{self.module}"), self.name)


class Range:
    """An argparse type: an int or float from `low` up to `high`. Every number has both bounds: past them
    a figure overflows a database integer, a register or a timer somewhere downstream, so the edge
    refuses it in one line."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float) -> None:
        self.kind, self.low, self.high = kind, low, high
        self.__name__ = kind.__name__  # argparse's "invalid int value: 'x'" names it

    def __call__(self, text: str) -> float:
        value = self.kind(text)
        if not self.low <= value <= self.high:  # NaN is neither
            raise argparse.ArgumentTypeError(f"must be {self}, not {text}")
        return value

    def __str__(self) -> str:
        return f"between {_number(self.low)} and {_number(self.high)}"


def _number(value: float) -> str:
    """1000000 as such (not 1e+06), 0.1 as such."""
    return str(int(value)) if value == int(value) else f"{value:g}"


class HelpFormatter(argparse.HelpFormatter):
    """Each option's help with its range and default; a command's description keeps its paragraphs."""

    def _get_help_string(self, action: argparse.Action) -> str:
        notes = [str(action.type)] if isinstance(action.type, Range) else []
        help_text = action.help or ""
        default = action.default
        shown = default is not None and default is not False and default != argparse.SUPPRESS
        if action.option_strings and shown and "%(default)" not in help_text:
            notes.append("default: %(default)s")
        return f"{help_text} [{'; '.join(notes)}]" if notes else help_text

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        fill = functools.partial(textwrap.fill, width=width, initial_indent=indent, subsequent_indent=indent)
        return "\n\n".join(fill(" ".join(paragraph.split())) for paragraph in text.split("\n\n"))


class Parser(argparse.ArgumentParser):
    """Only whole option names (as before: no `--mod` for `--model`); a usage error is one line, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _command(commands: Any, name: str, handler: Handler | None, description: str, summary: str | None = None) -> Parser:
    """A command's parser: `description` is its help (and its first paragraph, its line in the list).
    Without a handler, the command alone prints its help and exits 2 (it needs a subcommand)."""
    summary = summary or " ".join(description.split("\n\n")[0].split())
    parser: Parser = commands.add_parser(name, help=summary, description=description)
    parser.set_defaults(handler=handler or parser)
    return parser


def _units_json_box(parser: Parser) -> None:
    parser.add_argument("--units", choices=get_args(Units), help="joules: energy; watts: average power and duration")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print the whole Result as JSON")
    parser.add_argument("--box", help="run on this box (see `joulebot boxes`)")
    _verbose(parser)


def _verbose(parser: Parser) -> None:
    """--verbose: the footer's long form."""
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="the long footer: how each figure was obtained (the estimate's model, each caveat, the embodied TE)",
    )


def _asking(commands: Any) -> None:
    """ask and compare."""
    description = "Ask one model; print the answer (as it is generated) and what it cost."
    p = _command(commands, "ask", Handler("ask", "ask"), description)
    p.add_argument("prompt", help="what to ask")
    p.add_argument("--model", "-m", help="model name (see `joulebot models`)")
    _units_json_box(p)
    p.add_argument(
        "--continue",
        "-c",
        dest="continue_last",
        action="store_true",
        help="continue your last conversation (it becomes the context)",
    )
    p.add_argument("--system", help="system prompt (default: SYSTEM_PROMPT)")
    p.add_argument("--no-stream", action="store_true", help="print the answer only once it is complete")
    p.add_argument(
        "--image",
        dest="images",
        type=Path,
        action="append",
        metavar="PATH",
        help="an image for a vision model to look at (repeatable; see MAX_IMAGES)",
    )
    p.add_argument(
        "--file",
        dest="files",
        type=Path,
        action="append",
        metavar="PATH",
        help="a UTF-8 text file to add to the question, named (repeatable; see MAX_FILE_CHARS)",
    )

    description = "Ask two models the same thing, one after the other on the same box (so the ratio is fair)."
    p = _command(commands, "compare", Handler("ask", "compare"), description)
    p.add_argument("model_a", help="first model")
    p.add_argument("model_b", help="second model")
    p.add_argument("prompt", help="what to ask both")
    _units_json_box(p)


def _figures(commands: Any) -> None:
    """history, stats and budgets."""
    description = "Show your last exchanges, newest first (or export them, or forget a user)."
    p = _command(commands, "history", Handler("history_stats", "history"), description)
    p.add_argument("--limit", "-n", type=Range(int, 1, 10_000), default=10, help="how many per page")
    p.add_argument("--page", "-p", type=Range(int, 1, 1_000_000), default=1, help="1: the newest")
    p.add_argument("--json", dest="as_json", action="store_true", help="print the page's Results as JSON")
    p.add_argument("--csv", dest="as_csv", action="store_true", help="all your exchanges as CSV")
    p.add_argument("--forget", help="delete a user's prompts and answers: PLATFORM:USER_ID")
    _verbose(p)

    description = (
        "Which model is greener for which kind of task, per box: mean SCI and energy per answer, and accuracy"
        " where scored."
    )
    p = _command(commands, "stats", Handler("history_stats", "stats"), description)
    p.add_argument("--csv", dest="as_csv", action="store_true", help="per model, category, box and meter, as CSV")
    p.add_argument("--box", help="only this box (default: one set of tables per box)")

    description = (
        "Today's use of the daily energy budgets (DAILY_ENERGY_BUDGET_WH, WEB_CHAT_DAILY_WH): the web chat's"
        " visitors together, and the users whose answers drew the most since 00:00 UTC."
    )
    p = _command(commands, "budgets", Handler("history_stats", "budgets"), description)
    p.add_argument("--top", type=Range(int, 1, 10_000), default=20, help="how many users")


def _bench(commands: Any) -> None:
    description = (
        "Run the shipped prompt sets through the real queue and worker, score the answers; print model × task"
        " tables (per box)."
    )
    p = _command(commands, "bench", Handler("bench", "bench"), description)
    p.add_argument("--models", required=True, help="comma-separated models")
    p.add_argument("--categories", default="code,math,questions,sql,translation", help="comma-separated categories")
    p.add_argument("--n", type=Range(int, 1, 50), default=50, help="prompts per category")
    p.add_argument("--run", default="default", help="run name: the same name resumes an interrupted run")
    p.add_argument(
        "--out",
        dest="out_dir",
        metavar="OUT",
        type=Path,
        default=Path("bench-out"),
        help="where the CSVs and the heatmap go",
    )
    p.add_argument(
        "--references", type=Path, help="folder of <category>.jsonl reference files (default: the shipped ones)"
    )
    p.add_argument(
        "--heatmap",
        dest="heatmap_of",
        metavar="HEATMAP",
        default="sci",
        help="accuracy, energy, energy-per-correct, sci or sci-per-correct",
    )
    p.add_argument(
        "--rescore",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="check the run's answers again (after changing references)",
    )
    p.add_argument("--boxes", help="comma-separated boxes: the whole run on each")


def _workers(commands: Any) -> None:
    """worker and stop."""
    description = "Run the measurement worker (one per metered box)."
    p = _command(commands, "worker", Handler("worker_stop", "worker"), description)
    p.add_argument("--idle-exit", type=Range(int, 1, YEAR_S), help="exit after this many idle seconds")
    p.add_argument("--burst", action=argparse.BooleanOptionalAction, default=False, help="exit when the queue is empty")

    description = "Stop the embedded worker and Redis (they also stop by themselves when idle)."
    _command(commands, "stop", Handler("worker_stop", "stop"), description)


def _meters(commands: Any) -> None:
    """meters, meter read and meter simulate."""
    description = "Which meters this box has, what they read at idle, temperatures (run it on the box)."
    _command(commands, "meters", Handler("meters", "meters"), description)

    meter = _command(commands, "meter", None, "Check one meter, or simulate a wall meter.")
    meter_commands = meter.add_subparsers(title="commands", metavar="COMMAND")
    description = "Read one meter for a while; print its average power and energy."
    p = _command(meter_commands, "read", Handler("meters", "meter_read"), description)
    p.add_argument("--source", required=True, help="mcp39f511n, rapl, nvml or estimate")
    p.add_argument("--seconds", type=Range(float, 0.1, DAY_S), default=10.0, help="window length")
    p.add_argument("--port", help="serial port of the MCP39F511N")
    p.add_argument("--interval", type=Range(float, 0.001, 60), help="sampling interval in seconds (sampled meters)")
    description = """Run a simulated MCP39F511N on a pseudo-terminal until Ctrl-C (for trying the driver).

    Like the chip, its power register averages over 2^N mains cycles (N: factory 4, writable)."""
    p = _command(meter_commands, "simulate", Handler("meters", "meter_simulate"), description)
    p.add_argument("--watts", type=Range(float, 0, 100_000), default=100.0, help="constant active power to report")
    p.add_argument(
        "--range",
        dest="power_range",
        metavar="RANGE",
        type=Range(int, 0, 255),
        default=19,
        help="power range register value (one byte)",
    )
    p.add_argument(
        "--mains-hz", type=Range(float, 40, 70), default=50.0, help="mains frequency of the simulated supply"
    )


def _services(commands: Any) -> None:
    """boxes, models (and models pull), carbon, web, telegram and discord."""
    description = "Every measurement box, alive or lately seen: zone, intensity, meters, models, queue and state."
    p = _command(commands, "boxes", Handler("services", "boxes"), description)
    p.add_argument("--json", dest="as_json", action="store_true", help="print every box as JSON")

    description = "List the models that can be asked here, and the ones that cannot (with why)."
    summary = "The models this box can run (and, for admins, pulling more)."
    p = _command(commands, "models", Handler("services", "models"), description, summary)
    models_commands = p.add_subparsers(title="commands", metavar="COMMAND")  # none: the list
    description = "Download a model onto this box's Ollama server (admin)."
    p = _command(models_commands, "pull", Handler("services", "models_pull"), description)
    p.add_argument("name", help="catalog name, alias or Ollama tag")

    description = "Show the grid zone, its current carbon intensity and where the figure comes from."
    _command(commands, "carbon", Handler("services", "carbon"), description)

    description = "Serve the read-only dashboard, /metrics and the OpenAI-compatible API (/v1)."
    p = _command(commands, "web", Handler("services", "web"), description)
    p.add_argument("--host", help="address to listen on (WEB_HOST; default 127.0.0.1)")
    p.add_argument("--port", type=Range(int, 1, 65535), help="port (WEB_PORT; default 8080)")

    description = "The OpenAI-compatible API's keys: make one (printed once), list them, revoke one."
    keys = _command(commands, "keys", None, description)
    key_commands = keys.add_subparsers(title="commands", metavar="COMMAND")
    for name, what in (("create", "print a new key for NAME, once"), ("list", ""), ("revoke", "stop NAME's key")):
        p = _command(key_commands, name, Handler("keys", f"keys_{name}"), f"{what or 'every key, never the key'}.")
        if what:
            p.add_argument("name", help="the key's name: its user is api:NAME")

    description = """Exit 0 if this role is serving, else say why in one line and exit 1 (a container's healthcheck).

    queue: the queue's Redis answers (every front end needs it); worker: this box's measurement worker
    (BOX_NAME) is alive too; web: the dashboard answers on WEB_HOST:WEB_PORT."""
    p = _command(commands, "health", Handler("health", "health"), description)
    p.add_argument("role", nargs="?", choices=("queue", "worker", "web"), default="queue", help="what to check")

    description = "Run the Telegram bot (long polling, or a webhook with TELEGRAM_WEBHOOK_URL)."
    _command(commands, "telegram", Handler("services", "telegram"), description)

    description = (
        "Run the Discord bot (slash commands /ask, /compare, /model, /models, /units, /history, /forget, /stats)."
    )
    p = _command(commands, "discord", Handler("services", "discord"), description)
    p.add_argument("--sync", action="store_true", help="register the slash commands now (else only on change)")


def build_parser() -> Parser:
    """The `joulebot` parser; parsing leaves the command's Handler (or a parser, to print its help) under
    `handler`."""
    parser = Parser(prog="joulebot", description=DESCRIPTION)
    parser.set_defaults(handler=parser)  # no command: the help, exit 2
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in (_asking, _figures, _bench, _workers, _meters, _services):
        group(commands)
    return parser
