"""At the edge, with real processes: losing Redis while waiting, settings and input
refused in one line, private files and redacted upstream text (docs/reliability.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy
from factories import make_result
from standins import HttpStandIn, OllamaStandIn, PrivateRedis, Reply, free_port
from telegram_process import TOKEN, Bot
from testenv import cli_env, make_settings, run_cli
from waiting import wait

from joulebot.carbon import IntensityProvider
from joulebot.chat.asking import InputError, build_request
from joulebot.chat.following import QUEUE_WENT_AWAY
from joulebot.config import Settings
from joulebot.history import HistoryStore
from joulebot.models import build_catalog
from joulebot.queueing.connection import queue_for

GONE = "joulebot: the queue went away while waiting; your answer may still be stored: joulebot history"


def one_line_refusal(proc: subprocess.CompletedProcess, *words: str, code: int = 2) -> str:
    """The process refused with exactly one line on stderr, naming `words`; no traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def queue_settings(tmp_path):
    """A private Redis of the test's own (to kill), SQLite history, and the Ollama stand-in as the model."""
    ollama = OllamaStandIn({"tinyllama:1.1b": "1.1B"})
    server = PrivateRedis(tmp_path, appendonly=True)
    server.start()
    settings = make_settings(
        tmp_path / "data",
        redis_url=server.url,
        queue_name=f"edge-{uuid.uuid4().hex[:8]}",
        ollama_host=ollama.url,
        default_model="tinyllama",
        idle_baseline_s=0.2,
    )
    yield settings, server
    server.stop()
    ollama.close()


def env_of(settings: Settings) -> dict[str, str]:
    return cli_env(
        settings, OLLAMA_HOST=settings.ollama_host, DEFAULT_MODEL=settings.default_model, IDLE_BASELINE_S="0.2"
    )


# -- losing Redis while an answer is pending ------------------------------------------------


