"""The web chat in a real headless Chromium (Debian's, through Selenium and Debian's chromedriver) against
`joulebot web` with WEB_CHAT=open as its own process, a real worker, a private Redis server and the
Ollama stand-in streaming slowly enough to watch an answer grow. Screenshots go to tests/output/."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from browsers import OUTPUT, chromium, csp_refusals, screenshot, wait_until
from imagefiles import png
from PIL import Image
from standins import OllamaStandIn, free_port
from waiting import day_start, wait
from webstack import Stack, running_stack, start_web, stop

SLOW = ["Paris", " is", " the", " capital", " of", " France", "."]
FINAL = "".join(SLOW)
HOSTILE = [
    "<script>window.__pwned = 1</script> ",
    '<img src=x onerror="window.__pwned = 2"> ',
    "**bold** <b>html</b>\n",
    "```html\n<script>window.__pwned = 3</script>\n```\n",
]
BUSY = ["Busy"] + [" busy"] * 120  # a minute: sped up once the question behind it is cancelled
WEB = {"WEB_CHAT": "open", "WEB_CHAT_PER_IP_PER_MINUTE": "200", "WEB_CHAT_PER_MINUTE": "200", "KEEP_IMAGES": "true"}
WAIT_S = 120  # the longest an answer may take on a loaded machine (not a timing assertion: a bound)


def _answers(body: dict) -> list[str]:
    asked = str(body["messages"][-1]["content"])
    if "script" in asked:
        return HOSTILE
    if "busy" in asked:
        return BUSY
    return SLOW


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    ollama = OllamaStandIn({"llama3:8b": "8.0B", "tinyllama:1.1b": "1.1B", "llava:7b": "7.2B"})
    ollama.vision = {"llava:7b"}
    ollama.answer_for = _answers
    ollama.chunk_delay_s = 0.5
    limits = {"STREAM_INTERVAL_S": "0.1", "JOB_TIMEOUT_S": "60"}
    box = f"chat-box-{os.getpid()}"
    with running_stack(tmp_path_factory.mktemp("webchat"), ollama, box, limits, **WEB) as stack:
        yield stack


@pytest.fixture
def browsers(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Open browsers as the test asks for them (each its own profile: its own session); all closed after."""
    monkeypatch.setenv("SE_OFFLINE", "true")
    opened = []

    def open_one(**options):
        driver = chromium(**options)
        opened.append(driver)
        return driver

    yield open_one
    for driver in opened:
        driver.quit()


def _by():
    from selenium.webdriver.common.by import By

    return By


def _wait(driver, condition, timeout: float = WAIT_S):
    return wait_until(driver, condition, timeout)


def _record_stream(driver) -> None:
    """Keep every text the streaming answers show, as they show it (read back by `_seen`)."""
    driver.execute_script(
        "window.__seen = [];"
        "new MutationObserver(function () {"
        "  document.querySelectorAll('article.turn.live .text.streaming').forEach(function (t) {"
        "    if (t.textContent) window.__seen.push(t.textContent); });"
        "}).observe(document.getElementById('thread'), {subtree: true, childList: true, characterData: true});"
    )


def _seen(driver) -> list[str]:
    return driver.execute_script("return window.__seen || [];")


def _ask(driver, prompt: str, model: str = "llama3", compare: str = "") -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    By = _by()
    Select(driver.find_element(By.ID, "model")).select_by_value(model)
    Select(driver.find_element(By.ID, "compare_with")).select_by_value(compare)
    box = driver.find_element(By.ID, "prompt")
    box.send_keys(prompt)
    box.send_keys(Keys.ENTER)  # Enter sends: no mouse needed


def _asked_without_javascript(stack: Stack, browsers, prompt: str):
    """A browser without JavaScript that asked `prompt` by posting the form and waited for the answer."""
    from selenium.webdriver.support.ui import Select

    By = _by()
    plain = browsers(scripts=False)
    plain.get(f"{stack.base}/chat")
    Select(plain.find_element(By.ID, "model")).select_by_value("llama3")
    plain.find_element(By.ID, "prompt").send_keys(prompt)
    plain.find_element(By.ID, "send").click()  # the form posts and the page waits for the whole answer
    return plain


