"""1000 prompts from 200 users through the chat's asking, the real queue and a real worker (bench/load.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import load
from standins import OllamaStandIn

pytestmark = pytest.mark.e2e


def test_a_thousand_prompts_none_lost_none_duplicated_in_order_and_limited(tmp_path, system_redis_url):
    ollama = OllamaStandIn({"tinyllama:1.1b": "1.1B"})
    settings = load.load_settings(
        tmp_path, system_redis_url, ollama.url, max_pending_per_user=5, max_prompts_per_minute=100
    )
    try:
        report = load.send_all(settings, users=200, per_user=6)
        assert sum(len(ids) for ids in report.accepted.values()) == 1000
        assert all(len(ids) == 5 for ids in report.accepted.values())
        assert (
            all(
                r == ["You already have 5 questions waiting; please wait for their answers first."]
                for r in report.refused.values()
            )
            and len(report.refused) == 200
        )
        load.serve(settings, report, timeout_s=600)
        assert load.check(settings, report) == []
    finally:
        load.deliver_all(settings)
        ollama.close()
    print(
        f"enqueue p50 {sorted(report.enqueue_ms)[500]:.1f} ms, p99 {report.percentile(99):.1f} ms;"
        f" worker {1000 / report.worker_s:.1f} answers/s"
    )
