"""Cross-origin calls from a real browser: a page on one origin calls the API
on another. The browser, not the server, enforces CORS, so only a browser can
show that the headers do what they must."""

import time

import pytest

from browser import browser, static_page  # noqa: F401 (a fixture)
from test_server import serving

FETCH_JSON = """async (url) => {
    try {
        const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                    body: JSON.stringify({prompt: "fn", max_new_tokens: 3})});
        return {status: r.status, body: await r.json()};
    } catch (e) { return {blocked: String(e)}; }
}"""

# A "simple" request: a browser sends it to any origin without asking first;
# the page cannot read the answer, but the server would do the work.
FETCH_TEXT_PLAIN = """async (url) => {
    await fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                      body: JSON.stringify({prompt: "fn", max_new_tokens: 3})});
    return "sent";
}"""


def generations(caplog, wait_for=0) -> list[list[str]]:
    """Method, path and status of each POST /generate in the access log. Its line
    is written once the response is sent: wait (a little) for `wait_for` of them."""
    deadline = time.monotonic() + 5
    while True:
        lines = [r.getMessage().split(" ")[:3] for r in caplog.records if "POST /generate" in r.getMessage()]
        if len(lines) >= wait_for or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize("allowed", [True, False], ids=["with --cors-origin", "without"])
def test_a_page_on_another_origin_can_call_the_api_only_when_allowed(browser, tiny_model, caplog, allowed):  # noqa: F811
    caplog.set_level("INFO", logger="inference.server")
    with static_page("<!doctype html><title>another origin</title>") as page_origin:
        with serving(tiny_model, cors_origins=[page_origin] if allowed else []) as (client, _):
            page = browser.new_page()
            page.goto(page_origin)
            result = page.evaluate(FETCH_JSON, f"http://127.0.0.1:{client.port}/generate")
            if allowed:
                assert result["status"] == 200 and result["body"]["generated_tokens"] <= 3
                assert generations(caplog, wait_for=1) == [["POST", "/generate", "200"]]
            else:
                assert "Failed to fetch" in result["blocked"]
                assert generations(caplog) == [], "the browser must not have sent the POST at all"
            caplog.clear()
            assert page.evaluate(FETCH_TEXT_PLAIN, f"http://127.0.0.1:{client.port}/generate") == "sent"
            assert generations(caplog, wait_for=1) == [["POST", "/generate", "415"]]
            page.close()