def test_cli_losing_redis_while_waiting_is_one_line_not_a_traceback(queue_settings):
    settings, server = queue_settings
    ask = subprocess.Popen(
        [sys.executable, "-m", "joulebot", "ask", "Say hi."],
        env=env_of(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait(lambda: queue_for(settings).count == 1, 60)  # queued; no worker runs it
    server.kill()  # Redis goes away (SIGKILL: no goodbye)
    _, stderr = ask.communicate(timeout=60)
    assert ask.returncode == 1
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == GONE, stderr


def test_telegram_user_is_told_when_redis_goes_away_and_gets_the_answer_when_it_is_back(queue_settings, tmp_path):
    from standins import BotApiStandIn

    settings, server = queue_settings
    api = BotApiStandIn(TOKEN)
    bot = Bot(settings, api, OLLAMA_HOST=settings.ollama_host, DEFAULT_MODEL="tinyllama").start()
    try:
        api.message(601, "Say hi.")
        api.wait_for(lambda m, p: m == "sendMessage" and p.get("text", "").startswith("⏳ queued"))
        wait(lambda: queue_for(settings).count == 1, 30)
        server.stop()  # appendonly: the queued job and the delivery survive the restart
        api.wait_for(lambda m, p: m == "editMessageText" and p["text"] == QUEUE_WENT_AWAY, timeout=30)
        server.start()
        worker = subprocess.run(
            [sys.executable, "-m", "joulebot", "worker", "--burst"],
            env=env_of(settings),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert worker.returncode == 0, worker.stderr
        _, final = api.wait_for(lambda m, p: m == "editMessageText" and "⚡" in p["text"], timeout=60)
        assert str(final["chat_id"]) == "601"
    finally:
        bot.stop()
        api.close()
    assert "Task exception was never retrieved" not in bot.logs and "Traceback" not in bot.logs, bot.logs


def test_telegram_user_is_told_the_answer_was_lost_when_redis_comes_back_without_it(tmp_path):
    from standins import BotApiStandIn

    server = PrivateRedis(tmp_path)  # no persistence: a restart forgets the queue
    server.start()
    settings = make_settings(tmp_path / "data", redis_url=server.url, queue_name=f"edge-{uuid.uuid4().hex[:8]}")
    api = BotApiStandIn(TOKEN)
    bot = Bot(settings, api).start()
    try:
        api.message(602, "Say hi.")
        wait(lambda: queue_for(settings).count == 1, 60)
        server.stop()
        api.wait_for(lambda m, p: m == "editMessageText" and p["text"] == QUEUE_WENT_AWAY, timeout=30)
        server.start()
        lost = "restarted without your question, so its answer was lost; please ask again"
        api.wait_for(lambda m, p: m == "editMessageText" and lost in p["text"], timeout=30)
    finally:
        bot.stop()
        api.close()
        server.stop()
    assert "Task exception was never retrieved" not in bot.logs and "Traceback" not in bot.logs, bot.logs


def test_discord_user_is_told_when_redis_goes_away_and_gets_the_answer_when_it_is_back(queue_settings):
    import asyncio

    from discord_interactions import RecordedInteraction, run

    from joulebot.chat.discord_bot import DiscordBot

    settings, server = queue_settings
    bot = DiscordBot(settings)
    interaction = RecordedInteraction(user_id=71)

    def outage_then_worker() -> None:
        wait(lambda: queue_for(settings).count == 1, 60)
        server.stop()
        wait(lambda: any(e.get("content") == QUEUE_WENT_AWAY for e in interaction.named("edit")), 30)
        server.start()
        subprocess.run(
            [sys.executable, "-m", "joulebot", "worker", "--burst"],
            env=env_of(settings),
            capture_output=True,
            timeout=180,
            check=True,
        )

    async def scenario() -> None:
        helper = asyncio.get_running_loop().run_in_executor(None, outage_then_worker)
        await asyncio.to_thread(run, bot, "ask", interaction, prompt="Say hi.")
        await helper

    asyncio.run(scenario())
    final = interaction.named("edit")[-1]
    assert final["embeds"] and "⚡" in (final["embeds"][-1].footer.text or "")


# -- settings and input validated at the edge ------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "accepts"),
    [
        ("MAX_TOKENS", "0", "greater than 0"),
        ("JOB_TIMEOUT_S", "abc", "valid integer"),
        ("MAX_PENDING_PER_USER", "-1", "greater than or equal to 1"),
        ("RESULT_TTL_S", "-5", "greater than 0"),
        ("REDIS_URL", "garbage", "redis://"),
        ("REDIS_URL", "redis://127.0.0.1:6379/x", "database index"),
        ("DATABASE_URL", "garbage", "postgresql://"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_exit_2(settings, variable, value, accepts):
    line = one_line_refusal(run_cli(settings, "history", timeout=60, **{variable: value}), variable, accepts)
    assert line.startswith(f"joulebot: {variable}=")


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("{not json", "JSON object of model names and their settings"),
        ('{"smollm2-135m": {"temprature": 0.2}}', "smollm2-135m.temprature='0.2': extra inputs are not permitted"),
        ('{"smollm2-135m": {"top_p": 2}}', "smollm2-135m.top_p='2': input should be less than or equal to 1"),
    ],
)
def test_bad_generation_settings_are_one_line_naming_what_is_wrong(settings, value, said):
    line = one_line_refusal(run_cli(settings, "history", timeout=60, GENERATION_SETTINGS=value), said)
    assert line.startswith("joulebot: GENERATION_SETTINGS")


def test_a_password_in_a_bad_url_is_not_echoed(settings):
    line = one_line_refusal(run_cli(settings, "history", DATABASE_URL="mysql://joe:hunter22@db/x"), "DATABASE_URL")
    assert "hunter22" not in line


def test_a_redis_db_index_the_server_lacks_is_one_line_exit_2(settings, system_redis_url):
    url = system_redis_url.rsplit("/", 1)[0] + "/99"  # a default server has 0-15
    one_line_refusal(run_cli(settings, "ask", "Say hi.", REDIS_URL=url, timeout=60), "REDIS_URL", "database index")


def test_an_unreachable_database_is_one_line_on_history(settings):
    url = f"postgresql://postgres:s3cr3t-pw@127.0.0.1:{free_port()}/test"
    proc = run_cli(settings, "history", DATABASE_URL=url, timeout=60)
    line = one_line_refusal(proc, "DATABASE_URL", "cannot be opened")
    assert "s3cr3t-pw" not in line


def test_prompts_refused_before_queueing(queue_settings):
    settings, _ = queue_settings
    env = env_of(settings)

    def ask(*args: str | bytes) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "joulebot", "ask", *args], env=env, capture_output=True, text=True, timeout=60
        )

    one_line_refusal(ask(b"caf\xff au lait?"), "not valid UTF-8")  # bytes from argv that are not UTF-8
    one_line_refusal(ask("\u200b\u200d\ufeff\u2060 \u3164"), "empty")  # only zero-width / blank characters
    one_line_refusal(ask("金" * 3000, "--model", "tinyllama"), "tokens (estimated)", "context of 2048")
    one_line_refusal(ask("金" * 1000, "--model", "smollm2"), "the prompt is 2000 tokens;", "leaves 1752")  # exact
    one_line_refusal(ask("Say hi.", "--model", ""), "model name is empty")
    assert queue_for(settings).count == 0, "nothing was queued"


@pytest.mark.unit
def test_the_embedded_model_counts_long_prompts_with_its_own_tokenizer(settings):
    catalog = build_catalog(9.0)

    def request(prompt: str):
        return build_request(settings, catalog, platform="cli", user_id="u", prompt=prompt)

    assert request("energy " * 500).prompt  # 3,500 bytes, over the byte bound, but ~500 tokens: it fits
    with pytest.raises(InputError, match=r"the prompt is \d+ tokens; smollm2-135m has a context of 2048"):
        request("金" * 2000)  # exact count: far over 1,752 tokens
    with pytest.raises(InputError, match="leaves no room"):
        build_request(
            settings.model_copy(update={"max_tokens": 4000}), catalog, platform="cli", user_id="u", prompt="hi"
        )


def test_bench_run_names_are_checked(settings, tmp_path):
    for name in ("v1.2", "", "../x"):
        proc = run_cli(settings, "bench", "--models", "smollm2", "--run", name, "--out", str(tmp_path / "out"))
        one_line_refusal(proc, "--run", "letters, digits")
    assert not (tmp_path / "out").exists()


# -- the command line: argparse; a usage error is one line, exit 2 -----------------------------------

ASK_PATH = (
    "import sys, joulebot.cli.parser as p; p.build_parser().parse_args(['ask', 'hi']).handler.load();"
    " import joulebot.queueing.client, joulebot.queueing.catalog, joulebot.chat.context;"
    " heavy = {'typer', 'click', 'rich', 'sqlalchemy', 'alembic', 'scipy', 'numpy'};"
    " print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
)


def test_the_ask_path_imports_no_cli_framework_rich_or_database():
    proc = subprocess.run([sys.executable, "-c", ASK_PATH], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.strip() == "[]", "a warm `joulebot ask` must not pay for these imports"


COMMAND_MODULES = (
    "import sys, joulebot.cli.parser as p; p.build_parser().parse_args(['ask', 'hi']).handler.load();"
    " print(' '.join(sorted(m for m in sys.modules if m.startswith('joulebot.cli.'))))"
)


def test_a_command_imports_only_its_own_module():
    proc = subprocess.run(
        [sys.executable, "-c", COMMAND_MODULES], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = proc.stdout.split()
    assert "joulebot.cli.ask" in loaded
    assert not {"joulebot.cli.history_stats", "joulebot.cli.bench", "joulebot.cli.services"} & set(loaded), loaded
    assert not {"joulebot.cli.worker_stop", "joulebot.cli.meters"} & set(loaded), loaded


# pydantic has no public way to ask whether it looked for plugins: its loader's cache
# (`pydantic.plugin._loader._plugins`) stays None until the first lookup fills it
ASK_PATH_PYDANTIC = (
    "import joulebot.cli.ask, joulebot.queueing.client, joulebot.queueing.fleet as fleet;"
    " import pydantic.plugin._loader as plugins;"
    " print([m.__name__ for m in (fleet.BoxProfile, fleet.BoxModel, fleet.MeanEnergy) if m.__pydantic_complete__],"
    " plugins._plugins)"
)


def test_the_ask_path_builds_no_validator_it_does_not_use_and_looks_for_no_pydantic_plugin():
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}  # joulebot's own default
    proc = subprocess.run(
        [sys.executable, "-c", ASK_PATH_PYDANTIC], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert proc.stdout.split() == ["[]", "None"], "the fleet's models are validated only with several boxes"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["bench", "--models", "smollm2", "--n", "99"], ["joulebot bench:", "--n", "between 1 and 50, not 99"]),
        (["history", "-n", "0"], ["--limit", "between 1 and 10000, not 0"]),
        (["history", "--page", "x"], ["--page", "invalid int value: 'x'"]),
        (["history", "-p", "99999999999999999999"], ["--page", "between 1 and 1000000, not 99999999999999999999"]),
        (["worker", "--idle-exit", "-1"], ["--idle-exit", "between 1 and"]),
        (["meter", "simulate", "--range", "256"], ["--range", "between 0 and 255"]),
        (["meter", "read", "--source", "rapl", "--seconds", "0.05"], ["--seconds", "between 0.1 and 86400"]),
        (["web", "--port", "65536"], ["--port", "between 1 and 65535"]),
        (["ask", "hi", "--units", "kWh"], ["--units", "'joules', 'watts'"]),
        (["ask"], ["required", "prompt"]),
        (["bench"], ["required", "--models"]),
        (["ask", "hi", "--mod", "smollm2"], ["unrecognized", "--mod"]),  # whole option names only
        (["nosuchcommand"], ["invalid choice: 'nosuchcommand'"]),
        (["models", "push", "x"], ["invalid choice: 'push'"]),
    ],
)
def test_a_usage_error_is_one_line_exit_2(settings, args, words):
    one_line_refusal(run_cli(settings, *args, timeout=60), *words)
    assert not (settings.data_dir / "redis.sock").exists(), "nothing may be started"


