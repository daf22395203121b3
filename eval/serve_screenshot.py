"""Screenshot of the ``parsner serve`` page for the README: a model, a Persian paragraph, one click.

    python eval/serve_screenshot.py --model models/peyma-scratch-4ep --out eval/serve-page.png

Starts the server in this process on a free 127.0.0.1 port, opens the page in headless Chromium
(``/usr/bin/chromium`` through Playwright), types the text, clicks the button, waits for the answer and
saves a full-page PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: Written for this screenshot (not from a corpus): ZWNJ, Persian digits, people, places, organisations, dates.
TEXT = (
    "به گزارش خبرگزاری ایرنا، علی رضایی رئیس دانشگاه تهران روز دوشنبه ۱۲ مهر ۱۴۰۳ در مشهد گفت که "
    "سازمان ملل متحد و بانک مرکزی ایران برای کمک به دانشجویان اصفهان و شیراز ۳۵ درصد بودجه را افزایش "
    "می‌دهند. مریم احمدی، سخنگوی وزارت امور خارجه، نیز در نیویورک با نمایندگان عراق دیدار کرد."
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory")
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "serve-page.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from helpers.serve import running_server
    from parsner.inference.tagger import Tagger
    from parsner.serving.server import create_app

    tagger = Tagger.from_pretrained(args.model, device="cpu")
    app = create_app(tagger, args.model)  # a new token; the page is opened with it, as parsner serve prints
    with running_server(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900}, device_scale_factor=1)
        page.goto(f"{url}/?token={app.state.auth.token}")
        page.fill("#text", TEXT)
        page.click("#go")
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        n = page.locator("#result mark.ent").count()
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"wrote {args.out} ({n} entities highlighted)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
