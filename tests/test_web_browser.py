"""The dashboard in a real headless browser: Debian's chromium driven by Selenium through Debian's
chromedriver (nothing fetched from a browser vendor), against uvicorn serving a filled history."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
import uvicorn
from browsers import chromium, csp_refusals, wait_until
from standins import free_port
from testenv import make_settings
from webdata import SECRET_PROMPT, announced_box, fill

from joulebot.history import HistoryStore
from joulebot.web.app import create_app


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    monkeypatch.setenv("SE_OFFLINE", "true")
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture
def served(tmp_path, system_redis_url) -> Iterator[tuple[str, object, str]]:
    """uvicorn serving the app over a filled SQLite history, on a free port, in this process."""
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    store = HistoryStore.open(url)
    filled = fill(store)
    queue = f"webtest-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path / "data", database_url=url, redis_url=system_redis_url, queue_name=queue)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", filled, queue
    server.should_exit = True
    thread.join(10)
    store.engine.dispose()


def test_table_and_answer_pages_render_cells_and_charts(browser, served, tmp_path):
    from selenium.webdriver.common.by import By

    base, filled, _ = served
    browser.get(f"{base}/?metric=j_answer")
    cell = browser.find_element(By.CSS_SELECTOR, 'td.cell[data-model="smollm2-135m"][data-category="math"]')
    assert "n = 4" in cell.text and "42.5 J" in cell.text and "±" in cell.text
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "section.population h2")]
    assert any("estimated from CPU load, not a measurement" in h for h in headings)
    assert not any("estimated by estimate" in h for h in headings)
    assert any("measured at the wall by mcp39f511n" in h for h in headings)
    heatmaps = browser.find_elements(By.CSS_SELECTOR, "figure.heatmap svg")
    assert len(heatmaps) == 3 and all(svg.size["width"] > 100 for svg in heatmaps)
    assert browser.find_elements(By.CSS_SELECTOR, "figure.heatmap svg rect")
    assert SECRET_PROMPT not in browser.page_source
    assert browser.save_screenshot(str(tmp_path / "table.png")) and (tmp_path / "table.png").stat().st_size > 10_000

    browser.get(f"{base}/answers/{filled.measured_id}")
    trace = browser.find_element(By.CSS_SELECTOR, "figure.trace svg polyline.trace")
    assert len(trace.get_attribute("points").split()) == len(filled.measured.energy.machine.trace)
    assert browser.find_element(By.CSS_SELECTOR, "figure.trace svg rect.idle").size["height"] > 10
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.trace svg line.edge")) == 2
    total = browser.find_element(By.CSS_SELECTOR, "td.total").text
    assert total.endswith(" J") and float(total.split()[0]) == pytest.approx(filled.measured.energy.total_j, rel=0.01)
    assert "SCI = (E × I + M) per R" in browser.find_element(By.CSS_SELECTOR, "ol.arithmetic").text
    assert SECRET_PROMPT not in browser.page_source
    assert browser.save_screenshot(str(tmp_path / "answer.png")) and (tmp_path / "answer.png").stat().st_size > 10_000
    assert not csp_refusals(browser)  # the security headers let the pages use everything they load


def test_each_table_and_its_heatmap_write_every_figure_in_one_unit(browser, served):
    """The SCI table: a section's means and bands all in g or all in mg, and its heatmap writes each cell as
    the table does (unit and all), not a bare number in another unit."""
    from selenium.webdriver.common.by import By

    base, _, _ = served
    browser.get(f"{base}/?metric=sci")
    sections = browser.find_elements(By.CSS_SELECTOR, "section.population")
    assert len(sections) == 3
    units = set()
    for section in sections:
        means = [e.text for e in section.find_elements(By.CSS_SELECTOR, "td.cell .mean")]
        bands = [e.text.removeprefix("± ") for e in section.find_elements(By.CSS_SELECTOR, "td.cell .ci")]
        written = {text.split()[-1] for text in means + bands if text != "? (n = 1)"}
        assert len(written) == 1 and written <= {"g", "mg"}, (means, bands)
        units |= written
        cells = [t.text for t in section.find_elements(By.CSS_SELECTOR, "figure.heatmap svg text")]
        assert [t for t in cells if t in means] == means and not [t for t in cells if t[0].isdigit() and t not in means]
    assert units == {"g", "mg"}, "the filled history has both sizes: each table chose its own"


def test_the_boxes_page_refreshes_itself(browser, served, system_redis_url):
    from selenium.webdriver.common.by import By

    base, _, queue = served
    connection = redis.Redis.from_url(system_redis_url)
    box = f"browserbox-{uuid.uuid4().hex[:8]}"
    try:
        with announced_box(connection, box, queue, "idle"):  # as the worker's heartbeat does
            browser.get(f"{base}/boxes")

            def state_of_queue(driver) -> str:
                rows = driver.find_elements(By.CSS_SELECTOR, "table.boxes tbody tr")
                mine = [r for r in rows if queue in r.text]
                return mine[0].find_element(By.CSS_SELECTOR, "td.state").text if mine else ""

            # the rows are swapped in under the reader's feet every 5 s: a stale element just means "look again"
            wait_until(browser, lambda d: state_of_queue(d) == "idle", 20, 0.5)
            with announced_box(connection, box, queue, "cooling down: 70 °C > 55 °C"):
                wait_until(browser, lambda d: state_of_queue(d).startswith("cooling down"), 20, 0.5)
    finally:
        connection.close()
