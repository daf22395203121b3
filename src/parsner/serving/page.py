"""The page ``parsner serve`` shows at ``/``: paste Persian text, see its entities highlighted.

Self-contained (inline CSS and script, no CDN, no web fonts), right-to-left, and drawn with the HTML
renderer's look (:func:`parsner.serving.render.html_head`: the same colours, legend and ``mark.ent`` spans).
The script slices the text by code points (``Array.from``), because the API's offsets count code points
while JavaScript strings count UTF-16 units.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from parsner.serving.render import colour_for, html_head, html_tail

_PAGE_CSS = """
form { margin: 0 0 1rem 0; }
textarea { width: 100%; box-sizing: border-box; min-height: 9rem; font: inherit; font-size: 17px; line-height: 1.9;
           padding: .6rem .8rem; border: 1px solid #d0d7de; border-radius: .5rem; background: #fff; resize: vertical; }
.row { display: flex; gap: .8rem; align-items: center; margin-top: .5rem; line-height: 1.6; }
button { font: inherit; font-size: 1rem; padding: .35rem 1.4rem; border-radius: .4rem; border: 1px solid #1f6feb;
         background: #1f6feb; color: #fff; cursor: pointer; }
button:disabled { opacity: .6; cursor: wait; }
#status { color: #57606a; font-size: .9rem; }
.threshold { font-size: .9rem; color: #57606a; }
.threshold input { width: 4.5rem; font: inherit; padding: .15rem .3rem; }
#status.err { color: #cf222e; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; border-radius: .4rem; padding: .2rem .7rem; line-height: 1.7;
        font-size: .85rem; margin: .5rem 0; }
details { direction: ltr; text-align: left; line-height: 1.4; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: .5rem; padding: .7rem; overflow: auto;
      font-size: 13px; max-height: 24rem; }
"""

_SCRIPT = """
const COLOURS = %(colours)s;
const form = document.getElementById("ner-form"), box = document.getElementById("text");
const button = document.getElementById("go"), status = document.getElementById("status");
const result = document.getElementById("result"), jsonOut = document.getElementById("json");
const minScore = document.getElementById("min-score");

function colour(label) { return COLOURS[label] || "#e5e7eb"; }

function render(text, entities) {
  // API offsets count code points; Array.from splits by code point, not UTF-16 unit.
  const chars = Array.from(text);
  result.replaceChildren();
  let pos = 0;
  for (const e of entities) {
    if (e.start > pos) result.append(chars.slice(pos, e.start).join(""));
    const mark = document.createElement("mark");
    mark.className = "ent";
    mark.dataset.label = e.label;
    mark.style.background = colour(e.label);
    mark.title = e.label + " " + e.score.toFixed(2);
    const span = document.createElement("span");
    span.className = "etext";
    span.textContent = chars.slice(e.start, e.end).join("");
    const lbl = document.createElement("span");
    lbl.className = "lbl";
    lbl.textContent = e.label;
    mark.append(span, lbl);
    result.append(mark);
    pos = e.end;
  }
  if (pos < chars.length) result.append(chars.slice(pos).join(""));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = box.value;
  const body = {text};
  // The threshold the server starts with is the field's first value; sent only when changed, so the server's
  // own --min-score stays the default.
  if (minScore.value !== minScore.defaultValue) body.min_score = Number(minScore.value);
  button.disabled = true;
  status.className = "";
  status.textContent = "…";
  try {
    const response = await fetch("v1/ner", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    const data = await response.json();
    jsonOut.textContent = JSON.stringify(data, null, 2);
    if (!response.ok) {
      status.className = "err";
      status.textContent = data.error ? data.error.message : response.statusText;
      result.replaceChildren();
      return;
    }
    render(text, data.entities);
    status.textContent = data.entities.length + " موجودیت";
    document.body.dataset.state = "done";
  } catch (err) {
    status.className = "err";
    status.textContent = String(err);
  } finally {
    button.disabled = false;
  }
});
"""


def page_html(labels: Sequence[str], *, stand_in: str | None = None, title: str = "ParsNER",
              min_score: float = 0.0, calibrated: bool = False) -> str:
    """The page; its threshold field starts at the server's ``min_score`` and says whether scores are calibrated."""
    colours = {label: colour_for(label) for label in labels}
    score_note = ("entities scored below this are left out; scores are calibrated: 0.9 means about 9 in 10 right"
                  if calibrated else "entities scored below this are left out; scores are raw (not calibrated)")
    warn = f'<p class="warn" dir="ltr">Stand-in model: {html.escape(stand_in)}</p>' if stand_in else ""
    body = (
        f"{warn}"
        # novalidate: any threshold from 0 to 1 may be typed (step only sets the arrows); the server checks it
        '<form id="ner-form" novalidate>'
        '<label for="text" hidden>متن</label>'
        '<textarea id="text" name="text" dir="rtl" lang="fa" placeholder="متن خبر را اینجا بنویسید…"></textarea>'
        '<div class="row"><button id="go" type="submit">یافتن موجودیت‌ها</button>'
        '<label class="threshold" dir="rtl">کمینهٔ امتیاز '
        f'<input id="min-score" type="number" min="0" max="1" step="0.05" value="{min_score:g}" dir="ltr" '
        f'title="{html.escape(score_note)}"></label>'
        '<span id="status" role="status"></span></div></form>\n'
        '<article><div class="text" id="result" dir="rtl"></div></article>\n'
        '<details open><summary>JSON</summary><pre id="json"></pre></details>\n'
    )
    script = _SCRIPT % {"colours": json.dumps(colours)}
    head = html_head(title, list(labels)).replace("</style>", _PAGE_CSS + "</style>", 1)
    return head + body + f"<script>{script}</script>\n" + html_tail()