def _stored_turns(driver) -> list:
    return driver.find_elements(_by().CSS_SELECTOR, "#thread > article.turn[data-exchange]")


def _wait_turns(driver, count: int) -> list:
    return _wait(driver, lambda d: (found := _stored_turns(d)) and len(found) >= count and found)


def _energy(turn) -> str:
    return " ".join(e.text for e in turn.find_elements(_by().CSS_SELECTOR, ".bill .energy span") if e.is_displayed())


def _first_energy(driver) -> str:
    """The first stored turn's energy line; "" while the page is (re)loading."""
    found = _stored_turns(driver)
    return _energy(found[0]) if found else ""


def _api_first_token_ms(stack: Stack, key: str, prompt: str) -> float:
    """The API's own time to the first piece of answer, as a client of /v1 sees it."""
    body = {"model": "llama3", "messages": [{"role": "user", "content": prompt}], "stream": True}
    started = time.perf_counter()
    headers = {"authorization": f"Bearer {key}"}
    with httpx.stream("POST", f"{stack.base}/v1/chat/completions", json=body, headers=headers, timeout=WAIT_S) as r:
        first = None
        for line in r.iter_lines():  # to its end: the next question must not wait behind this one
            chunk = json.loads(line[6:]) if line.startswith("data: {") else {}
            if first is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                first = (time.perf_counter() - started) * 1000
    assert first is not None
    return first


def test_an_answer_streams_and_its_bill_shows_joules_then_watts(stack, browsers):
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    _record_stream(driver)
    _ask(driver, "What is the capital of France?")
    (turn,) = _wait_turns(driver, 1)
    seen = _seen(driver)
    assert any(0 < len(s) < len(FINAL) and FINAL.startswith(s) for s in seen), seen  # text before the end
    assert turn.find_element(_by().CSS_SELECTOR, ".answer .text").text == FINAL
    assert "J total" in _energy(turn) and "W avg over" in _energy(turn)  # joules first: total, then the window
    assert "CO2e" in turn.find_element(_by().CSS_SELECTOR, ".bill .carbon").text
    assert "static" in turn.find_element(_by().CSS_SELECTOR, ".bill .carbon").text  # the intensity's provenance
    assert turn.find_element(_by().CSS_SELECTOR, ".bill .box").text.endswith("the one measurement box")
    trace = turn.find_element(_by().CSS_SELECTOR, ".bill .trace a").get_attribute("href")
    screenshot(driver, "web-chat-joules")

    watts = driver.find_element(_by().CSS_SELECTOR, 'form.units button[value="watts"]')
    watts.send_keys(" ")  # by keyboard: a focused button takes Space
    _wait(
        driver,
        lambda d: (shown := _first_energy(d)).startswith("⚡") and "J total" not in shown,
    )
    assert " W avg over " in _first_energy(driver)
    # the page switched at once and told the server in the background: reload once the session keeps it
    jar = {"cookie": f"joulebot_chat={driver.get_cookie('joulebot_chat')['value']}"}
    wait(lambda: 'data-units="watts"' in httpx.get(f"{stack.base}/chat", headers=jar).text, 30, "watts to be kept")
    driver.refresh()  # the choice is the session's: the server renders watts now
    _wait(driver, lambda d: (shown := _first_energy(d)) and "J total" not in shown)
    assert "W avg" in _first_energy(driver)
    screenshot(driver, "web-chat-watts")
    driver.get(trace)
    assert driver.find_elements(_by().CSS_SELECTOR, "figure.trace svg")  # the answer's power trace page
    assert not csp_refusals(driver)


def test_the_pages_first_token_against_the_apis_own(stack, browsers):
    """Not an assertion on timings: both figures go to tests/output/web-chat-first-token.json."""
    driver = browsers()
    key = stack.key("ttft")
    page_ms, api_ms = [], []
    for round_ in range(2):  # interleaved, same model, same stand-in pacing
        driver.get(f"{stack.base}/chat")
        _ask(driver, f"Which city is the capital of France, round {round_}?")
        (turn,) = _wait_turns(driver, 1)
        page_ms.append(float(turn.get_attribute("data-ttft-ms")))
        api_ms.append(_api_first_token_ms(stack, key, f"Which city is the capital of France, api {round_}?"))
    figures = {"page_first_token_ms": page_ms, "api_first_token_ms": api_ms, "load": os.getloadavg()}
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "web-chat-first-token.json").write_text(json.dumps(figures, indent=1))
    print(f"first token: {figures}")
    assert all(ms > 0 for ms in page_ms + api_ms)


