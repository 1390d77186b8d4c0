"""The web chat over plain HTTP, as a browser without JavaScript (or a forger) sends it, against
`joulebot web` as its own process with a real worker, a private Redis server and the Ollama stand-in:
sessions and their cookie, CSRF and origin checks, the forms, WEB_CHAT=keys and off, the anonymous
limits, and the API's `joulebot.parent_id`, `joulebot.images_of` and cancel route that the page uses; images
kept (KEEP_IMAGES) for a Retry and a conversation's later turns, through the API and the page's forms; a
session's user forgetting their own questions and answers (in history, Redis and the kept images)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from imagefiles import png
from PIL import Image
from sqlalchemy import text
from standins import OllamaStandIn, free_port
from test_forget_means_forgotten import holding
from waiting import day_start, minute_start
from webstack import Stack, running_stack, start_web, stop

from joulebot.attachments.kept import kept_folder
from joulebot.web.chat_markup import answer_html

ANSWER = ["Paris", " is the capital", " of France."]
BUSY = ["Busy"] + [" busy"] * 60
WEB = {"WEB_CHAT": "open", "WEB_CHAT_PER_IP_PER_MINUTE": "100", "WEB_CHAT_PER_MINUTE": "100", "KEEP_IMAGES": "true"}
BLUE, RED = (30, 60, 220), (200, 40, 40)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    ollama = OllamaStandIn({"llama3:8b": "8.0B", "tinyllama:1.1b": "1.1B", "llava:7b": "7.2B"})
    ollama.vision = {"llava:7b"}
    ollama.answer_for = lambda body: BUSY if "busy" in str(body["messages"][-1]["content"]) else ANSWER
    ollama.chunk_delay_s = 0.3  # a busy answer takes ~18 s: long enough to cancel behind it (then sped up)
    limits = {"JOB_TIMEOUT_S": "60", "STREAM_INTERVAL_S": "0.1"}
    with running_stack(tmp_path_factory.mktemp("chat"), ollama, f"chat-http-{os.getpid()}", limits, **WEB) as stack:
        yield stack


class Visitor:
    """One browser: its own cookie jar (its own session), the page's CSRF token read from the page."""

    def __init__(self, base: str, **headers: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=120, headers=headers)
        self.page = self.http.get("/chat")
        self.csrf = _csrf(self.page.text) if self.page.status_code == 200 else ""

    def ask(self, prompt: str, model: str = "llama3", **fields: str) -> httpx.Response:
        data = {"csrf": self.csrf, "model": model, "prompt": prompt, **fields}
        return self.http.post("/chat/ask", data=data, files={"images": ("", b"", "application/octet-stream")})

    def api(self, body: dict, **headers: str) -> httpx.Response:
        return self.http.post("/v1/chat/completions", json=body, headers={"x-csrf-token": self.csrf, **headers})


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def _question(prompt: str, model: str = "llama3", **more) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **more}


def _chats(stack: Stack) -> list[list[str]]:
    return [[m["content"] for m in b["messages"]] for _, p, b in stack.ollama.requests if p == "/api/chat"]


def _last_chat(stack: Stack) -> list[dict]:
    """The messages of the last question the model received."""
    return [b for _, p, b in stack.ollama.requests if p == "/api/chat"][-1]["messages"]


def _colour(image: str) -> tuple[int, int, int]:
    """The colour of an image the model received (base64, as Ollama takes it)."""
    return Image.open(io.BytesIO(base64.b64decode(image))).convert("RGB").getpixel((0, 0))


def _picture(colour: tuple[int, int, int]) -> dict:
    url = "data:image/png;base64," + base64.b64encode(png(64, 48, colour)).decode()
    return {"type": "image_url", "image_url": {"url": url}}