def numeric_options(parser: argparse.ArgumentParser, command: str = "joulebot") -> Iterator[tuple[str, Any]]:
    """(command and option, its argparse type) for every option whose value is a number, in every command.
    argparse has no public list of a parser's actions or subcommands: `_actions` is where they are."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from numeric_options(subparser, f"{command} {name}")
        elif action.type in (int, float) or hasattr(action.type, "low"):
            yield f"{command} {action.option_strings[0] if action.option_strings else action.dest}", action.type


@pytest.mark.unit
def test_every_number_on_the_command_line_is_bounded_at_both_ends():
    from joulebot.cli.parser import Range, build_parser

    options = dict(numeric_options(build_parser()))
    assert {"joulebot history --limit", "joulebot history --page", "joulebot worker --idle-exit"} <= set(options)
    for option, kind in options.items():
        assert isinstance(kind, Range), f"{option} takes any {kind.__name__}"
        for text in ("99999999999999999999", "-99999999999999999999", "nan", "inf"):
            with pytest.raises((argparse.ArgumentTypeError, ValueError)):
                kind(text)


def commands(parser: argparse.ArgumentParser) -> list[str]:
    """The names of a parser's commands (argparse keeps them only in its private `_actions`)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [name for group in groups for name in group.choices]


@pytest.mark.unit
def test_the_help_opens_with_the_whole_tool_and_names_every_command():
    from joulebot.cli.parser import build_parser

    parser = build_parser()
    summary, listed = parser.format_help().split("\ncommands:\n")
    names = commands(parser)
    assert len(names) == 18  # keys, health and budgets included
    assert "what each answer cost" in summary
    for name in names:
        assert re.search(rf"(?<![\w-]){name}(?![\w-])", summary.split("options:")[0]), f"the summary misses {name}"
        assert re.search(rf"^ +{name} ", listed, re.MULTILINE), f"the list misses {name}"


