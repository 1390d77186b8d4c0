"""Conversations: multi-turn memory, streaming, system prompts, cancel and retry.

The real Telegram bot process against the Bot API stand-in, the real embedded queue and
measurement worker, and the Ollama stand-in as the model (no weights: fast lane).
"""

# ruff: noqa: F811 (the fixtures imported from telegram_chat are the tests' parameters)
from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy
from factories import make_result
from standins import BotApiStandIn, OllamaStandIn
from telegram_chat import ANSWER, api, bot, ollama  # noqa: F401 (fixtures)
from telegram_process import TOKEN
from testenv import run_cli
from waiting import wait

from joulebot.chat.discord_format import close_fences, render_partial
from joulebot.chat.reply import Answer, Reply
from joulebot.chat.telegram_bot import CANCELLED, reply_pieces
from joulebot.chat.telegram_format import partial_pieces, to_html, visible_text
from joulebot.chat.telegram_stream import GENERATING
from joulebot.exchange import Request, Turn
from joulebot.history import HistoryStore
from joulebot.models.runner import TextSink
from joulebot.worker.context import fit


# -- units: what the model receives, trimming, the sink ------------------------------------------
def _request(turns: int, chars: int = 300, **extra) -> Request:
    earlier = []
    for n in range(turns):
        earlier += [Turn(role="user", content=f"q{n} " + "x" * chars), Turn(role="assistant", content=f"a{n}")]
    return Request(platform="cli", user_id="u", model="m", prompt="now?", turns=earlier, max_tokens=100, **extra)


@pytest.mark.unit
def test_the_request_gives_the_model_system_earlier_turns_and_the_prompt_as_chat_messages():
    request = _request(1, chars=3, system="Be brief.")
    assert request.messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q0 xxx"},
        {"role": "assistant", "content": "a0"},
        {"role": "user", "content": "now?"},
    ]


@pytest.mark.unit
def test_trimming_drops_the_oldest_question_and_answer_first_and_never_the_prompt():
    count = lambda messages: sum(len(m["content"]) for m in messages)  # noqa: E731  (one token per character)
    request = _request(3, chars=100, system="S" * 10)
    everything = count(request.messages())
    messages, dropped, *_ = fit(request, everything + request.max_tokens, count)
    assert dropped == 0 and len(messages) == 8
    messages, dropped, *_ = fit(request, everything + request.max_tokens - 1, count)
    assert dropped == 2 and messages[0]["role"] == "system" and messages[1]["content"].startswith("q1 ")
    messages, dropped, *_ = fit(request, 50 + request.max_tokens, count)  # nothing earlier fits: the prompt still goes
    assert dropped == 6 and [m["content"] for m in messages] == ["S" * 10, "now?"]


