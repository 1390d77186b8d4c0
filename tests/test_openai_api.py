"""The OpenAI-compatible API through the real `openai` SDK (sync and async, streamed and not) and curl,
against `joulebot web` with a real worker answering through the Ollama stand-in and SmolLM2 (llama.cpp),
its own Redis server and a SQLite history: the bill in `usage`, errors in OpenAI's shape, keys,
limits, and an answer that outlives its client."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis
from imagefiles import png
from standins import OllamaStandIn, free_port
from waiting import day_start, minute_start
from webstack import Stack, running_stack, start_web, stop

from joulebot.history.api_keys import create_key
from joulebot.keys import deliveries_key, user_deliveries_key

ROOT = Path(__file__).resolve().parent.parent
ANSWER = "Paris is the capital of France."
LIMITS = {"MAX_PROMPTS_PER_MINUTE": "4", "MAX_PENDING_PER_USER": "2", "JOB_TIMEOUT_S": "20"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    ollama = OllamaStandIn({"llama3:8b": "8.0B", "tinyllama:1.1b": "1.1B", "llava:7b": "7.2B"})
    ollama.vision = {"llava:7b"}
    ollama.answer = ["Paris", " is the capital", " of France."]
    with running_stack(tmp_path_factory.mktemp("openai"), ollama, f"api-box-{os.getpid()}", LIMITS) as stack:
        yield stack


def _ask(client: openai.OpenAI, prompt: str = "What is the capital of France?", **more):
    return client.chat.completions.create(model="llama3", messages=[{"role": "user", "content": prompt}], **more)


def _check_bill(usage: dict, box: str) -> None:
    energy, carbon, sci = usage["energy"], usage["carbon"], usage["sci"]
    assert energy["total_j"] > 0 and energy["total_uncertainty_j"] > 0 and energy["seconds"] > 0
    assert energy["measured"] is False and energy["source"] == "estimate"  # an estimate says it is one
    assert energy["label"].startswith("estimated") and "above_idle_j" in energy  # None until an idle baseline
    # the Ollama stand-in reports 761 ms of work inside a window of a few: the bill says why it is not split
    assert energy["phases"]["timing"].startswith("Ollama") and "do not fit" in energy["phases"]["error"]
    assert carbon["co2e_g"] > 0 and carbon["zone"] == "DE" and carbon["provenance"] == "static"
    assert carbon["zone_default"] is True  # no GRID_ZONE here
    assert carbon["caveat"] == "from estimated energy" and "static" in carbon["intensity_label"]
    assert sci["g_per_answer"] > carbon["co2e_g"] and sci["caveat"] == "from estimated energy"


def test_the_sync_sdk_gets_the_answer_and_its_bill_streamed_or_not(stack):
    client = stack.sdk(stack.key("sync"))
    answer = _ask(client)
    assert answer.choices[0].message.content == ANSWER and answer.choices[0].finish_reason == "stop"
    assert answer.model == "llama3" and answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")
    usage = answer.usage.model_dump()
    assert usage["prompt_tokens"] == 14 and usage["completion_tokens"] == 9 and usage["total_tokens"] == 23
    _check_bill(usage, stack.box)
    extra = answer.model_dump()["joulebot"]
    assert extra["box"] == stack.box and extra["exchange_id"] > 0 and extra["dropped_turns"] == 0
    assert "⚡" in extra["footer"] and "estimated" in extra["footer"]
    stored = stack.history().get(extra["exchange_id"])
    assert stored.platform == "api" and stored.answer == ANSWER

    chunks = list(_ask(client, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER and chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is None  # no include_usage


def test_the_async_sdk_streams_with_the_whole_bill_in_the_last_chunk(stack):
    client = stack.async_sdk(stack.key("async"))

    async def run():
        stream = await client.chat.completions.create(
            model="llama3",
            messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Capital?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
        plain = await client.chat.completions.create(model="llama3", messages=[{"role": "user", "content": "Hi"}])
        await client.close()
        return chunks, plain

    chunks, plain = asyncio.run(run())
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None  # the bill exists once the window closed
    _check_bill(last.usage.model_dump(), stack.box)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert plain.choices[0].message.content == ANSWER
    exchange = stack.history().get(last.model_dump()["joulebot"]["exchange_id"])
    assert exchange.system_prompt == "Answer briefly."


def _error(response: httpx.Response) -> dict:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and "Traceback" not in response.text
    return error


def test_refusals_come_in_openais_shape_with_their_status(stack):
    key = stack.key("refused")
    client = stack.sdk(key)
    url = f"{stack.base}/v1/chat/completions"
    auth = {"authorization": f"Bearer {key}"}
    question = [{"role": "user", "content": "Capital?"}]

    assert _error(httpx.post(url, json={"model": "llama3", "messages": question}))["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError) as refused:
        _ask(stack.sdk("jb-not-a-key"))
    assert "jb-not-a-key" not in str(refused.value)  # a key is never echoed
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=question)
    assert unknown.value.body["param"] == "model" and "available: " in unknown.value.body["message"]
    for param, extra in (
        ("n", {"n": 2}),
        ("tools", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
        ("response_format", {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
        ("logprobs", {"logprobs": True}),
    ):
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="llama3", messages=question, **extra)
        assert bad.value.body["param"] == param and "not supported" in bad.value.body["message"]
    for messages, words in (
        ([{"role": "user", "content": " \u200b "}], "the prompt is empty"),
        ([{"role": "user", "content": "x" * 4001}], "the maximum is 4000"),
        ([*question, {"role": "assistant", "content": "Paris"}], "must be the user's"),
        ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], "text and image_url only"),
    ):
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(model="llama3", messages=messages)
        assert words in bad.value.body["message"], bad.value.body
    assert _error(httpx.post(url, content=b"{not json", headers=auth))["code"] == "invalid_json"
    not_utf8 = b'{"model": "llama3", "messages": [{"role": "user", "content": "caf\xe9"}]}'
    assert _error(httpx.post(url, content=not_utf8, headers=auth))["code"] == "invalid_json"
    lone = b'{"model": "llama3", "messages": [{"role": "user", "content": "\\ud800 hi"}]}'
    assert "not valid UTF-8" in _error(httpx.post(url, content=lone, headers=auth))["message"]
    long_system = [{"role": "system", "content": "s" * 4001}, *question]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="llama3", messages=long_system)
    assert "the system prompt has 4001 characters" in bad.value.body["message"]
    big = httpx.post(url, content=b"{" + b" " * 1_000_001 + b"}", headers=auth)
    assert big.status_code == 413 and _error(big)["code"] == "too_large"
    pinned = httpx.post(
        url, json={"model": "llama3", "messages": question}, headers={**auth, "x-joulebot-box": "nowhere"}, timeout=60
    )
    assert pinned.status_code == 503 and "unknown box 'nowhere'" in _error(pinned)["message"]
    assert stack.box in _error(pinned)["message"]  # naming the live ones
    assert httpx.get(url, headers=auth).status_code == 405 and _error(httpx.get(url, headers=auth))
    assert httpx.get(f"{stack.base}/v1/nothing", headers=auth).status_code == 404
    # what was refused never reached the queue: no exchange of this key was stored
    assert stack.history().recent("api", "refused") == []


def test_rate_and_pending_limits_answer_429_with_retry_after(stack):
    client = stack.sdk(stack.key("rate"))
    minute_start(15)
    for _ in range(4):  # MAX_PROMPTS_PER_MINUTE
        _ask(client)
    with pytest.raises(openai.RateLimitError) as limited:
        _ask(client)
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60
    assert limited.value.body["code"] == "rate_limit_exceeded"

    slow = stack.sdk(stack.key("pending"))
    stack.ollama.chunk_delay_s = 1.0
    try:

        async def three():
            client = stack.async_sdk(slow.api_key)
            question = [{"role": "user", "content": "Capital?"}]
            waiting = [  # MAX_PENDING_PER_USER
                asyncio.ensure_future(client.chat.completions.create(model="llama3", messages=question))
                for _ in range(2)
            ]
            owed = redis.Redis.from_url(stack.redis.url)
            deadline = time.monotonic() + 60
            while owed.scard(user_deliveries_key("api", "pending")) < 2:  # both taken: the third finds them
                assert time.monotonic() < deadline, "the two questions were never queued"
                await asyncio.sleep(0.05)
            with pytest.raises(openai.RateLimitError) as busy:
                await client.chat.completions.create(model="llama3", messages=[{"role": "user", "content": "Hi"}])
            answers = await asyncio.gather(*waiting)
            await client.close()
            return busy.value, answers

        busy, answers = asyncio.run(three())
    finally:
        stack.ollama.chunk_delay_s = 0.0
    assert busy.response.headers["retry-after"] == "5" and "2 answers pending" in busy.body["message"]
    assert [a.choices[0].message.content for a in answers] == [ANSWER, ANSWER]
    _ask(slow)  # they are done: the key may ask again


def test_a_job_that_times_out_is_a_504(stack):
    client = stack.sdk(stack.key("slow"))
    stack.ollama.chunk_delay_s = 8.0  # 3 pieces and the end: 32 s against JOB_TIMEOUT_S=20
    try:
        with pytest.raises(openai.APIStatusError) as late:
            _ask(client)
    finally:
        stack.ollama.chunk_delay_s = 0.0
    assert late.value.status_code == 504 and "did not finish within 20 s" in late.value.body["message"]
    assert _ask(client).choices[0].message.content == ANSWER  # the worker serves on


def test_a_client_that_hangs_up_mid_stream_leaves_the_answer_to_finish_and_be_stored(stack):
    key = stack.key("gone")
    stack.ollama.chunk_delay_s = 1.0
    body = {"model": "llama3", "messages": [{"role": "user", "content": "Capital?"}], "stream": True}
    try:
        with httpx.stream(
            "POST",
            f"{stack.base}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {key}"},
            timeout=60,  # the stack's first answer may wait for its worker (httpx's default is 5 s)
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content": "Paris' in line:
                    break  # the first words: hang up
        started = time.monotonic()
        deadline = started + 60
        while not stack.history().recent("api", "gone"):
            assert time.monotonic() < deadline, "the answer was not stored"
            time.sleep(0.2)
    finally:
        stack.ollama.chunk_delay_s = 0.0
    [stored] = stack.history().recent("api", "gone")
    assert stored.answer == ANSWER  # whole, measured
    connection = redis.Redis.from_url(stack.redis.url)
    deadline = time.monotonic() + 30
    while connection.scard(user_deliveries_key("api", "gone")):  # nothing left owed or followed for it
        assert time.monotonic() < deadline, "the delivery was not cleared"
        time.sleep(0.2)
    assert not [d for d in connection.hvals(deliveries_key("api")) if b'"gone"' in d]


def test_a_streamed_answer_comes_as_the_model_makes_it_and_a_whole_one_is_not_published(stack):
    client = stack.sdk(stack.key("pieces"))
    connection = redis.Redis.from_url(stack.redis.url)
    stack.ollama.chunk_delay_s = 0.3
    try:
        chunks = [c.choices[0].delta.content for c in _ask(client, stream=True) if c.choices]
        whole = _ask(client)
    finally:
        stack.ollama.chunk_delay_s = 0.0
    assert [c for c in chunks if c] == stack.ollama.answer, "each piece the model made, as it made it"
    request_id = whole.id.removeprefix("chatcmpl-")
    assert whole.choices[0].message.content == ANSWER
    assert not connection.exists(f"joulebot:answer-stream:{request_id}"), "nobody reads it grow: not written"


def test_keys_are_shown_once_kept_as_a_hash_revoked_at_once_and_forgotten(stack):
    key = stack.key("keyed")
    assert re.fullmatch(r"jb-[A-Za-z0-9_-]{43}", key)
    listed = stack.cli("keys", "list")
    assert "keyed" in listed.stdout and "works" in listed.stdout and key not in listed.stdout + listed.stderr
    files = b"".join(p.read_bytes() for p in stack.root.glob("history.sqlite3*"))  # the WAL too
    dump = "\n".join(sqlite3.connect(stack.root / "history.sqlite3").iterdump())
    assert key.encode() not in files and key not in dump and hashlib.sha256(key.encode()).hexdigest() in dump
    again = stack.cli("keys", "create", "keyed")
    assert again.returncode == 2 and "already has a key" in again.stderr and again.stdout == ""
    answer = _ask(stack.sdk(key), "What is the secret of the keyed pancakes?")
    exchange_id = answer.model_dump()["joulebot"]["exchange_id"]
    revoked = stack.cli("keys", "revoke", "keyed")
    assert revoked.returncode == 0
    with pytest.raises(openai.AuthenticationError):
        _ask(stack.sdk(key))
    forgot = stack.cli("history", "--forget", "api:keyed")
    assert forgot.returncode == 0, forgot.stderr
    row = stack.history().get(exchange_id)
    assert row.prompt == "" and row.answer == "" and row.energy_total_j is not None  # the words go, the figures stay
    renewed = stack.key("keyed")  # the same user, a new key
    assert renewed != key and _ask(stack.sdk(renewed)).choices[0].message.content == ANSWER
    bad = stack.cli("keys", "create", "no spaces")
    assert bad.returncode == 2 and "a key's name is" in bad.stderr


def test_sampling_reaches_the_runner_is_stored_and_stays_out_of_the_statistics(stack):
    client = stack.sdk(stack.key("sampler"))
    history = stack.history()

    def counted() -> int:
        return sum(s.answers for s in history.model_stats() if s.model == "llama3")

    _ask(client)  # the defaults: counted
    before = counted()
    answer = _ask(client, temperature=0.3, top_p=0.5, stop=["zz"], seed=7, extra_body={"frobnicate": "ignored"})
    sent = [body for _, path, body in stack.ollama.requests if path == "/api/chat"][-1]["options"]
    assert (sent["temperature"], sent["top_p"], sent["stop"], sent["seed"]) == (0.3, 0.5, ["zz"], 7)
    row = history.get(answer.model_dump()["joulebot"]["exchange_id"])
    assert row.sampling == {"temperature": 0.3, "top_p": 0.5, "stop": ["zz"], "seed": 7}
    assert counted() == before  # its cost is its settings': in no statistic
    _ask(client, max_tokens=5)
    assert [body for _, path, body in stack.ollama.requests if path == "/api/chat"][-1]["options"]["num_predict"] == 5
    assert counted() == before + 1 and history.recent("api", "sampler")[0].sampling is None
    with pytest.raises(openai.BadRequestError) as bad:
        _ask(client, seed=-1)
    assert bad.value.body["param"] == "seed"


def test_a_long_conversation_is_trimmed_and_says_so(stack):
    client = stack.sdk(stack.key("talker"))
    turns = []
    for i in range(12):
        turns += [
            {"role": "user", "content": f"question {i} " + "words " * 400},
            {"role": "assistant", "content": "ok"},
        ]
    answer = client.chat.completions.create(model="llama3", messages=[*turns, {"role": "user", "content": "And?"}])
    extra = answer.model_dump()["joulebot"]
    assert extra["dropped_turns"] > 0 and extra["context_turns"] == 24 - extra["dropped_turns"]
    assert "no longer fits" in extra["footer"]
    row = stack.history().get(extra["exchange_id"])
    assert row.turn == 13 and row.context_turns == extra["context_turns"]


def test_an_image_part_reaches_a_vision_model_and_a_blind_model_says_so(stack):
    client = stack.sdk(stack.key("seer"))
    url = "data:image/png;base64," + base64.b64encode(png(64, 48)).decode()
    picture = {"type": "image_url", "image_url": {"url": url}}
    asked = [{"role": "user", "content": [{"type": "text", "text": "What colour?"}, picture]}]
    answer = client.chat.completions.create(model="llava", messages=asked)
    assert answer.choices[0].message.content == ANSWER
    chat = [body for _, path, body in stack.ollama.requests if path == "/api/chat"][-1]
    assert len(chat["messages"][-1]["images"]) == 1 and chat["messages"][-1]["content"] == "What colour?"
    alone = client.chat.completions.create(model="llava", messages=[{"role": "user", "content": [picture]}])
    assert alone.model_dump()["joulebot"]["exchange_id"] and stack.history().recent("api", "seer")[0].prompt
    follow_up = [*asked, {"role": "assistant", "content": ANSWER}, {"role": "user", "content": "And its shape?"}]
    client.chat.completions.create(model="llava", messages=follow_up)
    earlier, _, question = [body for _, path, body in stack.ollama.requests if path == "/api/chat"][-1]["messages"]
    assert earlier["images"] == chat["messages"][-1]["images"] and "images" not in question, "shown again"
    assert stack.history().recent("api", "seer")[0].image_count == 1
    for model, part, words in (
        ("llama3", picture, "llama3 cannot see images; the models here that can: llava"),
        ("llava", {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}, "only base64 data:"),
        ("llava", {"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}, "not valid base64"),
        ("llava", {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}, "image"),
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": [part]}])
        assert words in refused.value.body["message"], refused.value.body


def test_without_kept_images_images_of_is_refused_in_one_line_and_a_later_turn_says_so(stack):
    client = stack.sdk(stack.key("unkept"))  # KEEP_IMAGES is off here
    url = "data:image/png;base64," + base64.b64encode(png(64, 48)).decode()
    asked = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "What colour?"}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]
    exchange = client.chat.completions.create(model="llava", messages=asked).model_dump()["joulebot"]["exchange_id"]
    before = len(stack.ollama.requests)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="llava",
            messages=[{"role": "user", "content": "What colour, again?"}],
            extra_body={"joulebot": {"images_of": exchange}},
        )
    assert refused.value.body["message"] == (
        f"joulebot.images_of: answer #{exchange}'s image cannot be shown again (images are not kept here): "
        "send it again"
    )
    assert refused.value.body["param"] == "joulebot.images_of" and len(stack.ollama.requests) == before
    follow = client.chat.completions.create(
        model="llava",
        messages=[{"role": "user", "content": "And its shape?"}],
        extra_body={"joulebot": {"parent_id": exchange}},
    )
    earlier, _, _ = [body for _, path, body in stack.ollama.requests if path == "/api/chat"][-1]["messages"]
    assert "images" not in earlier
    footer = follow.model_dump()["joulebot"]["footer"]
    assert "🖼 1 earlier image not shown again: not kept (KEEP_IMAGES)" in footer.splitlines(), footer
    again = client.chat.completions.create(
        model="llava",
        messages=[{"role": "user", "content": "And its size?"}],
        extra_body={"joulebot": {"parent_id": follow.model_dump()["joulebot"]["exchange_id"]}},
    )
    assert "not kept (KEEP_IMAGES)" not in again.model_dump()["joulebot"]["footer"], "said once"


def test_models_list_the_catalog_with_its_boxes_and_what_each_measured(stack):
    client = stack.sdk(stack.key("lister"))
    _ask(client)
    models = {m.id: m.model_dump() for m in client.models.list()}
    assert {"llama3", "tinyllama", "smollm2-135m"} <= set(models)
    llama = models["llama3"]
    assert llama["object"] == "model" and llama["joulebot"]["size"] == "8.0B"
    assert models["llava"]["joulebot"]["vision"] is True and llama["joulebot"]["vision"] is False
    [box] = llama["joulebot"]["boxes"]
    assert box["box"] == stack.box
    [energy] = box["energy_per_answer"]
    assert energy["source"] == "estimate" and energy["measured"] is False and energy["answers"] >= 1
    assert energy["mean_j"] > 0 and energy["generation_settings"] == ""  # the Ollama server's own defaults
    assert client.models.retrieve("llama3:8b").id == "llama3"  # the Ollama tag is an alias
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    assert httpx.get(f"{stack.base}/v1/models").status_code == 401


def test_an_api_keys_prompts_and_answers_appear_on_no_public_page(stack):
    secret_prompt, secret_answer = "Where do the 7qx2 tangerines hide?", "The zz91 tangerines hide in the attic."
    stack.ollama.answer = [secret_answer]
    try:
        answer = _ask(stack.sdk(stack.key("private")), secret_prompt)
    finally:
        stack.ollama.answer = ["Paris", " is the capital", " of France."]
    assert answer.choices[0].message.content == secret_answer
    number = answer.model_dump()["joulebot"]["exchange_id"]
    pages = ["/", "/?metric=j_answer", "/boxes", "/boxes/rows", "/answers", f"/answers/{number}", "/models"]
    pages += [
        "/models/llama3",
        "/api/table.json",
        "/api/boxes.json",
        "/api/answers.json",
        f"/api/answers/{number}.json",
    ]
    pages += ["/api/models/llama3.json", "/metrics"]
    for page in pages:
        response = httpx.get(stack.base + page, timeout=30)
        assert response.status_code == 200, page
        for words in ("7qx2", "zz91", "private"):
            assert words not in response.text, f"{page} shows {words!r}"


def test_api_open_answers_without_a_key_and_says_so_loudly_at_start(stack):
    port = free_port()
    web = start_web(stack.env(API_OPEN="true"), port)
    try:
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "llama3", "messages": [{"role": "user", "content": "Capital?"}]},
            timeout=120,
        )
    finally:
        output = stop(web)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == ANSWER
    assert "WARNING" in output and "API_OPEN=true: /v1 answers anyone" in output
    assert stack.history().recent("api", "_open")


def test_a_used_up_energy_budget_answers_429_with_what_was_used_and_when_it_resets(stack):
    day_start()  # the day the budget counts must not end mid-test
    port = free_port()
    web = start_web(stack.env(DAILY_ENERGY_BUDGET_WH="0.000001"), port)  # 3.6 mJ: one answer spends it
    try:
        key, other = stack.key("frugal"), stack.key("frugal-too")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=120)
        assert _ask(client).choices[0].message.content == ANSWER  # nothing used yet
        refused = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "llama3", "messages": [{"role": "user", "content": "Capital?"}], "stream": True},
            timeout=30,
        )
        with pytest.raises(openai.RateLimitError) as sdk_refused:
            _ask(client)
        another = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=other, max_retries=0, timeout=120)
        assert _ask(another).choices[0].message.content == ANSWER  # a key's budget is its own
    finally:
        stop(web)
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/json"
    error = refused.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "energy_budget_exceeded"
    assert re.fullmatch(
        r"Today's energy budget is used: [\d.]+ of 0\.00000100 Wh \(estimated\); "
        r"it resets at 00:00 UTC \(in (\d+ h )?\d+ min\)\.",
        error["message"],
    ), error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    assert sdk_refused.value.body["code"] == "energy_budget_exceeded"
    assert len(stack.history().recent("api", "frugal")) == 1, "the refused questions were never queued"


def _readme_curl_examples() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use joulebot from any OpenAI client", 1)[1].split("\n## ", 1)[0]
    return [block for block in re.findall(r"```sh\n(.*?)```", section, re.S) if "curl" in block]


@pytest.mark.e2e
def test_the_readmes_curl_examples_run(stack):
    examples = _readme_curl_examples()
    assert len(examples) >= 2
    env = {**os.environ, "JOULEBOT_KEY": stack.key("curl")}
    outputs = []
    for example in examples:
        script = example.replace("http://127.0.0.1:8080", stack.base)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (example, done.stderr)
        outputs.append(done.stdout)
    whole = json.loads(outputs[0])  # SmolLM2's answer, with its bill
    assert whole["choices"][0]["message"]["content"] and whole["usage"]["energy"]["total_j"] > 0
    assert 0 < whole["usage"]["completion_tokens"] <= 32 and whole["model"] == "smollm2-135m"
    events = [line.removeprefix("data: ") for line in outputs[1].splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["usage"]["sci"]["g_per_answer"] > 0
    streamed = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-2])
    assert streamed.strip()


@pytest.mark.e2e
def test_smollm2_answers_through_the_api_with_an_honest_bill(stack):
    client = stack.sdk(stack.key("smol"))
    stream = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
        temperature=0.2,  # llama.cpp takes the sampling too
        seed=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage.model_dump()
    assert text.strip() and 0 < usage["completion_tokens"] <= 16
    assert usage["energy"]["measured"] is False and usage["energy"]["label"].startswith("estimated")
    extra = chunks[-1].model_dump()["joulebot"]
    row = stack.history().get(extra["exchange_id"])
    assert row.model == "smollm2-135m" and row.answer.strip() == text.strip()
    assert row.sampling == {"temperature": 0.2, "seed": 3}


def test_open_streams_are_followed_together_not_polled_one_by_one(stack):
    """The web process follows every answer it owes with its one follower (one XREAD BLOCK waits on
    all of them): a dozen streams waiting in the queue cost its Redis a command or two a second each
    (each job's state, read once a second for all of them in one round trip), where following each
    by polling it every tenth of a second costs dozens."""
    history = stack.history()
    keys = [create_key(history.engine, f"crowd{n}") for n in range(6)]  # 2 pending answers each
    body = {"model": "llama3", "messages": [{"role": "user", "content": "Capital?"}], "stream": True}
    connection = redis.Redis.from_url(stack.redis.url)
    window_s = 4.0

    async def crowd() -> tuple[int, list[str]]:
        async with httpx.AsyncClient(base_url=stack.base, timeout=120) as client:
            started = asyncio.Event()
            waiting = 0

            async def stream(key: str) -> str:
                nonlocal waiting
                text = ""
                headers = {"authorization": f"Bearer {key}"}
                async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
                    assert response.status_code == 200, await response.aread()
                    waiting += 1  # queued: the first event came
                    if waiting == 12:
                        started.set()
                    async for line in response.aiter_lines():
                        if line.startswith("data: {"):
                            text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                return text

            tasks = [asyncio.create_task(stream(key)) for key in keys for _ in range(2)]
            await asyncio.wait_for(started.wait(), 60)
            connection.config_resetstat()
            await asyncio.sleep(window_s)
            commands = sum(stat["calls"] for stat in connection.info("commandstats").values())
            stack.ollama.chunk_delay_s = 0.0
            return commands, await asyncio.gather(*tasks)

    stack.ollama.chunk_delay_s = 1.0  # the first answer takes seconds; the others wait behind it
    try:
        commands, answers = asyncio.run(crowd())
    finally:
        stack.ollama.chunk_delay_s = 0.0
    assert answers == [ANSWER] * 12, "each stream got its own whole answer"
    # every process's commands, the worker's too: the follower reads each job's state once a second
    per_answer_per_s = commands / 12 / window_s
    assert per_answer_per_s < 10, f"{commands} Redis commands in {window_s} s while 12 answers waited"
