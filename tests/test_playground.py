"""The playground at GET /, used as a person would: in headless Chromium, typing a
prompt, pressing Generate and Stop, hovering a token.

    INFERENCE_SCREENSHOT=docs/figures/playground.png pytest tests/test_playground.py

also saves the screenshot that docs/api.md and the README show."""

import os
import time
from pathlib import Path

import pytest

from browser import browser  # noqa: F401 (a fixture)
from test_server import WrappedModel, serving, wait_for_idle

PROMPT = "fn main() {\n    let v = Vec::"
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "data" / "claude-rust-small"


@pytest.fixture(scope="module")
def shipped():
    from inference import load_model
    return load_model(SHIPPED_MODEL)


def open_playground(browser, port):  # noqa: F811
    page = browser.new_page(viewport={"width": 1200, "height": 520})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"http://127.0.0.1:{port}/")
    page.wait_for_selector("#controls input#logprobs")  # built from /openapi.json
    return page, errors


def test_the_page_is_served_with_a_strict_policy(shipped):
    with serving(shipped) as (client, _):
        status, headers, body = client.request("GET", "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "connect-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    assert "<title>inference playground</title>" in body and "http" not in body.split("<script>")[1]


def test_generate_streams_shaded_tokens_with_their_alternatives(browser, shipped):  # noqa: F811
    with serving(shipped) as (client, _):
        page, errors = open_playground(browser, client.port)
        spec = client.request("GET", "/openapi.json")[2]
        defaults = {name: field.get("default") for name, field in
                    spec["components"]["schemas"]["GenerateRequest"]["properties"].items()}
        for name in ("max_new_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty"):
            assert float(page.input_value(f"#{name}")) == defaults[name], name
        assert page.text_content("#model") == "claude-rust-small on cpu"

        page.fill("#prompt", PROMPT)
        page.fill("#max_new_tokens", "24")
        page.fill("#seed", "7")
        page.click("#generate")
        page.wait_for_selector("#finish-reason", timeout=30_000)
        tokens = page.query_selector_all("#output .token")
        native = client.post("/generate", {"prompt": PROMPT, "max_new_tokens": 24, "seed": 7})[2]
        assert "".join(t.text_content() for t in tokens) == native["text"]
        assert page.text_content("#finish-reason") == native["finish_reason"]
        assert int(page.text_content("#token-count")) == len(tokens) == native["generated_tokens"]
        assert float(page.text_content("#tokens-per-second")) > 0
        shades = {t.evaluate("t => t.style.background") for t in tokens}
        assert len(shades) > 3 and all(s.startswith("rgb(") for s in shades)  # each token its probability's colour

        tokens[3].hover()
        box = page.wait_for_selector("#alternatives", state="visible")
        rows = box.query_selector_all("tr")
        assert len(rows) == 5 and len(box.query_selector_all("tr.chosen")) <= 1
        assert all("%" in r.text_content() for r in rows)
        if path := os.environ.get("INFERENCE_SCREENSHOT"):
            page.screenshot(path=path)
        assert errors == []
        page.close()


def test_stop_ends_the_generation_on_the_server(browser, tiny_model):  # noqa: F811
    slow = WrappedModel(tiny_model, delay=0.05)
    with serving(slow) as (client, app):
        page, errors = open_playground(browser, client.port)
        page.fill("#max_new_tokens", "200")
        page.click("#generate")
        deadline = time.monotonic() + 10  # (wait_for_function would eval a string, which the page's policy forbids)
        while len(page.query_selector_all("#output .token")) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        engine = app.config["inference.engine"]
        assert engine.stats()["running"] == 1
        page.click("#stop")
        page.wait_for_selector("#finish-reason", timeout=5_000)
        assert page.text_content("#finish-reason") == "stopped"
        assert wait_for_idle(engine), "the server went on generating after Stop"
        steps = slow.steps
        time.sleep(0.3)
        assert slow.steps == steps < 100  # nothing runs any more, and far fewer than 200 steps ran
        assert page.is_enabled("#generate") and not page.is_enabled("#stop")
        assert errors == [] or all("aborted" in e.lower() for e in errors)
        page.close()