@pytest.mark.unit
def test_trimming_counts_only_what_the_cheap_bound_cannot_settle():
    counted: list[int] = []

    def count(messages):  # the exact count (a tokenizer call): 1 token per 2 characters here
        counted.append(len(messages))
        return sum(len(m["content"]) for m in messages) // 2

    bound = lambda messages: sum(len(m["content"]) for m in messages)  # noqa: E731  (never below the count)
    request = _request(3, chars=100)
    everything = bound(request.messages())
    assert fit(request, everything + request.max_tokens, count, bound)[:2] == (request.messages(), 0)
    assert counted == [], "it fits by the bound: nothing counted"
    messages, dropped, *_ = fit(request, everything // 2 + request.max_tokens, count, bound)
    assert (dropped, len(messages)) == (0, 7) and counted == [7], "over the bound: counted exactly, and it fits"
    messages, dropped, *_ = fit(request, everything // 2 - 1 + request.max_tokens, count, bound)
    assert dropped == 2 and counted[-2:] == [7, 5], "still too long: the oldest turn goes, counted again"


@pytest.mark.e2e
def test_the_embedded_models_byte_bound_is_never_below_its_token_count():
    """SmolLM2's tokenizer is byte-level BPE: the bound the worker trims by must never undercount."""
    from joulebot.models import build_catalog
    from joulebot.models.llamacpp_runner import LlamaCppRunner

    entry = build_catalog(9.0).resolve("smollm2-135m")
    runner = LlamaCppRunner(threads=1)
    texts = ["hi", "Bonjour, ça va ?", "日本語のテキスト", "def f(x):\n    return x ** 2", "🙂" * 20]
    for text in [*texts, "<|im_start|>user"]:
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
        assert runner.token_bound(entry, messages) >= runner.count_tokens(entry, messages), text


@pytest.mark.unit
def test_the_sink_publishes_at_most_once_per_interval_and_never_the_reasoning():
    now = [0.0]
    seen: list[str] = []
    sink = TextSink(seen.append, interval_s=0.5, clock=lambda: now[0])
    for step, text in enumerate(
        ["<think>", "<think>h", "<think>hm", "<think>hm</think>Pa", "<think>hm</think>Paris", "<think>hm</think>Paris!"]
    ):
        now[0] = step * 0.3
        if sink.due():
            sink.put(text)
    # t=0 and 0.3: before the first interval (an answer done by then is never published); t=0.6: only
    # reasoning (nothing shown, asked again at the next token); t=0.9 published; t=1.2 too soon; t=1.5
    assert seen == ["Pa", "Paris!"]


def balanced(markup: str) -> bool:
    """Every tag closed in order, and no stray `<` or `&` outside tags and entities (what Telegram parses)."""
    stack: list[str] = []
    for closing, name in re.findall(r"<(/?)([a-z]+)[^>]*>", markup):
        if closing and (not stack or stack.pop() != name):
            return False
        if not closing:
            stack.append(name)
    bare = re.sub(r"<[^>]*>|&(lt|gt|amp|quot);", "", markup)
    return not stack and "<" not in bare and ">" not in bare and "&" not in bare


LONG_ANSWER = (
    ("Energy is measured at the wall. " * 40 + "\n\n") * 4
    + "```py\n"
    + "total = joules < 2 & x\n" * 300
    + "```\n\n"
    + ("More <b>words</b> & `code` & more. " * 50 + "\n") * 5
)


@pytest.mark.unit
@pytest.mark.parametrize("answer", ["Some `code` and <b>tags</b> & more\n```py\nx = 1 < 2\n", LONG_ANSWER])
def test_every_partial_edit_is_valid_markup_and_a_full_piece_is_already_final(answer):
    final = reply_pieces(Reply([Answer("", answer, "⚡ 1.2 J total")]))
    for cut in range(0, len(answer), max(1, len(answer) // 97)):
        partial = answer[: cut + 1]
        pieces = partial_pieces(partial, GENERATING)
        assert all(len(p) <= 4096 and balanced(p) for p in pieces), pieces
        assert pieces[-1].endswith(GENERATING) and not any(GENERATING in p for p in pieces[:-1])
        assert pieces[:-1] == final[: len(pieces) - 1], "a full piece shows what the finished reply will"
        done = "".join(visible_text(p) for p in pieces[:-1])
        growing = visible_text(pieces[-1]).removesuffix(GENERATING).rstrip("\n").removesuffix("\n…")
        assert visible_text(to_html(partial)).startswith(done + growing), "no word lost, none twice"
        discord = render_partial(partial, GENERATING).embeds[0]
        assert discord.description.count("```") % 2 == 0 and len(discord.description) <= 4096
    assert len(final) > 2 or answer != LONG_ANSWER, "the long answer spans several messages"
    assert close_fences("```py\nx") == "```py\nx\n```"


# -- history: conversations, branches, forgetting, statistics ------------------------------------
@pytest.fixture(params=[pytest.param("sqlite", marks=pytest.mark.unit), "postgresql"])
def store(request, tmp_path):
    sqlite = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    history = HistoryStore.open(sqlite if request.param == "sqlite" else request.getfixturevalue("postgres_url"))
    yield history
    history.engine.dispose()


def test_history_keeps_conversations_branches_and_forgets_every_word(store):
    first = make_result(prompt="Capital of France?", answer=ANSWER)
    first.request.conversation_id, first.request.chat_id, first.request.message_ref = "c1", "42", "1001"
    first.request.system = "Be brief."
    a = store.record(first)
    second = make_result(prompt="And Spain?", answer="Madrid.")
    second.request = second.request.model_copy(
        update={
            "conversation_id": "c1",
            "parent_id": a,
            "turn": 2,
            "chat_id": "42",
            "message_ref": "1002",
            "turns": [Turn(role="user", content="Capital of France?"), Turn(role="assistant", content=ANSWER)],
        }
    )
    b = store.record(second)
    assert [e.prompt for e in store.thread(b)] == ["Capital of France?", "And Spain?"]
    assert "turns" not in store.get(b).result["request"], "earlier turns are not stored twice"
    assert store.answer_at(first.request.platform, "42", "1001").id == a
    assert store.answer_at(first.request.platform, "43", "1001") is None, "message ids are per chat"
    assert [r.answers for r in store.category_stats()] == [1]
    assert [r.answers for r in store.category_stats(continued=True)] == [1]

    store.set_system_prompt(first.request.platform, first.request.user_id, "Answer in French.")
    assert store.system_prompt(first.request.platform, first.request.user_id) == "Answer in French."
    store.forget(first.request.platform, first.request.user_id)
    assert store.system_prompt(first.request.platform, first.request.user_id) is None
    row = store.get(a)
    assert row.system_prompt is None and row.result["request"]["system"] is None and row.prompt == ""
    assert store.thread(b) == [] and store.answer_at(first.request.platform, "42", "1001") is None


def _shown_rows(store: HistoryStore) -> int:
    with store.engine.connect() as connection:
        return connection.execute(sqlalchemy.text("SELECT count(*) FROM exchange_messages")).scalar_one()


def test_every_message_of_a_long_answer_leads_back_to_it_until_forgotten_or_expired(store):
    platform = "telegram"
    first = make_result(prompt="A long story?", answer="Once… " * 900, platform=platform)
    first.request.chat_id, first.request.message_ref = "42", "1001"
    a = store.record(first)
    store.add_messages(platform, "42", a, ["1001", "1002", "1003"])
    store.add_messages(platform, "42", a, ["1002", "1003"])  # a restarted bot notes them again: no copies
    assert _shown_rows(store) == 3
    assert [store.answer_at(platform, "42", ref).id for ref in ("1001", "1002", "1003")] == [a, a, a]
    assert store.answer_at(platform, "43", "1002") is None and store.answer_at("discord", "42", "1002") is None
    store.forget(platform, "alice")
    assert store.answer_at(platform, "42", "1002") is None and _shown_rows(store) == 0, "forget deletes them"

    old = make_result(prompt="An old one?", platform=platform)
    old.started_at = datetime(2020, 1, 1, tzinfo=UTC)
    old.request.chat_id, old.request.message_ref = "42", "2001"
    b = store.record(old)
    store.add_messages(platform, "42", b, ["2002"])
    recent = make_result(prompt="A new one?", platform=platform)
    recent.started_at = datetime.now(UTC)
    recent.request.chat_id, recent.request.message_ref = "42", "3001"
    c = store.record(recent)
    assert store.scrub_older_than(30) == 1
    assert store.answer_at(platform, "42", "2002") is None and store.answer_at(platform, "42", "3001").id == c
    assert _shown_rows(store) == 1, "retention deletes the expired answer's messages, and only those"


def test_migration_0020_carries_the_message_of_every_answer_shown_before(store):
    """Answers stored under 0015 (one message each) are found by a reply after the upgrade."""
    from alembic import command

    from joulebot.history.engine import alembic_config, migrate

    shown = make_result(prompt="Before 0020?", platform="telegram")
    shown.request.chat_id, shown.request.message_ref = "42", "501"
    a = store.record(shown)
    with store.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0015")
        assert "exchange_messages" not in sqlalchemy.inspect(connection).get_table_names()
    migrate(store.engine)
    assert store.answer_at("telegram", "42", "501").id == a and _shown_rows(store) == 1


# -- the Telegram bot, end to end (fast: the Ollama stand-in is the model) ------------------------
def chats(ollama: OllamaStandIn) -> list[list[dict]]:
    """The messages of every /api/chat the worker sent, in order."""
    return [body["messages"] for _, path, body in ollama.requests if path == "/api/chat"]


class Chat:
    """One user's private chat with the bot, on the stand-in."""

    def __init__(self, api: BotApiStandIn, user: int, chat: int | None = None) -> None:
        self.api, self.user, self.chat = api, user, chat or user

    def _edits(self) -> list[dict]:
        return [p for m, p in self.api.to_chat(self.chat) if m == "editMessageText"]

    def ask(self, text: str, reply_to: int | None = None, **extra) -> dict:
        """Send a message and wait for its final answer (the edit with the footer); returns that edit."""
        done = {p["message_id"] for p in self._edits() if "⚡" in p["text"]}
        if reply_to is not None:
            extra["reply_to_message"] = {
                "message_id": reply_to,
                "date": int(time.time()),
                "text": "earlier",
                "chat": {"id": self.chat, "type": "private"},
                "from": BotApiStandIn.BOT,
            }
        self.api.message(self.user, text, chat_id=self.chat, **extra)
        _, final = self.api.wait_for(
            lambda m, p: (
                m == "editMessageText"
                and str(p.get("chat_id")) == str(self.chat)
                and "⚡" in p["text"]
                and p["message_id"] not in done
            )
        )
        return final

    def says(self, predicate) -> dict:
        return self.api.wait_for(
            lambda m, p: m == "sendMessage" and str(p["chat_id"]) == str(self.chat) and predicate(p["text"])
        )[1]


def test_a_private_chat_remembers_streams_branches_and_starts_afresh(bot, api, ollama, embedded):
    bot()
    alice = Chat(api, 601)
    first = alice.ask("Capital of France?")
    assert chats(ollama)[-1] == [{"role": "user", "content": "Capital of France?"}]
    assert "turn" not in first["text"]

    ollama.answer = ["Madrid", " is", " the", " capital", " of", " Spain", "."]
    ollama.chunk_delay_s = 0.6  # a slow model: the answer must show up while it is generated
    second = alice.ask("And of Spain?")
    ollama.chunk_delay_s = 0.0
    assert chats(ollama)[-1] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "And of Spain?"},
    ]
    assert "🧵 turn 2 · 14 context tokens" in second["text"]  # the stand-in's prompt_eval_count
    edits = [p for p in alice._edits() if p["message_id"] == second["message_id"]]
    partial = [p for p in edits if GENERATING in p["text"]]
    assert partial, f"no partial edit before the final one: {[p['text'] for p in edits]}"
    assert edits.index(partial[0]) < edits.index(second) and partial[0]["parse_mode"] == "HTML"
    assert partial[0]["text"].startswith("Madrid") and "⚡" not in partial[0]["text"]
    assert "retry:" in second["reply_markup"], "the answer carries a Retry button"

    ollama.answer = ["Berlin."]
    alice.ask("And of Germany?", reply_to=first["message_id"])  # a branch from the first answer
    assert chats(ollama)[-1] == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "And of Germany?"},
    ]
    alice.ask("And of Italy?")  # continues the branch it is now in
    assert [m["content"] for m in chats(ollama)[-1]] == [
        "Capital of France?",
        ANSWER,
        "And of Germany?",
        "Berlin.",
        "And of Italy?",
    ]

    api.message(601, "/new")
    alice.says(lambda t: t.startswith("🆕 New conversation"))
    alice.ask("Hello?")
    assert chats(ollama)[-1] == [{"role": "user", "content": "Hello?"}]

    rows = HistoryStore.open(embedded.sqlalchemy_url).recent("telegram", "601", 10)[::-1]
    assert [r.turn for r in rows] == [1, 2, 2, 3, 1]
    assert rows[1].parent_id == rows[0].id == rows[2].parent_id and rows[3].parent_id == rows[2].id
    assert len({r.conversation_id for r in rows[:4]}) == 1 and rows[4].conversation_id != rows[0].conversation_id


