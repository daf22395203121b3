"""Predictions files, error analysis, report/metrics.json output, plots, `parsner eval --predictions`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parsner.cli import main
from parsner.errors import ConfigError, InputError
from parsner.evaluation.analysis import analyze
from parsner.evaluation.evaluate import (
    TaggedSet,
    evaluate_predictions_file,
    evaluate_tags,
    read_predictions,
    write_predictions,
)
from parsner.evaluation.metrics import score
from parsner.evaluation.plots import plot_training_curves, read_train_log

ZWNJ = "\u200c"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# --------------------------------------------------------------------------- predictions files


def test_read_tab_separated_keeps_tokens_with_spaces(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.conll",
               "وزارت امور خارجه\tB_ORG\tB-ORG\nایران\tI_ORG\tB-LOC\n\n"
               f"می{ZWNJ}رود\tO\tO\n")
    data = read_predictions(f)
    assert data.tokens == [["وزارت امور خارجه", "ایران"], [f"می{ZWNJ}رود"]]
    assert data.gold == [["B-ORG", "I-ORG"], ["O"]]
    assert data.pred == [["B-ORG", "B-LOC"], ["O"]]
    assert data.ids == ["p.conll:1", "p.conll:4"]


def test_read_whitespace_separated_joins_token_columns(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.txt", "\ufeffامور خارجه B-ORG B-ORG\r\nتهران   B-LOC O\r\n\r\n\r\nدر O O\n")
    data = read_predictions(f)
    assert data.tokens == [["امور خارجه", "تهران"], ["در"]]
    assert data.pred == [["B-ORG", "O"], ["O"]]


def test_docstart_lines_are_boundaries_and_reported(tmp_path: Path) -> None:
    f = _write(tmp_path / "p.conll", "-DOCSTART- O O\n\nعلی B-PER B-PER\n-DOCSTART- O O\nرضا B-PER O\n")
    data = read_predictions(f)
    assert data.tokens == [["علی"], ["رضا"]]
    assert any("2 -DOCSTART-" in n for n in data.notes)


@pytest.mark.parametrize(
    ("text", "line", "msg"),
    [
        ("علی B-PER B-PER\nرضا B-PER\n", 2, "3 columns"),
        ("علی\tB-PER\n", 1, "tab-separated"),
        ("علی O O\n\nرضا B-PER X-PER\n", 3, "predicted tag"),
        ("علی E-PER O\n", 1, "gold tag"),
    ],
)
def test_bad_lines_raise_input_error_with_line(tmp_path: Path, text: str, line: int, msg: str) -> None:
    f = _write(tmp_path / "bad.conll", text)
    with pytest.raises(InputError, match=msg) as exc:
        read_predictions(f)
    assert exc.value.line == line
    assert exc.value.path == str(f)
    assert f"bad.conll:{line}" in str(exc.value)


def test_bad_encoding_and_empty_file(tmp_path: Path) -> None:
    f = tmp_path / "latin.conll"
    f.write_bytes(b"a O O\n" + b"\xff\xfe O O\n")
    with pytest.raises(InputError) as exc:
        read_predictions(f)
    assert exc.value.line == 2
    with pytest.raises(InputError, match="no sentences"):
        read_predictions(_write(tmp_path / "empty.conll", "\n\n"))
    with pytest.raises(InputError, match="not found"):
        read_predictions(tmp_path / "missing.conll")


def test_write_read_round_trip(tmp_path: Path) -> None:
    tokens = [["وزارت امور خارجه", f"نمی{ZWNJ}شود", "۱۴۰۲"], ["ك ي", "2024"]]
    gold = [["B-ORG", "O", "B-DAT"], ["B-PER", "O"]]
    pred = [["B-ORG", "O", "O"], ["I-PER", "B-DAT"]]
    f = tmp_path / "out.conll"
    write_predictions(f, tokens, gold, pred)
    back = read_predictions(f)
    assert (back.tokens, back.gold, back.pred) == (tokens, gold, pred)
    with pytest.raises(InputError, match="tab"):
        write_predictions(tmp_path / "x.conll", [["a\tb"]], [["O"]], [["O"]])


# --------------------------------------------------------------------------- error analysis


def test_error_analysis_categories() -> None:
    tokens = [[f"w{i}" for i in range(10)], ["a", "b", "c"], ["x", "y"]]
    gold = [
        ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O", "B-DAT", "O"],
        ["B-LOC", "I-LOC", "O"],
        ["O", "O"],
    ]
    pred = [
        ["B-PER", "I-PER", "O", "B-ORG", "O", "B-ORG", "O", "O", "O", "B-LOC"],
        ["O", "B-PER", "I-PER"],
        ["O", "O"],
    ]
    a = analyze(tokens, gold, pred, window=2)
    counts = a.to_dict()["counts"]
    assert counts == {
        "correct": 1,  # PER 0..1
        "wrong_type": 1,  # LOC@3 predicted ORG
        "boundary_same_type": 1,  # ORG 5..6 predicted 5
        "boundary_wrong_type": 1,  # LOC 0..1 predicted PER 1..2
        "false_negative": 1,  # DAT@8
        "false_positive": 1,  # LOC@9
    }
    rows, cols, matrix = a.confusion_matrix()
    assert rows == cols == ["DAT", "LOC", "ORG", "PER", "O"]
    cell = {(r, c): matrix[i][j] for i, r in enumerate(rows) for j, c in enumerate(cols)}
    assert cell[("PER", "PER")] == 1
    assert cell[("LOC", "ORG")] == 1
    assert cell[("ORG", "ORG")] == 1
    assert cell[("LOC", "PER")] == 1
    assert cell[("DAT", "O")] == 1
    assert cell[("O", "LOC")] == 1
    assert sum(map(sum, matrix)) == 6
    assert a.per_type["LOC"]["wrong_type"] == 1 and a.per_type["LOC"]["boundary_wrong_type"] == 1
    fp = a.examples["false_positive"][0]
    assert fp.sentence == 0 and fp.pred == [(9, 10, "LOC")]
    assert fp.context == "… w7 [w8]DAT {w9}LOC"
    bnd = a.examples["boundary_same_type"][0]
    assert bnd.context == "… [{w3]LOC}ORG w4 [{w5}ORG w6]ORG w7 [w8]DAT …"
    assert a.examples["boundary_wrong_type"][0].context == "[a {b]LOC c}PER"


def test_error_analysis_consistent_with_default_scores() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    pred = [["I-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "O"]]
    tokens = [["a", "b", "c", "d"], ["e", "f", "g"]]
    a = analyze(tokens, gold, pred)
    m = score(gold, pred)["default"]
    assert a.counts["correct"] == m["n_correct"]


# --------------------------------------------------------------------------- outputs


def _sample_set() -> TaggedSet:
    tokens = [["علی", "رضایی", "به", "تهران", "رفت"], ["سازمان", "ملل", "متحد"], ["امروز", "باران", "بارید"]]
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG"], ["B-DAT", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-ORG", "I-ORG", "O"], ["O", "O", "B-LOC"]]
    return TaggedSet(tokens, gold, pred, ids=["s1", "s2", "s3"])


def test_evaluate_writes_all_outputs(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    res = evaluate_tags(_sample_set(), out=out, title="unit", n_bootstrap=200, seed=3)
    assert sorted(p.name for p in out.iterdir() if p.name != ".parsner-output.json") == [
        "analysis.json", "confusion.png", "metrics.json", "predictions.conll", "report.md"]
    assert not list(tmp_path.glob(".ev.tmp-*"))
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["default"]["f1"] == pytest.approx(res.metrics["default"]["f1"])
    assert m["n_sentences"] == 3 and m["n_gold_entities"] == 4 and m["n_pred_entities"] == 4
    assert m["default"]["n_correct"] == 1
    assert set(m["bootstrap"]) == {"default", "strict"}
    assert m["bootstrap"]["default"]["low"] <= m["default"]["f1"] <= m["bootstrap"]["default"]["high"]
    assert m["errors"]["wrong_type"] == 1 and m["errors"]["false_positive"] == 1
    assert (out / "confusion.png").read_bytes()[:8] == PNG_MAGIC
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report == res.report
    assert "| default (conlleval) |" in report and "| strict (IOB2) |" in report
    assert f"**{100 * m['default']['f1']:.2f}**" in report
    assert "| LOC | 1 |" in report
    assert "![entity confusion matrix](confusion.png)" in report
    assert "[{تهران]LOC}ORG رفت" in report  # an example with context
    back = read_predictions(out / "predictions.conll")
    assert back.tokens == _sample_set().tokens and back.pred == _sample_set().pred
    with pytest.raises(ConfigError, match="already exists"):
        evaluate_tags(_sample_set(), out=out, n_bootstrap=0)
    evaluate_tags(_sample_set(), out=out, n_bootstrap=0, overwrite=True, plots=False)
    assert not (out / "confusion.png").exists()
    assert "bootstrap" not in json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def test_failure_leaves_no_output(tmp_path: Path) -> None:
    data = _sample_set()
    data.tokens[0][0] = "bad\ttoken"
    with pytest.raises(InputError):
        evaluate_tags(data, out=tmp_path / "ev", n_bootstrap=0)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_predictions_file_scores_equal_to_score(tmp_path: Path) -> None:
    data = _sample_set()
    f = tmp_path / "sys.conll"
    write_predictions(f, data.tokens, data.gold, data.pred)
    res = evaluate_predictions_file(f, out=None, n_bootstrap=0)
    assert res.out_dir is None
    direct = score(data.gold, data.pred)
    assert res.metrics["default"] == direct["default"] and res.metrics["strict"] == direct["strict"]


def test_cli_eval_predictions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _sample_set()
    f = tmp_path / "sys.conll"
    write_predictions(f, data.tokens, data.gold, data.pred)
    out = tmp_path / "cli-out"
    assert main(["eval", "--predictions", str(f), "--out", str(out), "--bootstrap", "100"]) == 0
    printed = capsys.readouterr().out
    assert "# Evaluation: sys.conll" in printed and "## Per type" in printed
    assert (out / "metrics.json").is_file()
    assert main(["eval", "--predictions", str(f), "--out", str(out)]) == 2  # exists
    bad = _write(tmp_path / "bad.conll", "x B-PER\n")
    assert main(["eval", "--predictions", str(bad), "--out", str(tmp_path / "o2")]) == 2
    assert "bad.conll:1" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path)]) == 2  # --data missing


# --------------------------------------------------------------------------- plots


def test_training_curves_from_log(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    recs = [{"step": s, "epoch": s / 10, "loss": 2.0 / s} for s in range(1, 11)]
    recs += [{"step": 5, "epoch": 0.5, "eval_f1": 0.4, "eval_loss": 1.1}, {"step": 10, "eval_f1": 0.6}]
    text = "\n".join(json.dumps(r) for r in recs) + "\n[1, 2]\n{\"step\": 11, \"lo"
    (run / "train_log.jsonl").write_text(text, encoding="utf-8")
    log = read_train_log(run / "train_log.jsonl")
    assert len(log.records) == 12 and log.skipped_lines == [13, 14]
    png = plot_training_curves(run)
    assert png == run / "curves.png" and png.read_bytes()[:8] == PNG_MAGIC
    (run / "train_log.jsonl").write_text('{"note": "nothing numeric"}\n', encoding="utf-8")
    assert plot_training_curves(run, tmp_path / "none.png") is None
    assert plot_training_curves(tmp_path / "missing") is None


def test_docstart_with_columns_is_a_boundary_in_a_whitespace_file(tmp_path: Path) -> None:
    """`-DOCSTART- -X- O O` (CoNLL-2003's document line) separates documents, as readers.conll reads it."""
    f = tmp_path / "pred.txt"
    f.write_text("-DOCSTART- -X- O O\n\nعلی B-PER B-PER\nرفت O O\n\n-DOCSTART- -X- O O\nتهران B-LOC O\n",
                 encoding="utf-8")
    data = read_predictions(f)
    assert data.tokens == [["علی", "رفت"], ["تهران"]]
    assert data.gold == [["B-PER", "O"], ["B-LOC"]]
    assert "2 -DOCSTART-" in data.notes[0]
