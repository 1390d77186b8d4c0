"""A front end keeps its users' choices between their questions, and still sees at once what another
process changed: another front end's /units, /model, /system (a group's too) and a forget from the
terminal. Real Redis, a real SQLite history, the other front end and `joulebot history --forget` in
processes of their own."""

import subprocess
import sys
import uuid

import pytest
import sqlalchemy
from testenv import cli_env, make_settings, run_cli

from joulebot.chat.service import ChatService
from joulebot.models.inventory import current_catalog
from joulebot.queueing.catalog import publish_catalog

RUN = uuid.uuid4().hex[:8]  # in the users' and the group's ids: tests share the Redis
U1, U2, GROUP = f"u1-{RUN}", f"u2-{RUN}", f"-100{RUN}"

# Another front end of the same platform, in a process of its own: what it is told, it stores and says.
OTHER_FRONT_END = """
import sys
from joulebot.chat.service import ChatService
from joulebot.config import Settings
chat = ChatService(Settings(), "telegram")
user, group = sys.argv[1], sys.argv[2]
print(chat.preferences.set_units(user, "watts"))
print(chat.preferences.set_model(user, "llama3"))
print(chat.preferences.system_command(user, user, "Answer in French."))
print(chat.preferences.system_command(user, group, "Answer in rhymes.", group=True))
"""


@pytest.fixture
def front_end(system_redis_url, ollama, tmp_path):
    settings = make_settings(
        tmp_path / "data",
        redis_url=system_redis_url,
        database_url=f"sqlite:///{tmp_path / 'history.sqlite3'}",
        ollama_host=ollama.url,
        default_model="tinyllama",
    )
    chat = ChatService(settings, "telegram")
    publish_catalog(chat.client.connection, settings.queue_name, current_catalog(settings))
    yield settings, chat
    for key in chat.client.connection.scan_iter(f"joulebot:preferences-version:telegram:*{RUN}*"):
        chat.client.connection.delete(key)


def asked(chat: ChatService, user: str, group: str | None = None) -> tuple[str, str, str | None]:
    """What the next question of `user` (in `group`, if given) would be sent with: model, units, system prompt."""
    [request] = chat.asking.prepare(user, group or user, "What is a joule?", [None], group=group is not None)
    return request.model, request.units, request.system


def statements(chat: ChatService) -> list[str]:
    """Every SQL statement the front end sends its history database from now on."""
    sent: list[str] = []
    sqlalchemy.event.listen(chat.history.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


def test_a_users_next_questions_read_no_choices_from_the_database(front_end):
    _, chat = front_end
    first = asked(chat, U1)
    sent = statements(chat)
    assert [asked(chat, U1) for _ in range(3)] == [first] * 3
    assert sent == []


def test_choices_changed_in_another_process_reach_the_next_question(front_end):
    settings, chat = front_end
    assert asked(chat, U1)[1:] == ("joules", None)
    assert asked(chat, U2, GROUP)[2] is None
    env = cli_env(settings, OLLAMA_HOST=settings.ollama_host, DEFAULT_MODEL="tinyllama")
    done = subprocess.run(
        [sys.executable, "-c", OTHER_FRONT_END, U1, GROUP], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    model, units, system = asked(chat, U1)
    assert (model.split(":")[0], units, system) == ("llama3", "watts", "Answer in French.")
    assert asked(chat, U2, GROUP)[2] == "Answer in rhymes."  # another member of the group: the group's prompt

    forgot = run_cli(settings, "history", "--forget", f"telegram:{U1}", timeout=120, OLLAMA_HOST=settings.ollama_host)
    assert forgot.returncode == 0, forgot.stderr
    model, units, system = asked(chat, U1)
    assert (model.split(":")[0], units, system) == ("tinyllama", "joules", None)