def test_branches_never_leak_another_users_conversation(bot, api, ollama, embedded):
    bot()
    alice, bob = Chat(api, 611), Chat(api, 612)
    secret = alice.ask("My password is hunter2. Capital of France?")
    # Bob "replies" to the message id of Alice's answer: ids are per chat, and it is not his
    bob.ask("What did I say?", reply_to=secret["message_id"])
    assert chats(ollama)[-1] == [{"role": "user", "content": "What did I say?"}]
    # a reply to a message that is not the bot's, or that was deleted, starts afresh too
    carol = Chat(api, 613)
    carol.ask("Where is Paris?", reply_to=999_999)
    assert chats(ollama)[-1] == [{"role": "user", "content": "Where is Paris?"}]
    # in a group, a mention starts a conversation; only a reply chain to the bot continues it
    mention = [{"type": "mention", "offset": 0, "length": 18}]
    api.message(614, "@joulebot_test_bot Capital of France?", chat_id=-5001, chat_type="group", entities=mention)
    api.wait_for(lambda m, p: m == "editMessageText" and str(p["chat_id"]) == "-5001" and "⚡" in p["text"])
    group_answer = next(p for m, p in api.to_chat(-5001) if m == "editMessageText" and "⚡" in p["text"])

    def group_answers(n: int):
        return lambda m, p: len([c for m, c in api.to_chat(-5001) if m == "editMessageText" and "⚡" in c["text"]]) == n

    api.message(615, "@joulebot_test_bot And of Spain?", chat_id=-5001, chat_type="group", entities=mention)
    api.wait_for(group_answers(2))
    assert chats(ollama)[-1] == [{"role": "user", "content": "And of Spain?"}]
    reply = {
        "message_id": group_answer["message_id"],
        "date": int(time.time()),
        "text": ANSWER,
        "chat": {"id": -5001, "type": "group"},
        "from": BotApiStandIn.BOT,
    }
    api.message(615, "And Germany?", chat_id=-5001, chat_type="group", reply_to_message=reply)
    api.wait_for(group_answers(3))
    assert [m["content"] for m in chats(ollama)[-1]] == ["Capital of France?", ANSWER, "And Germany?"]