def test_stop_says_whether_anything_was_running(embedded):
    from joulebot.queueing.embedded import embedded_worker_alive, ensure_embedded_stack

    idle = run_cli(embedded, "stop", timeout=60)
    assert idle.returncode == 0 and idle.stdout.startswith("nothing was running"), (idle.stdout, idle.stderr)
    ensure_embedded_stack(embedded)
    assert embedded_worker_alive(embedded)
    stopped = run_cli(embedded, "stop", timeout=90)
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped"), (stopped.stdout, stopped.stderr)
    assert not embedded_worker_alive(embedded)
    assert run_cli(embedded, "stop", timeout=60).stdout.startswith("nothing was running")


@pytest.mark.parametrize("args", [[], ["meter"]])
def test_a_command_group_alone_prints_its_help_exit_2(settings, args):
    proc = run_cli(settings, *args, timeout=60)
    assert proc.returncode == 2 and proc.stdout.startswith(f"usage: {' '.join(['joulebot', *args])} ")
    assert ("telegram" if not args else "simulate") in proc.stdout


HELP = {
    "": [
        "ask",
        "compare",
        "boxes",
        "models",
        "carbon",
        "history",
        "stats",
        "bench",
        "worker",
        "stop",
        "web",
        "meters",
        "meter",
        "telegram",
        "discord",
    ],
    "ask": [
        "prompt",
        "--model MODEL, -m",
        "--units {joules,watts}",
        "--json",
        "--box",
        "--continue, -c",
        "--system",
        "--no-stream",
        "--verbose, -v",
        "what to ask",
    ],
    "compare": ["model_a", "model_b", "prompt", "--units {joules,watts}", "--json", "--box", "--verbose, -v"],
    "boxes": ["--json"],
    "models": ["pull", "List the models"],
    "models pull": ["name", "catalog name, alias or Ollama tag"],
    "carbon": ["grid zone"],
    "history": [
        "--verbose, -v",
        "--limit LIMIT, -n",
        "--page PAGE, -p",
        "between 1 and 10000; default: 10",
        "--json",
        "--csv",
        "--forget",
    ],
    "stats": ["--csv", "--box"],
    "bench": [
        "--models",
        "--categories",
        "code,math,questions,sql,translation",
        "--n",
        "between 1 and 50; default:",
        "--run",
        "--out",
        "bench-out",
        "--references",
        "--heatmap",
        "--rescore, --no-rescore",
        "--boxes",
    ],
    "worker": ["--idle-exit", "--burst, --no-burst"],
    "stop": ["embedded worker"],
    "web": ["--host", "--port", "between 1 and 65535"],
    "meters": ["idle"],
    "meter": ["read", "simulate"],
    "meter read": ["--source", "--seconds", "between 0.1 and 86400; default: 10.0", "--port", "--interval"],
    "meter simulate": ["--watts", "--range", "--mains-hz", "2^N mains cycles"],
    "telegram": ["TELEGRAM_WEBHOOK_URL"],
    "discord": ["--sync"],
    "health": ["queue", "worker", "web", "healthcheck"],
}