def test_a_second_turn_continues_and_an_earlier_answer_branches(stack, browsers):
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    _ask(driver, "What is the capital of France?")
    first = _wait_turns(driver, 1)[0].get_attribute("data-exchange")
    _ask(driver, "And of Germany?")
    turns = _wait_turns(driver, 2)
    second = turns[1].get_attribute("data-exchange")
    sent = [b for _, path, b in stack.ollama.requests if path == "/api/chat"][-1]["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "What is the capital of France?",
        FINAL,
        "And of Germany?",
    ]
    assert driver.current_url.endswith(f"/chat?after={second}")
    driver.refresh()  # the conversation is the server's: rendered without a script
    assert [t.get_attribute("data-exchange") for t in _stored_turns(driver)] == [first, second]
    assert "turn 2" in _stored_turns(driver)[1].find_element(_by().CSS_SELECTOR, ".bill").text

    driver.find_element(_by().CSS_SELECTOR, f'#turn-{first} .actions a[href^="/chat?after={first}"]').click()
    _ask(driver, "And of Italy?")
    branch = _wait_turns(driver, 2)
    ids = [t.get_attribute("data-exchange") for t in branch]
    assert ids[0] == first and ids[1] != second
    sent = [b for _, path, b in stack.ollama.requests if path == "/api/chat"][-1]["messages"]
    assert "And of Germany?" not in [m["content"] for m in sent]
    driver.refresh()
    tips = driver.find_elements(_by().CSS_SELECTOR, "ol.tips li a")
    assert len(tips) == 2 and {t.text for t in tips} == {"And of Germany?", "And of Italy?"}  # both branches
    screenshot(driver, "web-chat-conversation")


def test_two_models_side_by_side_then_the_ratio_of_their_energies(stack, browsers):
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    _record_stream(driver)
    _ask(driver, "Which is greener?", model="llama3", compare="tinyllama")
    _wait(driver, lambda d: d.find_elements(_by().CSS_SELECTOR, "section.pair.live .column"))
    ratio = _wait(driver, lambda d: d.find_elements(_by().CSS_SELECTOR, "section.pair p.ratio"))[0].text
    assert re.search(r"used [\d.]+× the energy of", ratio), ratio
    columns = driver.find_elements(_by().CSS_SELECTOR, "section.pair article.turn")
    assert [c.find_element(_by().CSS_SELECTOR, ".answer .who").text for c in columns] == ["llama3", "tinyllama"]
    assert all(c.get_attribute("data-ttft-ms") for c in columns)  # each streamed in its column
    assert all("J total" in _energy(c) for c in columns)
    assert len([s for s in _seen(driver) if 0 < len(s) < len(FINAL)]) >= 2
    screenshot(driver, "web-chat-compare")


def test_a_question_waiting_in_the_queue_is_cancelled(stack, browsers):
    client = stack.sdk(stack.key("busy"))
    busy = threading.Thread(
        target=lambda: client.chat.completions.create(
            model="llama3", messages=[{"role": "user", "content": "keep the box busy"}]
        )
    )
    driver = browsers()  # before the busy answer starts: a browser's start is no part of its window
    driver.get(f"{stack.base}/chat")
    busy.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not any("busy" in str(b.get("messages")) for _, p, b in stack.ollama.requests if p == "/api/chat"):
            assert time.monotonic() < deadline, "the busy answer never started"
            time.sleep(0.1)
        _ask(driver, "A question to take back")
        cancel = _wait(
            driver, lambda d: [b for b in d.find_elements(_by().CSS_SELECTOR, "button.cancel") if b.is_displayed()]
        )
        # where it stands, as the chats show it (an SSE comment the page reads; OpenAI's clients skip it)
        queued = _wait(
            driver,
            lambda d: [
                s for s in d.find_elements(_by().CSS_SELECTOR, "article.turn .status") if "position 1" in s.text
            ],
        )
        assert queued[0].text.startswith("⏳ queued"), queued[0].text
        screenshot(driver, "web-chat-queued")
        cancel[0].click()
        status = _wait(driver, lambda d: d.find_elements(_by().CSS_SELECTOR, "article.turn.failed .status"))[0].text
        assert "cancelled before it ran" in status.lower(), status
        screenshot(driver, "web-chat-cancelled")
    finally:
        stack.ollama.chunk_delay_s = 0.0  # the busy answer has done its part: let it end now
        busy.join(WAIT_S)
        stack.ollama.chunk_delay_s = 0.5
    asked = [str(b.get("messages")) for _, p, b in stack.ollama.requests if p == "/api/chat"]
    assert not any("take back" in m for m in asked)  # it never reached the model
    prompts = [r[0] for r in sqlite3.connect(stack.root / "history.sqlite3").execute("SELECT prompt FROM exchanges")]
    assert "A question to take back" not in prompts


