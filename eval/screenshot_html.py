"""Render ``parsner predict --format html`` output in a real headless browser and save a PNG screenshot.

    python eval/screenshot_html.py                       # demo annotations -> eval/predict_html.png
    python eval/screenshot_html.py --model models/run    # the model's own predictions
    python eval/screenshot_html.py --html page.html      # screenshot an existing page

Without ``--model`` the page shows hand-made demo annotations (the title says so), because a randomly
initialised stand-in model highlights nonsense. The browser is Debian's ``chromium``
(``apt-get install -y chromium``), run headless with networking extras off; the page itself loads nothing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from parsner.serving.render import render_html  # noqa: E402

#: Written for this script (not from a corpus): a news-like paragraph with every PEYMA type.
DEMO_TEXTS = [
    "به گزارش خبرگزاری ایرنا، علی‌رضا محمدی رئیس سازمان هواشناسی ایران روز دوشنبه ۱۲ مهر ۱۴۰۲ در تهران گفت "
    "بارش‌ها در استان گیلان تا ساعت ۱۸ ادامه دارد. "
    "خسارت‌ها ۲۰ میلیارد تومان برآورد شده و ۳۵ درصد مزارع آسیب دیده‌اند.",
    "شرکت Apple در کالیفرنیا اعلام کرد که تیم کوک ماه آینده به پاریس سفر می‌کند؛ «<script>» هم فقط متن است.",
]
DEMO_ENTITIES = [
    [("ایرنا", "ORG"), ("علی‌رضا محمدی", "PER"), ("سازمان هواشناسی ایران", "ORG"),
     ("دوشنبه ۱۲ مهر ۱۴۰۲", "DAT"), ("تهران", "LOC"), ("استان گیلان", "LOC"), ("ساعت ۱۸", "TIM"),
     ("۲۰ میلیارد تومان", "MON"), ("۳۵ درصد", "PCT")],
    [("Apple", "ORG"), ("کالیفرنیا", "LOC"), ("تیم کوک", "PER"), ("پاریس", "LOC")],
]


def demo_entities(text: str, spans: list[tuple[str, str]]) -> list[dict]:
    out, pos = [], 0
    for surface, label in spans:
        start = text.index(surface, pos)
        pos = start + len(surface)
        out.append({"text": surface, "label": label, "start": start, "end": pos, "score": 1.0})
    return out


def build_page(model: str | None) -> str:
    if model is None:
        pairs = zip(DEMO_TEXTS, DEMO_ENTITIES, strict=True)
        docs = [(f"demo {i + 1}", t, demo_entities(t, s)) for i, (t, s) in enumerate(pairs)]
        return render_html(docs, title="ParsNER — demo annotations (not model output)")
    from parsner.inference.tagger import Tagger

    tagger = Tagger.from_pretrained(model)
    found = tagger(DEMO_TEXTS)
    docs = [(f"text {i + 1}", t, ents) for i, (t, ents) in enumerate(zip(DEMO_TEXTS, found, strict=True))]
    return render_html(docs, labels=tagger.labels, title=f"ParsNER — {Path(model).name}")


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    raise SystemExit("chromium not found: apt-get install -y chromium")


def screenshot(html_file: Path, png: Path, width: int = 900, height: int = 460, timeout: float = 90) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={png}",
            html_file.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not png.is_file():
        raise SystemExit(f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="tag the demo texts with this model instead of demo annotations")
    ap.add_argument("--html", type=Path, help="screenshot this HTML file instead of building one")
    ap.add_argument("--out", type=Path, default=REPO / "eval" / "predict_html.png")
    ap.add_argument("--keep-html", type=Path, help="also save the generated page here")
    ap.add_argument("--width", type=int, default=900)
    ap.add_argument("--height", type=int, default=460)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        page = args.html
        if page is None:
            page = Path(tmp) / "predict.html"
            page.write_text(build_page(args.model), encoding="utf-8")
            if args.keep_html:
                shutil.copyfile(page, args.keep_html)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        screenshot(page, args.out, args.width, args.height)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