@pytest.mark.unit
@pytest.mark.parametrize("command", list(HELP))
def test_every_command_has_help_naming_its_options(capsys, command):
    from joulebot.cli.parser import build_parser

    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command.split(), "--help"])
    assert exit_.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())  # the text as one line, however it is wrapped
    for word in HELP[command]:
        assert word in shown, word


@pytest.mark.unit
def test_flags_keep_both_spellings_and_their_defaults():
    from joulebot.cli.bench import bench
    from joulebot.cli.parser import build_parser
    from joulebot.cli.worker_stop import worker

    def parse(*args: str) -> dict:
        return vars(build_parser().parse_args(args))

    assert parse("bench", "--models", "a")["rescore"] is False
    assert parse("bench", "--models", "a", "--rescore")["rescore"] is True
    assert parse("bench", "--models", "a", "--rescore", "--no-rescore")["rescore"] is False
    assert parse("worker", "--burst")["burst"] is True and parse("worker", "--no-burst")["burst"] is False
    assert parse("bench", "--models", "a")["handler"].load() is bench and parse("worker")["handler"].load() is worker
    asked = parse("ask", "-m", "smollm2", "-c", "--no-stream", "--json", "--units", "watts", "-v", "hi")
    assert asked | {"handler": None} == {
        "handler": None,
        "prompt": "hi",
        "model": "smollm2",
        "units": "watts",
        "as_json": True,
        "box": None,
        "continue_last": True,
        "system": None,
        "no_stream": True,
        "images": None,
        "files": None,
        "verbose": True,
    }
    assert parse("history", "--verbose")["verbose"] is True and parse("compare", "a", "b", "hi")["verbose"] is False


# -- privacy ---------------------------------------------------------------------------------


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_directory_is_private_and_an_old_one_is_tightened(embedded):
    from joulebot.queueing.embedded import ensure_embedded_stack

    old = embedded.data_dir
    old.mkdir(mode=0o755, parents=True)
    os.chmod(old, 0o755)
    (old / "history.sqlite3").touch(mode=0o644)
    os.chmod(old / "history.sqlite3", 0o644)
    assert run_cli(embedded, "history", timeout=60).returncode == 0
    assert mode(old) == 0o700 and mode(old / "history.sqlite3") == 0o600
    ensure_embedded_stack(embedded)  # the embedded Redis and worker, started as `ask` starts them
    queue_for(embedded).connection.save()  # an RDB snapshot now
    wait(lambda: (old / "worker.log").exists() and (old / "redis.rdb").exists(), 30)
    names = (
        "redis.rdb",
        "redis.log",
        "worker.log",
        "worker.pid",
        "embedded.lock",
        "history.sqlite3",
        "history.sqlite3.migrate-lock",
    )
    for name in names:
        assert mode(old / name) == 0o600, name