def _forget_anonymous_counts(stack: Stack) -> None:
    server = redis.Redis.from_url(stack.redis.url)
    for pattern in ("joulebot:rate:web-address:*", "joulebot:rate:web-everyone:*", "joulebot:rate:web:*"):
        for key in server.scan_iter(pattern):
            server.delete(key)


def test_the_session_cookie_is_httponly_strict_secure_behind_https_and_names_nothing(stack):
    visitor = Visitor(stack.base)
    cookie = visitor.page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    value = visitor.http.cookies["joulebot_chat"]
    assert visitor.csrf not in cookie and value not in visitor.page.text  # the token is not the cookie
    keys = [k.decode() for k in redis.Redis.from_url(stack.redis.url).keys("joulebot:web-session:*")]
    assert f"joulebot:web-session:{hashlib.sha256(value.encode()).hexdigest()}" in keys
    assert not any(value in k for k in keys)  # Redis holds no cookie that could be replayed
    proxied = httpx.get(f"{stack.base}/chat", headers={"x-forwarded-proto": "https"})  # a TLS proxy in front
    assert "Secure" in proxied.headers["set-cookie"]
    assert "script-src 'self'" in visitor.page.headers["content-security-policy"]


def test_forms_and_the_pages_api_calls_need_its_token_and_our_origin(stack):
    visitor, other = Visitor(stack.base), Visitor(stack.base)
    before = len(_chats(stack))
    refused = [
        visitor.http.post("/chat/ask", data={"model": "llama3", "prompt": "no token"}),
        visitor.http.post("/chat/ask", data={"csrf": other.csrf, "model": "llama3", "prompt": "another's token"}),
        visitor.http.post(
            "/chat/ask",
            data={"csrf": visitor.csrf, "model": "llama3", "prompt": "from elsewhere"},
            headers={"origin": "https://evil.example"},
        ),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert all("reload /chat" in r.text for r in refused)
    api = [
        visitor.http.post("/v1/chat/completions", json=_question("cookie alone")),
        visitor.api(_question("another's token"), **{"x-csrf-token": other.csrf}),
        visitor.api(_question("from elsewhere"), origin="https://evil.example"),
    ]
    assert [r.status_code for r in api] == [403, 403, 403] and api[0].json()["error"]["code"] == "csrf"
    assert len(_chats(stack)) == before  # nothing was asked
    assert httpx.post(f"{stack.base}/v1/chat/completions", json=_question("no session")).status_code == 401


def test_without_javascript_a_question_waits_continues_compares_and_is_seen_by_its_session_only(stack):
    visitor = Visitor(stack.base)
    first = visitor.ask("What is the capital of France?")
    where = first.headers["location"]
    assert first.status_code == 303 and where.startswith("/chat?after=")
    exchange = int(re.search(r"after=(\d+)", where).group(1))
    page = visitor.http.get(where).text
    assert "Paris is the capital of France." in page and "J total" in page and f'href="/answers/{exchange}"' in page
    second = visitor.ask("And of Germany?", parent_id=str(exchange))
    assert second.status_code == 303
    assert _chats(stack)[-1][-3:] == [
        "What is the capital of France?",
        "Paris is the capital of France.",
        "And of Germany?",
    ]
    compared = visitor.ask("Which is greener?", compare_with="tinyllama")
    assert compared.status_code == 303 and compared.headers["location"].startswith("/chat/compare/")
    page = visitor.http.get(compared.headers["location"]).text
    assert re.search(r"used [\d.]+× the energy of", page) and page.count('class="bill"') == 2

    stranger = Visitor(stack.base)
    assert "capital of France" not in stranger.page.text
    for path in (where, f"/chat/turn/{exchange}", compared.headers["location"]):
        seen = stranger.http.get(path)
        assert seen.status_code == 404 and "capital of France" not in seen.text and "greener" not in seen.text
    assert stranger.api(_question("go on", joulebot={"parent_id": exchange})).status_code == 404


def test_a_question_waiting_in_the_queue_is_cancelled_without_javascript(stack):
    key = stack.key("keeps-busy")
    busy = threading.Thread(target=lambda: stack.sdk(key).chat.completions.create(**_question("busy busy")))
    busy.start()
    visitor = Visitor(stack.base)
    waiting: dict[str, httpx.Response] = {}
    try:
        deadline = time.monotonic() + 120
        while not any("busy busy" in c for c in _chats(stack)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        asking = threading.Thread(target=lambda: waiting.update(response=visitor.ask("Take me back")))
        asking.start()
        while 'name="request_id"' not in (page := visitor.http.get("/chat").text):  # listed as waiting
            assert time.monotonic() < deadline and asking.is_alive()
            time.sleep(0.1)
        request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
        said = visitor.http.post("/chat/cancel", data={"csrf": visitor.csrf, "request_id": request_id})
        assert said.status_code == 200 and "Cancelled 1 waiting question" in said.text
        asking.join(120)
    finally:
        stack.ollama.chunk_delay_s = 0.0  # the busy answer has done its part: let it end now
        busy.join(120)
        stack.ollama.chunk_delay_s = 0.3
    assert waiting["response"].status_code == 409 and "cancelled before it ran" in waiting["response"].text
    assert not any("Take me back" in c for c in _chats(stack))


def test_keys_mode_signs_in_with_a_key_and_a_revoked_key_ends_the_session(stack):
    port = free_port()
    web = start_web(stack.env(WEB_CHAT="keys"), port)
    try:
        base = f"http://127.0.0.1:{port}"
        visitor = httpx.Client(base_url=base, timeout=120)
        assert 'name="api_key"' in visitor.get("/chat").text and "joulebot_chat" not in visitor.cookies
        wrong = visitor.post("/chat/signin", data={"api_key": "jb-wrong"})
        assert wrong.status_code == 401 and "jb-wrong" not in wrong.text
        key = stack.key("browser-user")
        signed = visitor.post("/chat/signin", data={"api_key": key})
        assert signed.status_code == 303 and key not in signed.headers["set-cookie"]
        page = visitor.get("/chat").text
        assert "Sign out (browser-user)" in page and key not in page
        answer = visitor.post(
            "/v1/chat/completions", json=_question("Signed in?"), headers={"x-csrf-token": _csrf(page)}
        )
        assert answer.status_code == 200
        assert [e.prompt for e in stack.history().recent("api", "browser-user")] == ["Signed in?"]  # the key's user
        assert stack.cli("keys", "revoke", "browser-user").returncode == 0
        assert 'name="api_key"' in visitor.get("/chat").text  # signed out by the revocation
        again = visitor.post("/v1/chat/completions", json=_question("Still?"), headers={"x-csrf-token": _csrf(page)})
        assert again.status_code == 401
        assert httpx.get(f"{base}/chat", headers={"cookie": "joulebot_chat=anything"}).status_code == 200
    finally:
        stop(web)


def test_the_chat_is_off_unless_configured(stack):
    port = free_port()
    web = start_web(stack.env(), port)
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/chat").status_code == 404 and 'href="/chat"' not in httpx.get(f"{base}/").text
        visitor = Visitor(stack.base)  # a session of the open chat: worth nothing where the chat is off
        cookie = {"cookie": f"joulebot_chat={visitor.http.cookies['joulebot_chat']}", "x-csrf-token": visitor.csrf}
        assert httpx.post(f"{base}/v1/chat/completions", json=_question("hi"), headers=cookie).status_code == 401
    finally:
        stop(web)


def test_anonymous_visitors_are_held_to_per_address_and_global_limits(stack):
    port = free_port()
    env = stack.env(WEB_CHAT="open", WEB_CHAT_PER_IP_PER_MINUTE="2", WEB_CHAT_PER_MINUTE="3")
    web = start_web(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        minute_start()
        _forget_anonymous_counts(stack)  # the module's earlier tests asked from this address this minute
        here, also_here = Visitor(base), Visitor(base)
        assert [here.api(_question(f"q{i}")).status_code for i in range(2)] == [200, 200]
        refused = also_here.api(_question("a third from this address"))  # another session, the same address
        assert refused.status_code == 429 and "WEB_CHAT_PER_IP_PER_MINUTE" in refused.json()["error"]["message"]
        assert refused.headers["retry-after"]
        # addresses as a proxy in front of joulebot (on this machine: trusted by uvicorn) reports them
        elsewhere = Visitor(base, **{"x-forwarded-for": "192.0.2.7"})
        assert elsewhere.api(_question("from elsewhere")).status_code == 200
        crowd = Visitor(base, **{"x-forwarded-for": "192.0.2.8"}).api(_question("one too many"))
        assert crowd.status_code == 429 and "WEB_CHAT_PER_MINUTE" in crowd.json()["error"]["message"]
    finally:
        stop(web)


def test_the_side_list_brings_todays_budget_use_with_it(stack):
    day_start()  # the day the budget counts must not end mid-test
    port = free_port()
    web = start_web(stack.env(**WEB, DAILY_ENERGY_BUDGET_WH="5"), port)
    try:
        visitor = Visitor(f"http://127.0.0.1:{port}")
        before = visitor.http.get("/chat/conversations").text
        asked = visitor.api(_question("How green is this answer?"))
        assert asked.status_code == 200, asked.text
        exchange = asked.json()["joulebot"]["exchange_id"]  # stored: it counts against the budget now
        after = visitor.http.get(f"/chat/conversations?after={exchange}").text
    finally:
        stop(web)
    assert "🔋 Today: 0 of 5.00 Wh of your energy budget" in before
    used = re.search(r"🔋 Today: ([0-9.e-]+) of 5\.00 Wh \(estimated\) of your energy budget", after)
    assert used and float(used.group(1)) > 0 and 'aria-current="page"' in after, after


def test_the_api_continues_only_the_askers_own_answers(stack):
    alice, bob = stack.sdk(stack.key("alice")), stack.sdk(stack.key("bob"))
    first = alice.chat.completions.create(**_question("What is the capital of France?"))
    exchange = first.model_dump()["joulebot"]["exchange_id"]
    follow = alice.chat.completions.create(
        **_question("And of Germany?"), extra_body={"joulebot": {"parent_id": exchange}}
    )
    assert _chats(stack)[-1][-3:] == [
        "What is the capital of France?",
        "Paris is the capital of France.",
        "And of Germany?",
    ]
    stored = stack.history().get(follow.model_dump()["joulebot"]["exchange_id"])
    assert stored.parent_id == exchange and stored.turn == 2
    with pytest.raises(Exception) as foreign:
        bob.chat.completions.create(**_question("Go on"), extra_body={"joulebot": {"parent_id": exchange}})
    assert getattr(foreign.value, "status_code", None) == 404 and "of yours" in str(foreign.value)
    both = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    with pytest.raises(Exception) as twice:
        alice.chat.completions.create(model="llama3", messages=both, extra_body={"joulebot": {"parent_id": exchange}})
    assert getattr(twice.value, "status_code", None) == 400
    cancelled = httpx.post(
        f"{stack.base}/v1/chat/completions/chatcmpl-{first.id.removeprefix('chatcmpl-')}/cancel",
        headers={"authorization": f"Bearer {stack.key('mallory')}"},
    )
    assert cancelled.status_code == 200 and cancelled.json()["message"].startswith("Nothing of yours")


@pytest.mark.unit
@given(st.text(alphabet=st.sampled_from(list("<>&\"'`/ \nabscript=x")), max_size=200))
def test_nothing_a_model_says_becomes_markup(text):
    html = str(answer_html(text))
    ours = re.sub(r'</?(p|pre|code|span)( (class|data-language)="[^"<>]*")*>', "", html)
    assert "<" not in ours and ">" not in ours  # every other angle bracket came from the model: escaped


def test_the_api_keeps_an_image_for_the_later_turns_and_asks_with_it_again_with_images_of(stack):
    key = stack.key("photographer")
    client, folder = stack.sdk(key), kept_folder(stack.root / "data", "api", "photographer")
    asked = [{"role": "user", "content": [{"type": "text", "text": "What colour?"}, _picture(BLUE)]}]
    exchange = client.chat.completions.create(model="llava", messages=asked).model_dump()["joulebot"]["exchange_id"]
    (sent,) = _last_chat(stack)[-1]["images"]
    assert _colour(sent) == BLUE and len(list(folder.iterdir())) == 1  # kept for its asker, as the model got it

    follow = client.chat.completions.create(
        **_question("And its shape?", "llava"), extra_body={"joulebot": {"parent_id": exchange}}
    )
    earlier, _, question = _last_chat(stack)
    assert earlier["images"] == [sent] and _colour(earlier["images"][0]) == BLUE and "images" not in question
    assert "1 earlier image of this conversation" in follow.model_dump()["joulebot"]["footer"]

    again = client.chat.completions.create(
        **_question("What colour, again?", "llava"), extra_body={"joulebot": {"images_of": exchange}}
    )
    (retried,) = _last_chat(stack)
    assert retried["content"] == "What colour, again?" and _colour(retried["images"][0]) == BLUE
    assert retried["images"] == [sent]
    assert stack.history().get(again.model_dump()["joulebot"]["exchange_id"]).image_count == 1

    headers = {"authorization": f"Bearer {key}"}
    four = {"role": "user", "content": [{"type": "text", "text": "Compare"}] + [_picture(RED)] * 4}
    body = {"model": "llava", "messages": [four], "joulebot": {"images_of": exchange}}
    too_many = httpx.post(f"{stack.base}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert too_many.status_code == 400  # the kept image counts against MAX_IMAGES with the message's own
    assert too_many.json()["error"]["message"] == "at most 4 images per message (this one has 5)"
    neighbour = {"authorization": f"Bearer {stack.key('neighbour')}"}
    body = {**_question("Mine now?", "llava"), "joulebot": {"images_of": exchange}}
    foreign = httpx.post(f"{stack.base}/v1/chat/completions", json=body, headers=neighbour, timeout=60)
    assert foreign.status_code == 404 and foreign.json()["error"]["param"] == "joulebot.images_of"
    assert f"no answer #{exchange} of yours" in foreign.json()["error"]["message"]

    blind = [{"role": "user", "content": [{"type": "text", "text": "Colour?"}, _picture(RED)]}]
    refused = httpx.post(
        f"{stack.base}/v1/chat/completions", json={"model": "llama3", "messages": blind}, headers=neighbour, timeout=60
    )
    assert refused.status_code == 400 and not kept_folder(stack.root / "data", "api", "neighbour").exists()

    forgot = stack.cli("history", "--forget", "api:photographer")  # the API's users are forgotten here
    assert forgot.returncode == 0 and "1 kept image" in forgot.stdout, forgot.stdout
    assert not folder.exists()


def test_the_pages_retry_and_second_turn_show_the_answers_image_again_without_javascript(stack):
    visitor = Visitor(stack.base)
    data = {"csrf": visitor.csrf, "model": "llava", "prompt": "What colour is this?"}
    asked = visitor.http.post("/chat/ask", data=data, files={"images": ("red.png", png(64, 48, RED), "image/png")})
    assert asked.status_code == 303
    exchange = int(re.search(r"after=(\d+)", asked.headers["location"]).group(1))
    (sent,) = _last_chat(stack)[-1]["images"]
    page = visitor.http.get(asked.headers["location"]).text
    retry = re.search(r'<form [^>]*class="inline asks retry">(.*?)</form>', page, re.S).group(1)
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', retry))
    assert fields["images_of"] == str(exchange) and fields["prompt"] == "What colour is this?"
    again = visitor.http.post("/chat/ask", data=fields, files={"images": ("", b"", "application/octet-stream")})
    assert again.status_code == 303
    (retried,) = _last_chat(stack)
    assert retried["images"] == [sent] and _colour(retried["images"][0]) == RED  # the Retry sent the image again

    assert visitor.ask("And its shape?", model="llava", parent_id=str(exchange)).status_code == 303
    earlier, _, question = _last_chat(stack)
    assert earlier["images"] == [sent] and _colour(earlier["images"][0]) == RED and "images" not in question
    plain = visitor.ask("No picture here")
    page = visitor.http.get(plain.headers["location"]).text
    assert "images_of" not in re.search(r'<form [^>]*class="inline asks retry">(.*?)</form>', page, re.S).group(1)


def test_the_list_of_conversations_is_a_fragment_of_the_sessions_own(stack):
    visitor, stranger = Visitor(stack.base), Visitor(stack.base)
    first = int(re.search(r"after=(\d+)", visitor.ask("Where is Paris?").headers["location"]).group(1))
    listed = visitor.http.get(f"/chat/conversations?after={first}")
    assert listed.status_code == 200 and listed.headers["cache-control"] == "private, no-store"
    assert re.search(
        rf'<li aria-current="page"><a href="/chat\?after={first}#turn-{first}">Where is Paris\?</a>', listed.text
    )
    assert "aria-current" not in visitor.http.get("/chat/conversations").text
    assert "Where is Paris" not in stranger.http.get("/chat/conversations").text
    assert httpx.get(f"{stack.base}/chat/conversations").status_code == 403  # no session
    assert visitor.http.get("/chat/conversations?after=0").status_code == 400


@contextmanager
def _secret_answers(stack: Stack) -> Iterator[None]:
    """The model answers a question holding `secret-X` with `reply-X`: words no other answer has."""
    before = stack.ollama.answer_for

    def answer(body: dict) -> list[str]:
        found = re.search(r"secret-(\w+)", str(body["messages"][-1]["content"]))
        return [f"reply-{found.group(1)}", " indeed."] if found else before(body)

    stack.ollama.answer_for = answer
    try:
        yield
    finally:
        stack.ollama.answer_for = before


def _secret() -> tuple[str, str]:
    """A question's marker and the one its answer holds."""
    marker = uuid.uuid4().hex[:10]
    return f"secret-{marker}", f"reply-{marker}"


def _exchange_of(asked: httpx.Response) -> int:
    assert asked.status_code == 303, asked.text
    return int(re.search(r"after=(\d+)", asked.headers["location"]).group(1))


def _user_of(stack: Stack, exchange: int) -> str:
    """The history's platform user id of an answer's asker."""
    with stack.history().engine.connect() as connection:
        query = "SELECT u.platform_user_id FROM exchanges x JOIN users u ON u.id = x.user_id WHERE x.id = :id"
        return connection.execute(text(query), {"id": exchange}).scalar_one()


def _words(stack: Stack, exchange: int) -> tuple[str, str]:
    row = stack.history().get(exchange)
    return row.prompt, row.answer


def test_a_session_forgets_its_words_in_history_redis_and_kept_images_and_no_one_elses(stack):
    visitor, other = Visitor(stack.base), Visitor(stack.base)
    (prompt, reply), (kept_prompt, kept_reply) = _secret(), _secret()
    with _secret_answers(stack):
        data = {"csrf": visitor.csrf, "model": "llava", "prompt": f"What colour is {prompt}?"}
        picture = {"images": ("red.png", png(64, 48, RED), "image/png")}
        first = _exchange_of(visitor.http.post("/chat/ask", data=data, files=picture))
        second = _exchange_of(visitor.ask(f"And {prompt} again?", parent_id=str(first)))
        others = _exchange_of(other.ask(f"Keep {kept_prompt}"))
    anonymous = _user_of(stack, first)
    folder = kept_folder(stack.root / "data", "web", anonymous)
    server = redis.Redis.from_url(stack.redis.url)
    assert anonymous.startswith("anon-") and len(list(folder.iterdir())) == 1
    assert holding(server, prompt) and reply in _words(stack, second)[1]  # what the forget must find

    page = visitor.http.get("/chat").text
    assert '<a href="/chat/forget">Forget my questions and answers</a>' in page
    asking = visitor.http.get("/chat/forget")
    assert asking.status_code == 200 and asking.headers["cache-control"] == "private, no-store"
    assert "every question this session asked" in asking.text and "anonymous energy figures" in asking.text
    assert "still counts against the daily energy budget" in asking.text
    assert f'name="csrf" value="{visitor.csrf}"' in asking.text and 'action="/chat/forget"' in asking.text
    assert _words(stack, first)[0] == f"What colour is {prompt}?"  # asking first deleted nothing

    forgot = visitor.http.post("/chat/forget", data={"csrf": visitor.csrf})
    assert forgot.status_code == 200
    assert "Deleted the prompts and answers of 2 exchanges and 1 kept image." in forgot.text
    assert "None yet: ask below." in forgot.text and prompt not in forgot.text
    for exchange in (first, second):
        row = stack.history().get(exchange)
        assert (row.prompt, row.answer, row.user_id) == ("", "", None) and row.energy_total_j  # the figures stay
        assert prompt not in str(row.result) and reply not in str(row.result)
    assert holding(server, prompt, reply) == [] and not folder.exists()
    assert visitor.http.get(f"/chat/turn/{first}").status_code == 404
    assert prompt not in visitor.http.get("/chat/conversations").text
    assert prompt not in visitor.http.get("/chat").text  # the session stays: it may ask again

    assert _words(stack, others) == (f"Keep {kept_prompt}", f"{kept_reply} indeed.")  # another's stay
    assert holding(server, kept_prompt) and kept_prompt in other.http.get("/chat").text
    refused = [visitor.http.post("/chat/forget", data={"csrf": visitor.csrf}).status_code for _ in range(7)]
    assert 429 in refused  # a forget rewrites Redis' and the database's files: a few a minute at most


def test_a_forget_without_the_pages_token_or_from_another_site_deletes_nothing(stack):
    visitor, other = Visitor(stack.base), Visitor(stack.base)
    prompt, _ = _secret()
    exchange = _exchange_of(visitor.ask(f"Keep {prompt}"))
    refused = [
        visitor.http.post("/chat/forget", data={}),
        visitor.http.post("/chat/forget", data={"csrf": other.csrf}),
        visitor.http.post("/chat/forget", data={"csrf": visitor.csrf}, headers={"origin": "https://evil.example"}),
        httpx.post(f"{stack.base}/chat/forget", data={"csrf": visitor.csrf}),  # no session
        httpx.get(f"{stack.base}/chat/forget"),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert all(prompt not in r.text for r in refused)
    assert _words(stack, exchange)[0] == f"Keep {prompt}" and prompt in visitor.http.get("/chat").text
    assert holding(redis.Redis.from_url(stack.redis.url), prompt)
    nothing = other.http.post("/chat/forget", data={"csrf": other.csrf})  # a session that never asked
    assert nothing.status_code == 200 and "Nothing to forget: no answer of yours is stored." in nothing.text


def test_keys_mode_forgets_what_the_keys_user_asked_through_the_api_too(stack):
    name = f"forgetful-{uuid.uuid4().hex[:6]}"
    key, bystander = stack.key(name), stack.key(f"bystander-{uuid.uuid4().hex[:6]}")
    (by_api, _), (by_page, _), (theirs, _) = _secret(), _secret(), _secret()
    port = free_port()
    web = start_web(stack.env(WEB_CHAT="keys"), port)
    try:
        browser = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        assert browser.post("/chat/signin", data={"api_key": key}).status_code == 303
        csrf = _csrf(browser.get("/chat").text)
        with _secret_answers(stack):
            through_api = stack.sdk(key).chat.completions.create(**_question(f"Via the API {by_api}"))
            data = {"csrf": csrf, "model": "llama3", "prompt": f"Via the page {by_page}"}
            on_page = _exchange_of(browser.post("/chat/ask", data=data))
            not_mine = stack.sdk(bystander).chat.completions.create(**_question(f"Not mine {theirs}"))
        api_exchange = through_api.model_dump()["joulebot"]["exchange_id"]
        asking = browser.get("/chat/forget").text
        assert f"api:{name}" in asking and "through the API with that key" in asking
        forgot = browser.post("/chat/forget", data={"csrf": csrf})
        assert forgot.status_code == 200 and "Deleted the prompts and answers of 2 exchanges." in forgot.text
        assert "None yet: ask below." in forgot.text and f"Sign out ({name})" in forgot.text  # still signed in
    finally:
        stop(web)
    assert [_words(stack, e) for e in (api_exchange, on_page)] == [("", "")] * 2
    assert stack.history().recent("api", name) == []
    server = redis.Redis.from_url(stack.redis.url)
    assert holding(server, by_api, by_page) == [] and holding(server, theirs)
    assert _words(stack, not_mine.model_dump()["joulebot"]["exchange_id"])[0] == f"Not mine {theirs}"


def test_with_the_history_database_away_a_forget_deletes_nothing_and_says_so_in_one_line(stack):
    port = free_port()
    away = f"postgresql://joulebot@127.0.0.1:{free_port()}/joulebot"  # nothing listens there
    web = start_web(stack.env(**WEB, DATABASE_URL=away), port)
    try:
        visitor = Visitor(f"http://127.0.0.1:{port}")
        prompt, _ = _secret()
        assert visitor.api(_question(f"Keep {prompt}")).status_code == 200  # the worker stores it
        forgot = visitor.http.post("/chat/forget", data={"csrf": visitor.csrf})
    finally:
        stop(web)
    assert forgot.status_code == 503
    line = "Nothing was deleted: the history database cannot be reached now; try again in a minute."
    assert line in forgot.text and away not in forgot.text
    assert holding(redis.Redis.from_url(stack.redis.url), prompt)  # Redis untouched: asking again works


def test_a_forget_history_refuses_after_redis_says_what_was_deleted_and_a_second_forget_finishes(stack):
    port = free_port()
    web = start_web(stack.env(**WEB, HISTORY_TIMEOUT_S="2"), port)
    try:
        visitor = Visitor(f"http://127.0.0.1:{port}")
        prompt, _ = _secret()
        exchange = _exchange_of(visitor.ask(f"Keep {prompt}"))
        server = redis.Redis.from_url(stack.redis.url)
        assert holding(server, prompt)
        locked = sqlite3.connect(stack.root / "history.sqlite3", isolation_level=None)
        try:  # another writer holds the database: forget_user reads it, clears Redis, then cannot write
            locked.execute("BEGIN IMMEDIATE")
            refused = visitor.http.post("/chat/forget", data={"csrf": visitor.csrf})
        finally:
            locked.execute("ROLLBACK")
            locked.close()
        assert refused.status_code == 503
        assert "Your questions and answers are still in history: its database did not answer" in refused.text
        assert _words(stack, exchange)[0] == f"Keep {prompt}" and holding(server, prompt) == []  # as said
        again = visitor.http.post("/chat/forget", data={"csrf": visitor.csrf})
    finally:
        stop(web)
    assert again.status_code == 200 and "Deleted the prompts and answers of 1 exchange." in again.text
    assert _words(stack, exchange) == ("", "")