def test_system_prompts_trimming_cancel_and_retry(bot, api, ollama, embedded):
    bot(MAX_CONTEXT_TOKENS="512", MAX_TOKENS="256", MAX_PROMPT_CHARS="400")
    dana = Chat(api, 621)
    api.message(621, "/system " + "x" * 401)
    dana.says(lambda t: t == "the system prompt has 401 characters; the maximum is 400")
    api.message(621, "/system You answer in one sentence.")
    dana.says(lambda t: t.startswith("Set your system prompt."))
    api.message(621, "/system")
    dana.says(lambda t: t == "System prompt (yours):\nYou answer in one sentence.")

    long = "Tell me about this: " + "y" * 330  # ~120 tokens by the Ollama estimate; the window keeps 256
    dana.ask(long)
    assert chats(ollama)[-1][0] == {"role": "system", "content": "You answer in one sentence."}
    second = dana.ask("Short?")
    assert len(chats(ollama)[-1]) == 4 and "🧵 turn 2" in second["text"] and "left out" not in second["text"]
    third = dana.ask(long + " again")  # with it, the conversation no longer fits: the oldest turn goes
    sent = chats(ollama)[-1]
    assert [m["content"] for m in sent] == ["You answer in one sentence.", "Short?", ANSWER, long + " again"]
    assert "the first 2 messages were left out" in third["text"] and "🧵 turn 3" in third["text"]
    fourth = dana.ask("And then?")
    assert "left out" not in fourth["text"], "the user is told once"

    # Retry: the same question with the same context and system prompt; both answers stay
    retry = json.loads(fourth["reply_markup"])["inline_keyboard"][0][0]["callback_data"]
    before = len(chats(ollama))
    api.press(621, fourth["message_id"], retry)
    api.wait_for(
        lambda m, p: (
            m == "editMessageText"
            and str(p["chat_id"]) == "621"
            and "⚡" in p["text"]
            and p["message_id"] != fourth["message_id"]
            and "🧵 turn 4" in p["text"]
        )
    )
    assert chats(ollama)[before] == chats(ollama)[before - 1], "a retry sends exactly the same messages"
    history = HistoryStore.open(embedded.sqlalchemy_url)
    rows = history.recent("telegram", "621", 2)
    assert rows[0].prompt == rows[1].prompt == "And then?" and rows[0].parent_id == rows[1].parent_id

    # Cancel: a question waiting behind a slow one is removed; nothing measured or stored
    ollama.answer = ["slow"] * 40  # 20 s: far longer than the cancel takes; it speeds up once that is done
    ollama.chunk_delay_s = 0.5
    api.message(622, "A slow one?")
    api.wait_for(lambda m, p: m == "editMessageText" and str(p["chat_id"]) == "622" and "generating" in p["text"])
    seen = len(api.calls)
    api.message(621, "Queued behind it?")
    _, waiting = api.wait_for(
        lambda m, p: (
            m == "editMessageText"
            and str(p["chat_id"]) == "621"
            and "position 1" in p["text"]
            and (m, p) in api.calls[seen:]
        )
    )
    cancel = json.loads(waiting["reply_markup"])["inline_keyboard"][0][0]["callback_data"]
    assert cancel.startswith("cancel:")
    api.press(622, 1, cancel)  # not Erin's question: refused
    api.wait_for(lambda m, p: m == "answerCallbackQuery" and "Nothing of yours" in p.get("text", ""))
    api.press(621, 1, cancel)
    api.wait_for(lambda m, p: m == "editMessageText" and str(p["chat_id"]) == "621" and p["text"] == CANCELLED)
    ollama.chunk_delay_s = 0.0
    api.wait_for(lambda m, p: m == "editMessageText" and str(p["chat_id"]) == "622" and "⚡" in p["text"], 60)
    assert "Queued behind it?" not in [r.prompt for r in history.recent("telegram", "621", 10)]
    assert not [c for c in chats(ollama) if c[-1]["content"] == "Queued behind it?"], "the model never saw it"
    api.message(621, "/cancel")
    dana.says(lambda t: t == "Nothing of yours is waiting to be cancelled.")


