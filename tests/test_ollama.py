"""The Ollama runner (the real `ollama` client) and the catalog, against an Ollama stand-in."""

from __future__ import annotations

import json
import os

import pytest
from standins import OllamaStandIn

from joulebot.config import Settings
from joulebot.config.generation import GenerationSettings
from joulebot.metering.estimate import TICK_S
from joulebot.metering.power_figures import published
from joulebot.models import ModelUnavailable, RunnerError, UnknownModelError, build_catalog
from joulebot.models.catalog import OllamaModel, parse_parameter_size, static_entries
from joulebot.models.inventory import current_catalog
from joulebot.models.llamacpp_runner import LlamaCppRunner
from joulebot.models.ollama_runner import OllamaRunner
from joulebot.models.runner import Sampling, split_reasoning

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def ollama():
    server = OllamaStandIn()
    yield server
    server.close()


def entry(name: str):
    return next(e for e in static_entries() if e.name == name)


def test_load_keeps_the_model_loaded_and_reports_load_time(ollama):
    runner = OllamaRunner(ollama.url, keep_alive="30m")
    assert runner.load(entry("llama3")) == pytest.approx(1.5)
    assert runner.load(entry("llama3")) == pytest.approx(0.0009)
    method, path, body = ollama.requests[0]
    assert (method, path) == ("POST", "/api/generate")
    assert body["model"] == "llama3:8b" and body["prompt"] == "" and body["keep_alive"] == "30m"


def test_back_to_back_answers_load_once_and_an_eviction_is_seen(ollama):
    """A model that answered a moment ago without a reload is not asked for again; one that
    had to be reloaded inside an answer (another client evicted it) is."""
    runner = OllamaRunner(ollama.url, recent_s=60)
    llama3 = entry("llama3")
    loads = lambda: len([1 for _, path, _ in ollama.requests if path == "/api/generate"])  # noqa: E731
    assert runner.load(llama3) == pytest.approx(1.5) and not runner.loaded(llama3), "loaded, not yet answered"
    runner.generate(llama3, HI, 8)
    assert runner.loaded(llama3) and runner.load(llama3) == 0.0 and loads() == 1
    runner.generate(llama3, HI, 8)
    assert runner.load(llama3) == 0.0 and loads() == 1, "back to back: no load request"

    ollama.evicted.add("llama3:8b")
    reloaded = runner.generate(llama3, HI, 8)
    assert reloaded.runner_stats["load_duration"] == pytest.approx(1.2), "the answer itself says it reloaded"
    assert not runner.loaded(llama3)
    runner.load(llama3)
    assert loads() == 2, "after a reload the next answer asks for the load again"
    runner.recent_s = 0.0
    runner.generate(llama3, HI, 8)
    runner.load(llama3)
    assert loads() == 3, "a while later: asked again"


def test_streamed_chat_gives_text_tokens_and_timings_without_the_reasoning(ollama):
    generation = OllamaRunner(ollama.url).generate(
        entry("llama3"), [{"role": "user", "content": "Capital of France?"}], max_tokens=64
    )
    assert generation.text == "Paris is the capital of France."
    assert generation.reasoning == "The user wants a capital."
    assert generation.prompt_tokens == 14 and generation.completion_tokens == 10
    assert generation.finish_reason == "stop"
    assert generation.first_token_s is not None and generation.first_token_s <= generation.seconds
    assert generation.runner_stats == pytest.approx(
        {"total_duration": 0.812, "load_duration": 0.0009, "prompt_eval_duration": 0.061, "eval_duration": 0.7}
    )
    _, path, body = ollama.requests[-1]
    assert path == "/api/chat" and body["stream"] is True
    assert body["options"]["num_predict"] == 64 and body["messages"] == [
        {"role": "user", "content": "Capital of France?"}
    ]


