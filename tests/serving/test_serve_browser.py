"""The page of ``parsner serve`` in a real headless Chromium: type Persian, click, check the highlights.

Playwright drives Debian's Chromium (``/usr/bin/chromium``; ``$PARSNER_CHROMIUM`` to point elsewhere), or
Playwright's own browser when one is installed. The test skips, saying why, only when neither exists.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'parsner[serve]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from helpers.serve import bearer, http, running_server, train_tiny_run  # noqa: E402
from parsner.serving.server import create_app  # noqa: E402

#: Written for this test: ZWNJ (خبرگزاری‌ها, می‌رود), Persian and ASCII digits, an emoji (a code point
#: JavaScript counts as two), Arabic ي/ك, and entities the tiny model was trained on.
TEXT = (
    "🙂 حمید رحمانی به تهران رفت و مریم احمدی با سازمان ملل در سال ۱۴۰۰ دیدار کرد؛ "
    "خبرگزاری‌ها گفتند زهرا كريمي در سال 1399 به اصفهان می‌رود."
)


def chromium_path() -> str | None:
    for candidate in (os.environ.get("PARSNER_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        except Exception as exc:  # no browser at all: Playwright's download is not reachable here either
            pytest.skip(f"no Chromium to drive (looked for /usr/bin/chromium, $PARSNER_CHROMIUM; {exc})")
        yield b
        b.close()


@pytest.mark.slow
def test_page_highlights_exactly_the_api_entities(browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    from parsner.inference.tagger import Tagger

    run = train_tiny_run(tmp_path_factory.mktemp("browser"))
    # raw scores: the calibration of a run this small maps every entity to 1.0, and the threshold needs levels
    tagger = Tagger.from_pretrained(run, device="cpu", calibrator=None)
    with running_server(create_app(tagger, str(run))) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        token = bearer(url)["Authorization"].split()[1]
        page.goto(f"{url}/?token={token}")  # the URL parsner serve prints: sets the cookie, lands on /
        assert page.url == f"{url}/"
        box = page.locator("#text")
        assert box.get_attribute("dir") == "rtl"
        box.press_sequentially(TEXT)
        assert box.input_value() == TEXT
        page.click("#go")
        page.wait_for_selector("body[data-state=done]", timeout=30_000)

        status, api = http("POST", f"{url}/v1/ner", {"text": TEXT})
        assert status == 200 and len(api["entities"]) >= 4
        marks = page.eval_on_selector_all(
            "#result mark.ent",
            "els => els.map(m => [m.querySelector('.etext').textContent, m.dataset.label])",
        )
        assert marks == [[e["text"], e["label"]] for e in api["entities"]]
        for e in api["entities"]:
            assert TEXT[e["start"] : e["end"]] == e["text"]
        # Without the label tags, the result reads exactly as the text typed: nothing lost or shifted.
        shown = page.eval_on_selector(
            "#result", "el => { const c = el.cloneNode(true); c.querySelectorAll('.lbl').forEach(x => x.remove());"
            " return c.textContent; }")
        assert shown == TEXT
        assert json.loads(page.text_content("#json")) == api
        legend = page.eval_on_selector_all(".legend .key b", "els => els.map(e => e.textContent)")
        assert legend == ["LOC", "ORG", "PER"]
        # The threshold field: entities scored below it are left out, exactly as the API leaves them out
        levels = sorted({math.floor(e["score"] * 1e4) / 1e4 for e in api["entities"]})
        cut = levels[-1] if len(levels) > 1 else min(1.0, levels[0] + 1e-4)  # keeps the top level only, or none
        assert page.input_value("#min-score") == "0"
        page.fill("#min-score", f"{cut:.4f}")
        page.evaluate("document.body.dataset.state = ''")
        page.click("#go")
        page.wait_for_selector("body[data-state=done]", timeout=30_000)
        status, kept = http("POST", f"{url}/v1/ner", {"text": TEXT, "min_score": float(f"{cut:.4f}")})
        assert status == 200 and len(kept["entities"]) < len(api["entities"])
        assert all(e["score"] >= float(f"{cut:.4f}") for e in kept["entities"])
        marks = page.eval_on_selector_all("#result mark.ent",
                                          "els => els.map(m => m.querySelector('.etext').textContent)")
        assert marks == [e["text"] for e in kept["entities"]]
        page.fill("#min-score", "2")  # out of range: the server's refusal is shown, nothing highlighted
        page.click("#go")
        page.wait_for_selector("#status.err", timeout=30_000)
        assert "min_score" in page.text_content("#status") and page.locator("#result mark").count() == 0
        assert all(r.startswith(url) for r in requests), requests  # self-contained: no CDN, no fonts fetched
        shot = tmp_path_factory.mktemp("shot") / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.close()


@pytest.mark.slow
def test_a_page_from_another_site_cannot_use_the_server(browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A logged-in annotator opens a hostile page: its cross-site POSTs (text/plain, no preflight, and JSON
    with credentials) never reach a route, although the browser holds the server's cookie."""
    import http.server
    import threading

    from parsner.inference.tagger import Tagger

    run = train_tiny_run(tmp_path_factory.mktemp("csrf"))
    app = create_app(Tagger.from_pretrained(run, device="cpu"), str(run))
    with running_server(app) as url:
        evil = ("<script>window.done = Promise.allSettled(["
                f"fetch('{url}/v1/ner', {{method: 'POST', mode: 'no-cors', credentials: 'include', "
                "headers: {'Content-Type': 'text/plain'}, body: JSON.stringify({text: 'علی به تهران رفت'})}),"
                f"fetch('{url}/v1/ner', {{method: 'POST', credentials: 'include', "
                "headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text: 'علی'})})"
                "]).then(r => r.map(x => x.status));</script>").encode()

        class Evil(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(evil)

            def log_message(self, *args: object) -> None:
                pass

        site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
        threading.Thread(target=site.serve_forever, daemon=True).start()
        try:
            page = browser.new_page()
            token = bearer(url)["Authorization"].split()[1]
            page.goto(f"{url}/?token={token}")  # the annotator is logged in: the browser holds the cookie
            before = app.state.batcher.stats["requests"]
            page.goto(f"http://127.0.0.1:{site.server_address[1]}/")
            page.evaluate("window.done")
            assert app.state.batcher.stats["requests"] == before  # nothing was tagged for the other site
            page.close()
        finally:
            site.shutdown()