def test_cli_continue_streams_and_no_stream(embedded, ollama):
    env = {"OLLAMA_HOST": ollama.url, "DEFAULT_MODEL": "llama3"}
    first = run_cli(embedded, "ask", "Capital of France?", "--no-stream", **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(ANSWER + "\n")
    ollama.answer = ["Madrid", " is", " the", " capital", "."]
    ollama.chunk_delay_s = 0.5
    second = run_cli(embedded, "ask", "And of Spain?", "--continue", "--system", "Be brief.", **env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("Madrid is the capital.\n") and "🧵 turn 2" in second.stdout
    assert chats(ollama)[-1] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "And of Spain?"},
    ]
    as_json = run_cli(embedded, "ask", "And Italy?", "--continue", "--json", **env)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["request"]["turn"] == 3
    too_long = run_cli(embedded, "ask", "Hi", "--system", "z" * 5000, **env)
    assert too_long.returncode == 2 and "the system prompt has 5000 characters" in too_long.stderr


@pytest.mark.e2e
def test_llama_cpp_receives_the_earlier_turns_and_streams(embedded):
    """The embedded runner (SmolLM2): a continued question carries the first turn as context."""
    from joulebot.exchange import Result

    first = run_cli(embedded, "ask", "Name a colour.", "--json")
    assert first.returncode == 0, first.stderr
    streamed = run_cli(embedded, "ask", "Name another one.", "--continue")
    assert streamed.returncode == 0, streamed.stderr
    assert "🧵 turn 2 · " in streamed.stdout
    again = run_cli(embedded, "ask", "And one more?", "--continue", "--json")
    second = Result.model_validate_json(again.stdout)
    assert second.request.turn == 3 and second.context_turns == 4
    assert second.prompt_tokens > Result.model_validate_json(first.stdout).prompt_tokens