def test_every_ollama_request_runs_with_the_catalogs_context_window(ollama):
    """`options.num_ctx` is the catalog's context window on the load and on every chat: the window joulebot
    checks prompts against is the one the server runs, and the same value never reloads the model."""
    runner = OllamaRunner(ollama.url)
    llama3 = build_catalog(9.0, runner.inventory()).resolve("llama3")
    runner.load(llama3)
    generation = runner.generate(llama3, HI, 8)
    window = llama3.context_tokens
    assert ollama.contexts() == [("/api/generate", "llama3:8b", window), ("/api/chat", "llama3:8b", window)]
    assert generation.runner_stats["load_duration"] == pytest.approx(0.0009), "loaded with this window: no reload"
    wider = llama3.model_copy(update={"context_tokens": 8192})
    reloaded = runner.generate(wider, HI, 8)
    assert ollama.contexts()[-1] == ("/api/chat", "llama3:8b", 8192)
    assert reloaded.runner_stats["load_duration"] == pytest.approx(1.2), "another window: the server reloads"


def test_generation_settings_go_in_the_options_and_come_back_with_the_answer(ollama):
    """The catalog's sampling settings, or GENERATION_SETTINGS' for that model, are Ollama `options`."""
    runner = OllamaRunner(ollama.url)
    tuned = {"llama3": GenerationSettings(temperature=0.3, top_k=20, repeat_penalty=1.1)}
    llama3 = build_catalog(9.0, runner.inventory(), generation=tuned).resolve("llama3")
    generation = runner.generate(llama3, HI, 8)
    options = ollama.requests[-1][2]["options"]
    assert options == {
        **{"num_ctx": llama3.context_tokens, "num_predict": 8, "seed": 0},
        **{"temperature": 0.3, "top_k": 20, "repeat_penalty": 1.1},
    }
    assert generation.settings.tag() == "temperature=0.3 top_k=20 repeat_penalty=1.1"
    asked = runner.generate(llama3, HI, 8, sampling=Sampling(temperature=0.7, stop=["."]))
    options = ollama.requests[-1][2]["options"]
    assert (options["temperature"], options["top_k"], options["stop"]) == (0.7, 20, ["."]), "the request's first"
    assert asked.settings.tag() == "temperature=0.7 top_k=20 repeat_penalty=1.1"
    plain = runner.generate(entry("llama3"), HI, 8)
    assert set(ollama.requests[-1][2]["options"]) == {"num_ctx", "num_predict", "seed"}, "else the server's own"
    assert plain.settings.tag() == ""


def test_a_looping_answer_is_ended_by_hanging_up(ollama):
    """The runner stops reading a loop and closes the stream: the server stops generating (its energy
    is not spent), and the answer says why it ended."""
    ollama.answer = ["Paris is in France. ", *(["la Révéraire, "] * 400)]
    ollama.chunk_delay_s = 0.002
    generation = OllamaRunner(ollama.url).generate(entry("llama3"), HI, max_tokens=512)
    assert generation.finish_reason == "repetition"
    assert generation.text.startswith("Paris is in France. la Révéraire, la Révéraire, ")
    assert generation.completion_tokens == 1 + generation.text.count("la Révéraire"), "one streamed chunk per token"
    assert generation.completion_tokens < 20 and generation.prompt_tokens > 0
    assert ollama.hung_up.wait(10), "the server was left streaming the loop"


@pytest.mark.parametrize("break_after", [0, 2])
def test_a_stream_cut_mid_answer_is_an_error_not_a_short_answer(ollama, break_after):
    ollama.break_after = break_after
    with pytest.raises(RunnerError, match="broke off"):
        OllamaRunner(ollama.url).generate(entry("llama3"), HI, 32)


def test_missing_model_out_of_memory_and_server_down(ollama):
    runner = OllamaRunner(ollama.url)
    with pytest.raises(RunnerError, match=r"mistral is not on the Ollama server \(an admin can: joulebot models pull"):
        runner.generate(entry("mistral"), HI, 8)
    ollama.out_of_memory.add("llama3:8b")
    with pytest.raises(RunnerError, match="llama3 does not fit in this box's memory"):
        runner.load(entry("llama3"))
    with pytest.raises(RunnerError, match="not reachable"):
        OllamaRunner("http://127.0.0.1:9").generate(entry("llama3"), HI, 8)


def test_inventory_and_pull_progress(ollama):
    runner = OllamaRunner(ollama.url)
    assert {m.tag: m.parameters_b for m in runner.inventory()} == {"llama3:8b": 8.0, "tinyllama:1.1b": 1.1}
    updates = []
    runner.pull("mistral:7b", lambda status, done, total: updates.append((status, done, total)))
    assert updates[0] == ("pulling manifest", None, None) and updates[-1][0] == "success"
    assert [u[1] for u in updates if u[1] is not None] == sorted(u[1] for u in updates if u[1] is not None)
    assert "mistral:7b" in {m.tag for m in runner.inventory()}
    with pytest.raises(RunnerError, match="file does not exist"):
        runner.pull("nosuchmodel:1b", lambda *a: None)