def test_an_answer_with_script_and_html_is_shown_as_text(stack, browsers):
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    _record_stream(driver)
    _ask(driver, "Show me a script")
    (turn,) = _wait_turns(driver, 1)
    assert any("<script>" in s for s in _seen(driver))  # streamed as text too
    for _ in range(2):  # as streamed then swapped in, and as the server renders the conversation
        text = turn.find_element(_by().CSS_SELECTOR, ".answer .text").text
        assert "<script>window.__pwned = 1</script>" in text and "**bold** <b>html</b>" in text
        code = turn.find_element(_by().CSS_SELECTOR, 'pre.code[data-language="html"] code').text
        assert code.strip() == "<script>window.__pwned = 3</script>"
        assert not turn.find_elements(_by().CSS_SELECTOR, ".answer img, .answer b, .answer script")
        assert driver.execute_script("return window.__pwned;") is None
        driver.refresh()
        (turn,) = _wait_turns(driver, 1)
    assert not csp_refusals(driver)
    screenshot(driver, "web-chat-escaped")


def test_another_browser_session_sees_nothing_of_the_first(stack, browsers):
    first = browsers()
    first.get(f"{stack.base}/chat")
    _ask(first, "My locker code is 4711-pancakes")
    exchange = _wait_turns(first, 1)[0].get_attribute("data-exchange")

    second = browsers()
    second.get(f"{stack.base}/chat")
    assert "4711-pancakes" not in second.page_source and not second.find_elements(_by().CSS_SELECTOR, "ol.tips li")
    for path in (f"/chat?after={exchange}", f"/chat/turn/{exchange}", f"/chat/pair/{exchange}/{exchange}"):
        second.get(f"{stack.base}{path}")
        assert "4711-pancakes" not in second.page_source and "No answer of yours" in second.page_source
    second.get(f"{stack.base}/chat")
    status = second.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "fetch('/v1/chat/completions', {method: 'POST', headers: {'content-type': 'application/json',"
        " 'x-csrf-token': document.querySelector('input[name=csrf]').value}, body: JSON.stringify({model: 'llama3',"
        f" messages: [{{role: 'user', content: 'go on'}}], joulebot: {{parent_id: {exchange}}}}})}})"
        ".then(function (r) { done(r.status); });"
    )
    assert status == 404  # continuing someone else's answer: there is no such answer of yours
    first.refresh()
    assert "4711-pancakes" in first.page_source  # still the first session's own


def test_the_page_works_without_javascript_and_on_a_phone(stack, browsers):
    By = _by()
    plain = _asked_without_javascript(stack, browsers, "What is the capital of France?")
    (turn,) = _wait_turns(plain, 1)
    assert turn.find_element(By.CSS_SELECTOR, ".answer .text").text == FINAL and "J total" in _energy(turn)
    plain.find_element(By.CSS_SELECTOR, 'form.units button[value="watts"]').click()
    _wait(plain, lambda d: "W avg" in _first_energy(d))  # the page comes again, in watts
    assert "J total" not in _first_energy(plain)
    screenshot(plain, "web-chat-no-javascript")

    phone = browsers(phone=True)
    phone.get(f"{stack.base}/chat")
    _ask(phone, "What is the capital of France?")
    _wait_turns(phone, 1)
    assert phone.execute_script("return window.innerWidth;") == 390
    assert phone.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;")  # no sideways
    for control in ("prompt", "model", "send"):
        rect = phone.find_element(By.ID, control).rect
        assert rect["x"] >= 0 and rect["x"] + rect["width"] <= 390, control
    screenshot(phone, "web-chat-phone")