def long_answer_chunks() -> list[str]:
    """A long answer heavy in what HTML must escape: six quick big chunks fill the first message, then
    twenty small ones grow the second (and spill into a third) while the user watches."""
    big = ["".join(f"{n}.{k}: R&D <-> W&J & `P×t`; " for k in range(12)) + "\n\n" for n in range(6)]
    small = ["".join(f"Then {n}.{k}: A&B <C> & `x`; " for k in range(4)) + "\n" * (n % 5 == 4) for n in range(20)]
    return big + small


def test_a_long_answer_streams_on_into_new_messages_and_a_reply_to_any_piece_continues_it(bot, api, ollama, embedded):
    bot()
    erin = Chat(api, 631)
    erin.ask("Capital of France?")  # the model's load and warm-up happen here, not in the long answer
    api.message(631, "/new")
    erin.says(lambda t: t.startswith("🆕 New conversation"))

    ollama.answer = long_answer_chunks()
    answer = "".join(ollama.answer).strip()
    ollama.chunk_delay_s = 0.4  # about 10 s: the second message grows for 8 of them
    seen = len(api.calls)
    api.message(631, "Tell me everything about energy.")
    api.wait_for(
        lambda m, p: (
            (m in ("sendMessage", "editMessageText") and str(p["chat_id"]) == "631" and "⚡" in p["text"])
            and (m, p) in api.calls[seen:]
        ),
        timeout=120,
    )
    ollama.chunk_delay_s = 0.0
    calls = [(m, p) for m, p in api.calls[seen:] if str(p.get("chat_id")) == "631"]
    assert not [m for m, _ in calls if "!" in m], f"Telegram refused a call: {calls}"

    status = next(int(p["message_id"]) for m, p in calls if m == "editMessageText")
    pieces = [(i, shown) for i, shown in api.shown(631) if i >= status]
    assert len(pieces) == 3, [shown["visible"][:40] for _, shown in pieces]
    text = "".join(shown["visible"] for _, shown in pieces)
    assert text.startswith(visible_text(to_html(answer)) + "\n\n"), "every word once, in order"
    assert "⚡" in pieces[-1][1]["visible"] and not any("⚡" in s["visible"] for _, s in pieces[:-1])
    assert not any(GENERATING in s["visible"] for _, s in pieces), "no status line is left behind"
    assert [s["reply_to"] for _, s in pieces[1:]] == [i for i, _ in pieces[:-1]], "each continues the one before"
    second = pieces[1][0]
    growing = [
        n
        for n, (m, p) in enumerate(calls)
        if m == "editMessageText" and int(p["message_id"]) == second and GENERATING in p["text"]
    ]
    done_at = next(n for n, (_, p) in enumerate(calls) if "⚡" in p.get("text", ""))
    assert growing and max(growing) < done_at, "the second message was edited while the answer grew"
    assert all(calls[n][1]["parse_mode"] == "HTML" for n in growing)
    sent = [body for _, path, body in ollama.requests if path in ("/api/generate", "/api/chat")]
    assert sent and all(b["options"]["num_ctx"] == 2048 for b in sent), "the catalog's window for llama3"

    history = HistoryStore.open(embedded.sqlalchemy_url)
    (long_one,) = [r for r in history.recent("telegram", "631", 5) if r.answer == answer]

    def noted() -> set[int | None]:  # the last piece is noted once Telegram has given its message id
        shown = [history.answer_at("telegram", "631", str(i)) for i, _ in pieces]
        return {e.id if e else None for e in shown}

    wait(lambda: noted() == {long_one.id}, 10, "every piece to lead back to the answer")
    ollama.answer = ["And then it was stored."]
    reply = erin.ask("And then?", reply_to=second)
    assert chats(ollama)[-1] == [
        {"role": "user", "content": "Tell me everything about energy."},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "And then?"},
    ]
    assert "🧵 turn 2" in reply["text"]
    assert history.recent("telegram", "631", 1)[0].parent_id == long_one.id