@pytest.mark.unit
def test_catalog_merges_the_server_and_enforces_the_size_limit():
    served = [
        OllamaModel(tag="llama3:8b", parameters_b=8.0),
        OllamaModel(tag="gemma:7b", parameters_b=8.5),
        OllamaModel(tag="mixtral:8x7b", parameters_b=46.7, family="llama"),
        OllamaModel(tag="phi3:mini", parameters_b=3.8, family="phi3"),
    ]
    catalog = build_catalog(9.0, served)
    available = {e.name for e in catalog.available()}
    assert {"smollm2-135m", "llama3", "gemma", "phi3:mini"} <= available
    assert "mixtral:8x7b" not in available and "mistral" not in available
    assert catalog.resolve("LLAMA3").ollama_tag == "llama3:8b"
    assert catalog.resolve("llama3:8b").name == "llama3"
    too_big = "mixtral:8x7b is not available here: 46.7B parameters; this box runs models up to 9B"
    with pytest.raises(ModelUnavailable, match=too_big):
        catalog.resolve("mixtral:8x7b")
    not_pulled = r"mistral is not available here: not pulled \(joulebot models pull mistral\)"
    with pytest.raises(ModelUnavailable, match=not_pulled):
        catalog.resolve("mistral")
    with pytest.raises(UnknownModelError, match="unknown model 'gpt-17'"):
        catalog.resolve("gpt-17")
    strict = build_catalog(8.0, served)
    assert "gemma" not in {e.name for e in strict.available()} and "llama3" in {e.name for e in strict.available()}


@pytest.mark.unit
def test_catalog_without_a_server_offers_the_embedded_model_and_says_why_not_the_rest():
    catalog = build_catalog(9.0, None, "the Ollama server at http://box:11434 is not reachable")
    assert [e.name for e in catalog.available()] == ["smollm2-135m"]
    with pytest.raises(ModelUnavailable, match="not reachable"):
        catalog.resolve("tinyllama")


@pytest.mark.unit
@pytest.mark.parametrize(("text", "billions"), [("8.0B", 8.0), ("135M", 0.135), ("1.6b", 1.6), ("", None), ("x", None)])
def test_parameter_size(text, billions):
    assert parse_parameter_size(text) == (pytest.approx(billions) if billions else None)


@pytest.mark.unit
def test_split_reasoning():
    assert split_reasoning("<think>a\nb</think>\n\nAnswer.") == ("Answer.", "a\nb")
    assert split_reasoning("No thinking here.") == ("No thinking here.", "")
    assert split_reasoning("<think>still thinking when cut") == ("", "still thinking when cut")