@pytest.mark.e2e
def test_smollm2_answers_in_the_page_with_its_bill(stack, browsers):
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    _record_stream(driver)
    _ask(driver, "What is the capital of France?", model="smollm2-135m")
    (turn,) = _wait_turns(driver, 1)
    answer = turn.find_element(_by().CSS_SELECTOR, ".answer .text").text
    assert answer.strip() and any(0 < len(s) < len(answer) for s in _seen(driver))
    assert "J total" in _energy(turn)
    assert "estimated" in turn.find_element(_by().CSS_SELECTOR, ".bill").text, "an estimate is labelled as one"
    assert "smollm2-135m" in turn.find_element(_by().CSS_SELECTOR, ".bill .model").text
    screenshot(driver, "web-chat-smollm2")


def test_a_used_up_energy_budget_refuses_in_the_page_and_says_when_it_resets(stack, browsers):
    day_start()  # the day the budget counts must not end mid-test
    spender = browsers()
    spender.get(f"{stack.base}/chat")  # an anonymous answer today, on the chat without a budget
    _ask(spender, "What is the capital of France?")
    _wait_turns(spender, 1)
    port = free_port()
    web = start_web(stack.env(**WEB, WEB_CHAT_DAILY_WH="0.000001"), port)  # 3.6 mJ: used already
    try:
        driver = browsers()
        driver.get(f"http://127.0.0.1:{port}/chat")
        assert "of the web chat's energy budget" in driver.find_element(_by().CSS_SELECTOR, "p.budget").text
        asked = len([p for _, p, _ in stack.ollama.requests if p == "/api/chat"])
        _ask(driver, "One more, please")
        status = _wait(driver, lambda d: d.find_elements(_by().CSS_SELECTOR, "article.turn.failed .status"))[0].text
        assert re.search(r"web chat \(all visitors together\) is used: [\d.]+ of 0\.00000100 Wh", status), status
        assert "it resets at 00:00 UTC (in " in status
        assert driver.find_element(_by().ID, "prompt").get_attribute("value") == "One more, please"  # given back
        screenshot(driver, "web-chat-budget")
        plain = browsers(scripts=False)  # the form says the same, without a script
        plain.get(f"http://127.0.0.1:{port}/chat")
        plain.find_element(_by().ID, "prompt").send_keys("One more, please")
        plain.find_element(_by().ID, "send").click()
        banner = _wait(plain, lambda d: d.find_elements(_by().CSS_SELECTOR, "section.conversation p.banner"))[0]
        assert "is used:" in banner.text and "resets at 00:00 UTC" in banner.text
        assert plain.find_element(_by().ID, "prompt").get_attribute("value") == "One more, please"  # kept
        assert len([p for _, p, _ in stack.ollama.requests if p == "/api/chat"]) == asked  # nothing was queued
    finally:
        stop(web)


DROP = """
var bytes = Uint8Array.from(atob(arguments[0]), function (c) { return c.charCodeAt(0); });
var files = new DataTransfer();
files.items.add(new File([bytes], "red.png", {type: "image/png"}));
var zone = document.getElementById("drop");
zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: files, bubbles: true, cancelable: true}));
zone.dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
"""