def test_only_a_groups_administrators_change_its_system_prompt(bot, api, embedded):
    group = -6001
    api.members[(group, 702)] = "administrator"
    api.members[(group, 703)] = "creator"
    bot()
    refusal = "Only this group's administrators can set or clear its system prompt; /system shows it."

    def says(text: str) -> None:
        api.wait_for(lambda m, p: m == "sendMessage" and str(p["chat_id"]) == str(group) and p["text"] == text)

    api.message(701, "/system Answer like a pirate.", chat_id=group, chat_type="group")
    says(refusal)
    _, asked = api.wait_for(lambda m, p: m == "getChatMember")
    assert (int(asked["chat_id"]), int(asked["user_id"])) == (group, 701)
    api.message(702, "/system Answer briefly.", chat_id=group, chat_type="group")
    says("Set this group's system prompt. It applies from the next question.")
    api.message(701, "/system clear", chat_id=group, chat_type="group")
    api.wait_for(lambda m, p: m == "sendMessage" and p["text"] == refusal and len(api.to_chat(group)) >= 6)
    api.message(701, "/system", chat_id=group, chat_type="group")
    says("System prompt (this group):\nAnswer briefly.")
    history = HistoryStore.open(embedded.sqlalchemy_url)
    assert history.system_prompt("telegram", "701", str(group)) == "Answer briefly.", (
        "the refused clear changed nothing"
    )
    api.message(703, "/system clear", chat_id=group, chat_type="group")
    says("Cleared this group's system prompt.")
    assert history.system_prompt("telegram", "703", str(group)) is None
    assert len([1 for m, _ in api.calls if m == "getChatMember"]) == 4, "asked only to change it, never to see it"