@pytest.mark.e2e
def test_ask_an_ollama_model_through_the_queue(embedded, ollama):
    from testenv import run_cli

    from joulebot.exchange import Result
    from joulebot.history import HistoryStore

    env = {"OLLAMA_HOST": ollama.url}
    listing = run_cli(embedded, "models", **env)
    assert listing.returncode == 0, listing.stderr
    assert "llama3 · 8.0B · Llama 3" in listing.stdout and "mistral · 7.2B · not pulled" in listing.stdout

    proc = run_cli(embedded, "ask", "Capital of France?", "--model", "llama3", "--json", **env)
    assert proc.returncode == 0, proc.stderr
    result = Result.model_validate_json(proc.stdout)
    energy = json.loads(proc.stdout)["energy"]
    # the estimate from published figures for this machine's CPU: its band, and the busy time the window's end cuts
    model = published()
    assert energy["machine"]["method"] == model.label and not energy["machine"]["measured"]
    floor = model.band_w * energy["seconds"]
    assert (
        floor
        <= energy["uncertainty_j"]
        <= floor + model.per_core_w * (os.cpu_count() * (energy["seconds"] + 0.05) / 2 + TICK_S)
    )
    if energy["attributable_j"] is None:  # a fresh box: no idle baseline yet, and none is guessed
        assert energy["attributable_uncertainty_j"] is None
    else:
        assert energy["attributable_uncertainty_j"] >= energy["uncertainty_j"]
    assert result.model == "llama3" and result.answer == "Paris is the capital of France."
    assert result.reasoning == "The user wants a capital." and result.completion_tokens == 10
    assert result.runner_stats["eval_duration"] == pytest.approx(0.7) and result.first_token_s is not None
    row = HistoryStore.open(embedded.sqlalchemy_url).get(result.exchange_id)
    assert row.result["reasoning"] == "The user wants a capital." and "think" not in row.answer

    ollama.break_after = 2
    broken = run_cli(embedded, "ask", "Again?", "--model", "llama3", **env)
    assert broken.returncode == 1 and "the answer from Ollama broke off" in broken.stderr
    ollama.break_after = None
    missing = run_cli(embedded, "ask", "Hi", "--model", "mistral", **env)
    assert missing.returncode == 2 and "mistral is not available here: not pulled" in missing.stderr

    pulled = run_cli(embedded, "models", "pull", "mistral", **env)
    assert pulled.returncode == 0, pulled.stderr
    assert "pulled mistral:7b" in pulled.stdout
    now = run_cli(embedded, "ask", "Hi", "--model", "mistral", **env)
    assert now.returncode == 0, now.stderr

    rows = HistoryStore.open(embedded.sqlalchemy_url).recent("cli", result.request.user_id)
    assert [r.model for r in rows] == ["mistral", "llama3"], "the broken answer was not recorded"


def test_a_model_is_warmed_up_after_a_load_and_a_reload_inside_the_window_is_said(ollama, settings):
    """The station (the worker's side) with the real Ollama client against the stand-in; no queue needed."""
    from joulebot.chat.footer import footer
    from joulebot.exchange import Request
    from joulebot.worker.station import WARMUP_PROMPT, Station

    station = Station(settings.model_copy(update={"ollama_host": ollama.url, "meters": "estimate"}))
    ask = lambda: station.run(Request(platform="cli", user_id="u", model="llama3", prompt="Capital?"))  # noqa: E731

    first = ask()
    chats = [body for method, path, body in ollama.requests if path == "/api/chat"]
    warmup = WARMUP_PROMPT[-1]["content"]
    assert [c["messages"][-1]["content"] for c in chats] == [warmup, "Capital?"], "warm-up, then the answer"
    assert first.load_s == pytest.approx(1.5) and first.warmup_energy is not None
    assert first.warmup_energy.total_j > 0 and not first.energy.includes_reload
    assert "loaded in 1.50 s and warmed up (" in footer(first) and "before this answer, not counted in it" in footer(
        first
    )

    second = ask()
    assert second.warmup_energy is None, "warm already: no second warm-up"
    assert len([1 for _, path, _ in ollama.requests if path == "/api/chat"]) == 3

    ollama.evicted.add("llama3:8b")  # unloaded between the warm-up and the answer
    third = ask()
    assert third.energy.includes_reload and third.energy.reload_s == pytest.approx(1.2)
    assert "includes a model reload (1.20 s): not comparable" in footer(third).splitlines()[0]
    row = station.history.get(third.exchange_id)
    assert row.energy_includes_reload is True
    assert sum(s.answers for s in station.history.category_stats()) == 2, "the reloaded answer is kept out of stats"


@pytest.mark.unit
def test_generation_settings_replace_a_models_own_by_any_of_its_names():
    """GENERATION_SETTINGS (JSON) over the catalog's; the llama.cpp runner fills in its own defaults."""
    shipped = current_catalog(Settings(_env_file=None, ollama_host="")).resolve("smollm2-135m")
    assert shipped.generation == GenerationSettings(temperature=0, repeat_penalty=1.1)
    tuned_settings = Settings(
        _env_file=None, ollama_host="", generation_settings='{"smollm2": {"repeat_penalty": 1.3}}'
    )
    tuned = current_catalog(tuned_settings).resolve("smollm2-135m")
    assert tuned.generation == GenerationSettings(repeat_penalty=1.3), "replaced, not merged"
    runner = LlamaCppRunner(threads=1)
    assert runner.settings(shipped).tag() == "temperature=0 top_p=0.95 top_k=40 repeat_penalty=1.1"
    assert runner.settings(tuned).tag() == "temperature=0.2 top_p=0.95 top_k=40 repeat_penalty=1.3"