def test_upstream_text_is_redacted_of_every_secret(settings, caplog):
    em_token = "em-token-3c1f9e"
    api = HttpStandIn([Reply(401, {"message": f"Invalid token {em_token} (redis pw hunter42?)"})])
    configured = make_settings(
        settings.data_dir,
        electricity_maps_token=em_token,
        electricity_maps_url=api.url,
        redis_url="redis://:hunter42@127.0.0.1:1/0",
    )
    try:
        with caplog.at_level(logging.INFO):
            intensity = IntensityProvider.from_settings(configured).current()
    finally:
        api.close()
    shown = intensity.label() + intensity.provenance + caplog.text
    assert "HTTP 401" in shown and "***" in shown
    assert em_token not in shown and "hunter42" not in shown


def test_history_forget_makes_no_user_rows_and_the_cli_user_is_the_os_account(settings):
    store = HistoryStore.open(settings.sqlalchemy_url)
    store.record(make_result(user_id=str(os.getuid()), prompt="mine"))
    store.record(make_result(user_id="mallory", prompt="not mine"))
    proc = run_cli(settings, "history", "--json", LOGNAME="mallory", USER="mallory", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [r["request"]["prompt"] for r in json.loads(proc.stdout)] == ["mine"]
    users = sqlalchemy.text("SELECT count(*) FROM users")
    with store.engine.connect() as connection:
        before = connection.execute(users).scalar()
    forgot = run_cli(settings, "history", "--forget", "telegram:424242", timeout=60)
    assert forgot.returncode == 0 and "forgot 0 exchanges" in forgot.stdout
    with store.engine.connect() as connection:
        assert connection.execute(users).scalar() == before


def test_history_in_a_telegram_group_goes_to_the_private_chat(tmp_path, system_redis_url):
    from standins import BotApiStandIn

    settings = make_settings(tmp_path / "data", redis_url=system_redis_url, queue_name=f"edge-{uuid.uuid4().hex[:8]}")
    store = HistoryStore.open(settings.sqlalchemy_url)
    store.record(make_result(platform="telegram", user_id="77", prompt="my secret plan"))
    api = BotApiStandIn(TOKEN)
    bot = Bot(settings, api).start()
    try:
        api.message(77, "/history", chat_id=-500, chat_type="group")
        _, notice = api.wait_for(lambda m, p: m == "sendMessage" and str(p["chat_id"]) == "-500")
        assert "private chat" in notice["text"] and "my secret plan" not in notice["text"]
        _, private = api.wait_for(lambda m, p: m == "sendMessage" and str(p["chat_id"]) == "77")
        assert "my secret plan" in private["text"]
        # a user who never started a private chat: Telegram refuses (403), the group is told what to do
        forbidden = {"ok": False, "error_code": 403, "description": "Forbidden: bot can't initiate conversation"}
        api.faults.append((lambda m, p: m == "sendMessage" and str(p["chat_id"]) == "78", 403, forbidden))
        api.message(78, "/history", chat_id=-500, chat_type="group")
        api.wait_for(lambda m, p: m == "sendMessage" and "Open a chat with @joulebot_test_bot" in p.get("text", ""))
        assert all("my secret plan" not in p.get("text", "") for _, p in api.to_chat(-500))
    finally:
        bot.stop()
        api.close()
    assert "Traceback" not in bot.logs, bot.logs


@pytest.mark.parametrize(
    ("line", "function"),
    [
        ("ask hi", "ask"),
        ("compare a b hi", "compare"),
        ("boxes", "boxes"),
        ("models", "models"),
        ("models pull x", "models_pull"),
        ("carbon", "carbon"),
        ("history", "history"),
        ("stats", "stats"),
        ("budgets", "budgets"),
        ("bench --models a", "bench"),
        ("worker", "worker"),
        ("stop", "stop"),
        ("web", "web"),
        ("meters", "meters"),
        ("meter read --source rapl", "meter_read"),
        ("meter simulate", "meter_simulate"),
        ("telegram", "telegram"),
        ("discord", "discord"),
        ("health worker", "health"),
    ],
)
@pytest.mark.unit
def test_every_command_calls_its_function_with_exactly_its_parameters(line, function):
    import inspect

    from joulebot.cli.parser import build_parser

    parsed = vars(build_parser().parse_args(line.split()))
    handler = parsed.pop("handler").load()
    assert handler.__name__ == function
    assert set(parsed) == set(inspect.signature(handler).parameters)
