"""Our tool readers against readers no one here wrote: pybrat (brat) and label-studio-converter (Label Studio).

Both are test-only dependencies (the ``dev`` extra); each test skips with a reason where one is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers.annotation import DATA, entities
from parsner.data.readers import read_file

LABEL_CONFIG = """<View>
  <Labels name="label" toName="text">
    <Label value="PER"/><Label value="LOC"/><Label value="ORG"/><Label value="DAT"/><Label value="PCT"/>
  </Labels>
  <Choices name="topic" toName="text"><Choice value="سیاسی"/></Choices>
  <Text name="text" value="$text"/>
</View>"""


def test_brat_spans_match_pybrat(tmp_path: Path) -> None:
    pybrat = pytest.importorskip("pybrat.parser", reason="pybrat is not installed (pip install -e '.[dev]')")
    # pybrat refuses a .txt without its .ann (we skip and count it), so it reads the annotated pairs only
    for f in (DATA / "brat").glob("news-*"):
        shutil.copy(f, tmp_path / f.name)
    examples = pybrat.BratParser(error="raise").parse(str(tmp_path))
    theirs = {}
    for ex in examples:
        spans = set()
        for ent in ex.entities:
            # our documented rule for discontinuous spans: the covering span
            spans.add((min(s.start for s in ent.spans), max(s.end for s in ent.spans), ent.type))
        theirs[Path(ex.id).name] = spans
    ours = entities(read_file(DATA / "brat"))
    assert set(ours) == set(theirs) == {"news-1", "news-2"}
    assert ours == theirs


def test_labelstudio_spans_match_label_studio_converter() -> None:
    pytest.importorskip("label_studio_converter", reason="label-studio-converter is not installed")
    from label_studio_converter import Converter

    conv = Converter(LABEL_CONFIG, project_dir=None, download_resources=False)
    items = list(conv.iter_from_json_file(str(DATA / "labelstudio.json")))
    by_task: dict[str, dict[str, set]] = {}
    for item in items:
        spans = {(v["start"], v["end"], v["labels"][0]) for v in item["output"].get("label", [])}
        by_task.setdefault(str(item["id"]), {})[str(item["completed_by"])] = spans
    # the converter, like us, drops the cancelled annotation and yields one item per remaining annotation
    assert set(by_task) == {"1", "2", "4", "5"}
    for annotator in ("1", "2"):
        ours = entities(read_file(DATA / "labelstudio.json", annotator=annotator))
        theirs_1 = by_task["1"][annotator]
        assert ours["1"] == theirs_1
    # task 2 is an older export with UTF-16 offsets: the converter passes them through unchanged, we convert
    ours = entities(read_file(DATA / "labelstudio.json", annotator="1"))
    (raw,) = by_task["2"].values()
    text = read_file(DATA / "labelstudio.json", annotator="1").texts["2"]
    assert raw == {(15, 19, "LOC")} and text[15:19] != "مشهد"
    assert ours["2"] == {(14, 18, "LOC")} and text[14:18] == "مشهد"