def test_an_image_dropped_on_the_page_reaches_a_vision_model(stack, browsers):
    from selenium.webdriver.support.ui import Select

    By = _by()
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    labels = {o.get_attribute("value"): o.text for o in driver.find_elements(By.CSS_SELECTOR, "#model option")}
    assert "sees images" in labels["llava"] and "sees images" not in labels["llama3"]  # the picker says which
    Select(driver.find_element(By.ID, "model")).select_by_value("llama3")
    driver.execute_script(DROP, base64.b64encode(png(2400, 1600)).decode())
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#previews img"))
    assert "does not see images" in driver.find_element(By.ID, "previews").text
    Select(driver.find_element(By.ID, "model")).select_by_value("llava")
    assert "does not see images" not in driver.find_element(By.ID, "previews").text
    _ask(driver, "What colour is this?", model="llava")
    (turn,) = _wait_turns(driver, 1)
    notes = [n.text for n in turn.find_elements(By.CSS_SELECTOR, ".bill li.note")]
    # what the model looked at and what reading it cost (the prefill), as the chats' footers say
    assert any("1 image" in n and "reading the image and the prompt:" in n for n in notes), notes
    assert "What colour is this?" in str([b for _, p, b in stack.ollama.requests if p == "/api/chat"][-1])
    assert len(stack.ollama.images_received()[-1]) == 1  # the one image, on the question
    screenshot(driver, "web-chat-image")


def test_a_new_conversation_and_its_next_turn_appear_in_the_list_without_a_reload(stack, browsers):
    By = _by()
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    assert not driver.find_elements(By.CSS_SELECTOR, "#conversations ol.tips li")
    driver.execute_script("window.__samePage = true;")  # gone if the page were loaded again
    for number, prompt in enumerate(["Is the list up to date?", "And after a second turn?"], start=1):
        _ask(driver, prompt)
        exchange = _wait_turns(driver, number)[-1].get_attribute("data-exchange")
        current = f'#conversations ol.tips li[aria-current="page"] a[href="/chat?after={exchange}#turn-{exchange}"]'
        assert _wait(driver, lambda d, current=current: d.find_elements(By.CSS_SELECTOR, current))[0].text == prompt
    tips = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#conversations ol.tips li a")]
    assert tips == ["And after a second turn?"], tips  # the conversation's end, once: the first turn is continued
    assert driver.execute_script("return window.__samePage === true;")
    assert not csp_refusals(driver)
    screenshot(driver, "web-chat-conversations-list")


def test_retry_of_an_answer_about_an_image_sends_the_image_again(stack, browsers):
    By = _by()
    green = (20, 160, 60)
    driver = browsers()
    driver.get(f"{stack.base}/chat")
    driver.execute_script(DROP, base64.b64encode(png(320, 240, green)).decode())
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#previews img"))
    _ask(driver, "What colour is this?", model="llava")
    (turn,) = _wait_turns(driver, 1)
    (sent,) = stack.ollama.images_received()[-1]
    turn.find_element(By.CSS_SELECTOR, "form.retry button[type=submit]").click()
    retried = _wait_turns(driver, 2)[1]
    asked = [b for _, p, b in stack.ollama.requests if p == "/api/chat"][-1]["messages"]
    assert asked[-1]["content"] == "What colour is this?" and asked[-1]["images"] == [sent]  # the same image
    picture = Image.open(io.BytesIO(base64.b64decode(asked[-1]["images"][0]))).convert("RGB")
    assert picture.size == (320, 240) and all(
        abs(a - b) <= 4 for a, b in zip(picture.getpixel((0, 0)), green, strict=True)
    )
    notes = [n.text for n in retried.find_elements(By.CSS_SELECTOR, ".bill li.note")]
    assert any("1 image, 320×240" in n for n in notes), notes


def test_forgetting_from_the_side_panel_asks_first_and_works_without_javascript(stack, browsers):
    By = _by()
    plain = _asked_without_javascript(stack, browsers, "My bike lock is 8812-otters")
    _wait_turns(plain, 1)
    plain.find_element(By.LINK_TEXT, "Forget my questions and answers").click()
    _wait(plain, lambda d: d.find_elements(By.CSS_SELECTOR, "form.forget button"))
    said = plain.find_element(By.TAG_NAME, "main").text
    assert "every question this session asked" in said and "anonymous energy figures" in said
    screenshot(plain, "web-chat-forget")
    plain.find_element(By.CSS_SELECTOR, "form.forget button").click()
    _wait(plain, lambda d: "Deleted the prompts and answers of 1 exchange." in d.find_element(By.TAG_NAME, "main").text)
    assert "8812-otters" not in plain.page_source and "None yet: ask below." in plain.page_source
    plain.get(f"{stack.base}/chat")  # the session stays, with nothing of its words
    assert "8812-otters" not in plain.page_source and not _stored_turns(plain)