def test_the_messages_of_an_answer_end_as_the_reply_whatever_the_stream_showed(api, monkeypatch):
    """AnswerMessages with the real python-telegram-bot client against the stand-in (no pacing here):
    the finished reply edits what differs, sends what is missing, deletes what is left over, and a
    restarted bot that no longer knows what its messages show still ends with exactly the reply."""
    import asyncio

    from telegram import Bot

    from joulebot.chat import telegram_stream
    from joulebot.chat.pacing import Pacing
    from joulebot.chat.telegram_format import split_html
    from joulebot.chat.telegram_stream import AnswerMessages

    monkeypatch.setattr(telegram_stream, "STATUS_EDIT_INTERVAL_S", 0.0)
    monkeypatch.setattr(telegram_stream, "FINAL_INTERVAL_S", 0.0)
    chat = 641
    long = "".join(long_answer_chunks())

    def showing() -> list[str]:
        return [shown["text"] for _, shown in api.shown(chat)]

    async def scenario() -> None:
        async with Bot(TOKEN, base_url=api.base_url) as bot:
            status = await bot.send_message(chat, "⏳ queued")
            messages = AnswerMessages(bot, str(chat), [str(status.message_id)], Pacing(), "⏳ queued")
            for _ in range(4):
                await messages.update("✍️ generating", long)
            streamed = partial_pieces(long, GENERATING)
            assert showing() == streamed and len(streamed) == 3
            calls = len(api.calls)
            await messages.update("✍️ generating", long)
            assert len(api.calls) == calls, "nothing changed: no call"

            # an error ends it: one message says so, the streamed rest is deleted
            assert await messages.finish(["⚠️ the worker failed"])
            assert showing() == ["⚠️ the worker failed"]
            assert len([m for m, p in api.calls if m == "deleteMessage"]) == 2

            # a restarted bot: three messages it does not know the text of, a reply of two pieces
            more = [str((await bot.send_message(chat, f"stale {n}")).message_id) for n in range(2)]
            resumed = AnswerMessages(bot, str(chat), [str(status.message_id), *more], Pacing())
            final = split_html(to_html(long[: len(long) // 2]) + "\n\n⚡ 1 J total")
            assert len(final) == 2 and await resumed.finish(final)
            assert showing() == final and resumed.ids == [str(status.message_id), more[0]]

    asyncio.run(scenario())
    assert not [m for m, _ in api.calls if "!" in m], "Telegram refused nothing"
