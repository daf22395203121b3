"""The feature CRF (``model: crf``): features, word clusters, training, and the run in every consumer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.train import make_sentences, run_cli, save_dataset
from parsner.data.wordfeatures import FeatureSpec, sentence_features, shape
from parsner.training.gazetteer import build_gazetteer
from parsner.training.wordclusters import build_clusters

pytest.importorskip("pycrfsuite", reason="the feature CRF needs python-crfsuite: pip install 'parsner[crf]'")

ZWNJ = "\u200c"


def test_shape_collapses_runs_and_knows_persian_digits_and_zwnj() -> None:
    assert shape("۱۳۹۸") == "0"
    assert shape("1399") == "0"
    assert shape(f"می{ZWNJ}شود") == "aza"
    assert shape("G8") == "L0"
    assert shape("«تهران»") == "«a»"


def test_features_of_a_word_and_its_neighbours() -> None:
    spec = FeatureSpec(window=2, affix=3, clusters={"تهران": ["4_1", "16_9"]})
    feats = sentence_features(["به", "تهران", f"می{ZWNJ}رود"], spec)
    mid = feats[1]
    assert mid["w"] == "تهران" and mid["s3"] == "ران" and mid["p1"] == "ت" and "p4" not in mid
    assert mid["c0"] == "4_1" and mid["c1"] == "16_9"
    assert mid["-1:w"] == "به" and mid["1:w"] == f"می{ZWNJ}رود" and mid["1:z0"] == "می"
    assert mid["-1:c"] == "none"  # too rare to cluster
    assert "-2:pad" in mid and "2:pad" in mid
    assert mid["bg-"] == "به|تهران" and mid["bg+"] == f"تهران|می{ZWNJ}رود"
    # affixes only for the nearest neighbours; words and clusters for all within the window
    assert "2:s1" not in feats[0] and feats[0]["2:w"] == f"می{ZWNJ}رود" and "1:s1" in feats[0]
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_word_clusters_group_words_by_context_and_are_seeded() -> None:
    names, cities = ["حمید", "مریم", "رضا", "زهرا"], ["تهران", "اصفهان", "کرمان", "مشهد"]
    sentences = []
    for k in range(200):
        sentences.append(["دیروز", names[k % 4], "گفت", "که", "می‌آید"])
        sentences.append(["او", "به", cities[k % 4], "رفت", "و", "برگشت"])
    sentences.append(["یکبار"])
    table = build_clusters(sentences, sizes=(4, 8), dim=8, seed=3)
    assert "یکبار" not in table  # seen once: no cluster
    for level in (0, 1):  # words of one context share a cluster at every granularity
        assert len({table[w][level] for w in names}) == 1 and len({table[w][level] for w in cities}) == 1
    # at the finer one the two kinds part (at 2-4 clusters k-means' seeding may merge them with numpy 1 or 2;
    # at 8 they parted for each of 40 seeds under both)
    assert table[names[0]][1] != table[cities[0]][1]
    assert all(len(v) == 2 and v[0].startswith("4_") and v[1].startswith("8_") for v in table.values())
    assert build_clusters(sentences, sizes=(4, 8), dim=8, seed=3) == table


def test_gazetteer_features_mark_names_and_their_words() -> None:
    spec = FeatureSpec(window=1, affix=2, gazetteer={"بانک مرکزی": ["ORG"], "ناصر تقوی": ["PER"], "تقوی": ["LOC"]})
    feats = sentence_features(["رئیس", "بانک", "مرکزی", "و", "مهدی", "تقوی"], spec)
    assert "gB:ORG" in feats[1] and "gI:ORG" in feats[2] and "gB:ORG" not in feats[2]
    assert "gw:PER" in feats[5] and "gw:LOC" in feats[5] and "gB:LOC" in feats[5] and "gB:PER" not in feats[5]
    assert "gw:PER" not in feats[4] and not any(k.startswith("g") for k in feats[0] if k != "-1:pad")
    assert FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_gazetteer_takes_names_from_other_corpora_and_drops_test_sentences(tmp_path: Path) -> None:
    src = tmp_path / "other.txt"  # ARMAN-style lower-case types: canonicalised by the reader
    src.write_text("ناصر B-pers\nتقوی I-pers\nبه O\nشیراز B-loc\nرفت O\n\n"
                   "سازمان B-org\nملل I-org\nمتحد I-org\n\n"  # equals a short test sentence: dropped
                   "دیروز O\nالف B-loc\nب O\nپ O\nت O\nگفت O\n\n", encoding="utf-8")  # holds one: dropped
    tests = [(["سازمان", "ملل", "متحد"], "test:1"), (["الف", "ب", "پ", "ت"], "test:2")]
    table, report = build_gazetteer([str(src)], None, tests, min_words=4)
    assert table == {"ناصر تقوی": ["PER"], "شیراز": ["LOC"]}
    assert report["sources"][0]["dropped_holding_test"] == 2 and report["names"] == 2
    assert build_gazetteer([str(src)], None, [], min_words=4, max_words=1)[0] == {
        "شیراز": ["LOC"], "الف": ["LOC"]}


@pytest.fixture(scope="module")
def crf_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crf")
    # test sentences no template makes, so the guard finds exactly the one planted in the unlabelled text
    test = [(["امروز", "حمید", "رحمانی", "از", "تهران", "به", "کرمان", "آمد"],
             ["O", "B-PER", "I-PER", "O", "B-LOC", "O", "B-LOC", "O"]),
            (["مریم", "احمدی", "نیز", "همراه", "بانک", "مرکزی", "بود"],
             ["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O"])]
    data = save_dataset(root / "data", {"train": make_sentences(120, 1), "validation": make_sentences(30, 2),
                                        "test": test})
    text = root / "unlabelled.txt"
    lines = [" ".join(t) for t, _ in make_sentences(150, 9)]
    lines.append(" ".join(["پیش", "از", "آن", *test[0][0], "بود"]))  # holds a test sentence: dropped
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    names = root / "names.txt"  # another corpus's annotations: the gazetteer
    names.write_text("ناصر B-pers\nتقوی I-pers\nدر O\nسازمان B-org\nملل I-org\nبود O\n\n", encoding="utf-8")
    cfg = root / "crf.yaml"
    cfg.write_text(f"data: {data}\nmodel: crf\nseed: 5\ncrf_max_iterations: 40\ncluster_sizes: [4, 8]\n"
                   f"cluster_text: [{text}]\ncluster_min_count: 2\ncluster_overlap_min_words: 4\n"
                   f"gazetteer_data: [{names}]\nlogging_steps: 10\n", encoding="utf-8")
    out = root / "run"
    res = run_cli(["train", "--config", str(cfg), "--out", str(out)])
    assert res.returncode == 0, res.stderr
    assert "CRF iteration 10/40" in res.stderr
    return {"root": root, "data": data, "cfg": cfg, "run": out, "text": text}


def test_training_writes_a_complete_run(crf_setup: dict[str, Path]) -> None:
    run = crf_setup["run"]
    assert sorted(p.name for p in run.iterdir() if p.name != ".parsner-output.json") == sorted(
        ["model.crfsuite", "crf.json", "normalizer.json", "parsner.json", "run_config.yaml", "metrics.json",
         "train_log.jsonl", "README.md", "calibration.json"])
    doc = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    # entity scores calibrated on the validation split (crfsuite's marginals, multiplied over each entity's words)
    assert doc["calibration"]["file"] == "calibration.json" and doc["calibration"]["split"] == "validation"
    assert doc["calibration"]["ece_fitted"] <= doc["calibration"]["ece_raw"]
    assert doc["model_type"] == "feature-crf" and 0 < doc["iterations"] <= 40
    assert doc["metrics"]["f1_strict"] > 0.9  # templated sentences: a CRF learns them
    guard = doc["word_clusters"]["test_guard"]
    assert guard["mode"] == "drop" and guard["overlapping_sentences"] == 1
    assert doc["word_clusters"]["sentences"] == 120 + 30 + 150  # train + validation + the text less one
    meta = json.loads((run / "parsner.json").read_text(encoding="utf-8"))
    assert meta["model_type"] == "feature-crf" and meta["labels"][0] == "O"
    saved = json.loads((run / "crf.json").read_text(encoding="utf-8"))
    assert saved["clusters"] and saved["gazetteer"] == {"ناصر تقوی": ["PER"], "سازمان ملل": ["ORG"]}
    assert doc["gazetteer"]["names"] == 2 and doc["validation_seen_in_training"] is False
    card = (run / "README.md").read_text(encoding="utf-8")
    assert "library_name: python-crfsuite" in card and "crf_c1" in card and "sub-words" not in card
    assert "### Entity scores" in card and "calibrated on the" in card
    assert meta["license"]["license"] == "other" and "\n## Licence\n" in card
    assert not Path(f"{run}.incomplete").exists()


def test_the_run_loads_in_the_tagger_with_offsets_of_the_original_text(crf_setup: dict[str, Path]) -> None:
    from parsner import Tagger

    tagger = Tagger.from_pretrained(crf_setup["run"])
    assert tagger.runner.backend == "crf" and tagger.labels == ["LOC", "ORG", "PER"]
    text = "دیروز حمید رحمانی  و زهرا كريمي در تهران بودند."  # Arabic kaf/yeh: normalised, offsets kept
    ents = tagger(text)
    assert {(e["label"], e["text"]) for e in ents} >= {("PER", "حمید رحمانی"), ("LOC", "تهران")}
    for e in ents:
        assert text[e["start"]:e["end"]] == e["text"] and 0 < e["score"] <= 1
    assert tagger.predict_words([["علی", "به", "تهران", "رفت"]]) == [["B-PER", "O", "B-LOC", "O"]]
    with pytest.raises(ValueError, match="surrogate"):
        tagger("علی \ud800")


def test_eval_predict_and_export_on_a_crf_run(crf_setup: dict[str, Path], tmp_path: Path) -> None:
    run, data = crf_setup["run"], crf_setup["data"]
    res = run_cli(["eval", "--model", str(run), "--data", str(data), "--split", "test", "--out", str(tmp_path / "ev")])
    assert res.returncode == 0, res.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["default"]["f1"] > 0.6 and metrics["n_sentences"] == 2
    res = run_cli(["predict", "--model", str(run), "مریم احمدی به اصفهان رفت"])
    assert res.returncode == 0, res.stderr
    ents = json.loads(res.stdout.splitlines()[0])["entities"]
    assert [(e["label"], e["text"]) for e in ents] == [("PER", "مریم احمدی"), ("LOC", "اصفهان")]
    res = run_cli(["export", str(run), "--onnx", "--out", str(tmp_path / "onnx")])
    assert res.returncode == 2 and "not a network" in res.stderr and not (tmp_path / "onnx").exists()
    from parsner import Tagger
    from parsner.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="feature CRF"):
        Tagger.from_pretrained(run, backend="torch")


def test_serve_answers_with_a_crf_run(crf_setup: dict[str, Path]) -> None:
    pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'parsner[serve]')")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'parsner[serve]')")
    from helpers.serve import http, running_server
    from parsner import Tagger
    from parsner.serving.server import create_app

    tagger = Tagger.from_pretrained(crf_setup["run"])
    text = "حمید رحمانی با بانک مرکزی دیدار کرد"
    with running_server(create_app(tagger, str(crf_setup["run"]))) as url:
        status, info = http("GET", f"{url}/v1/model")
        assert status == 200 and info["backend"] == "crf" and info["architecture"] == "FeatureCRF"
        assert info["max_length"] is None and info["labels"] == ["LOC", "ORG", "PER"]
        status, body = http("POST", f"{url}/v1/ner", {"text": text})
    assert status == 200
    assert [(e["label"], e["text"]) for e in body["entities"]] == [("PER", "حمید رحمانی"), ("ORG", "بانک مرکزی")]


@pytest.mark.slow
def test_sigterm_stops_the_optimiser_and_resume_reuses_the_clusters(crf_setup: dict[str, Path]) -> None:
    out = crf_setup["root"] / "stopped"
    args = ["train", "--config", str(crf_setup["cfg"]), "--out", str(out)]
    res = run_cli(args, env_extra={"PARSNER_FAULT_INJECT": "SIGTERM:3"})
    assert res.returncode == 143 and "SIGTERM" in res.stderr and "--resume" in res.stderr, res.stderr
    assert "CRF iteration 10/" not in res.stderr  # stopped at once, not at the end of the optimisation
    assert not out.exists() and (Path(f"{out}.incomplete") / "clusters.json").is_file()
    res = run_cli([*args, "--resume"])
    assert res.returncode == 0, res.stderr
    assert "word clusters reused" in res.stderr and (out / "model.crfsuite").is_file()
    assert not Path(f"{out}.incomplete").exists()
    first = json.loads((crf_setup["run"] / "metrics.json").read_text(encoding="utf-8"))["metrics"]
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["metrics"] == first  # same run


def test_training_on_validation_says_its_validation_scores_are_seen(crf_setup: dict[str, Path]) -> None:
    out = crf_setup["root"] / "tv"
    res = run_cli(["train", "--config", str(crf_setup["cfg"]), "--out", str(out), "--set", "cluster_sizes=[]",
                   "--set", "crf_max_iterations=15", "--set", "crf_train_on_validation=true"])
    assert res.returncode == 0, res.stderr
    assert "150 training sentences (train+validation)" in res.stderr and "on sentences it trained on" in res.stderr
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert doc["validation_seen_in_training"] is True and doc["train_sentences"] == 150
    # calibrated by a first CRF that did not train on validation; its map is kept, this CRF's own scores are not fitted
    cal = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert doc["calibration"]["file"] == "calibration.json" and cal["info"]["model"].startswith("a CRF trained on the")
    assert cal["info"]["entities"] == doc["calibration"]["entities"] > 0
    assert "calibration: a first CRF on the 120 training sentences alone" in res.stderr
    assert len(res.stderr.split("CRF iteration 1/15")) == 3  # two fits
    rows = (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    its = [json.loads(r)["iteration"] for r in rows if '"iteration"' in r]
    assert its and its == sorted(set(its))  # the published fit's iterations only, once each
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "says nothing about quality" in card and "model-index" not in card  # no seen-data figure published


def test_crf_calibrate_off_keeps_raw_scores_and_fits_once(crf_setup: dict[str, Path]) -> None:
    out = crf_setup["root"] / "raw"
    res = run_cli(["train", "--config", str(crf_setup["cfg"]), "--out", str(out), "--set", "cluster_sizes=[]",
                   "--set", "crf_max_iterations=15", "--set", "crf_train_on_validation=true",
                   "--set", "crf_calibrate=false"])
    assert res.returncode == 0, res.stderr
    doc = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert doc["calibration"] == {"file": None, "why": "entity scores are raw: crf_calibrate is off"}
    assert not (out / "calibration.json").exists() and "calibration: a first CRF" not in res.stderr
    assert "not calibrated (crf_calibrate is off)" in (out / "README.md").read_text(encoding="utf-8")


def test_a_missing_gazetteer_or_text_file_is_said_before_any_work(crf_setup: dict[str, Path]) -> None:
    out = crf_setup["root"] / "missing"
    for key in ("gazetteer_data", "cluster_text"):
        res = run_cli(["train", "--config", str(crf_setup["cfg"]), "--out", str(out), "--set", f"{key}=[/no/such.txt]"])
        assert res.returncode == 2 and f"/no/such.txt: no such file (in {key}: " in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and "word clusters" not in res.stderr
        assert not out.exists() and not Path(f"{out}.incomplete").exists()


@pytest.mark.parametrize(("recipe", "own_corpus"), [("peyma-cpu.yaml", "peyma"), ("arman-cpu.yaml", "arman")])
def test_the_cpu_recipes_take_names_and_text_only_from_other_corpora(recipe: str, own_corpus: str) -> None:
    from parsner.paths import REPO_ROOT
    from parsner.training.config import RunConfig, load

    cfg = load(RunConfig, REPO_ROOT / "training" / recipe)
    assert cfg.model == "crf" and cfg.crf_train_on_validation and cfg.gazetteer_data and cfg.cluster_text
    assert own_corpus in str(cfg.data)
    # the run's own corpus reaches the clusters only through its train+validation words, never its files
    assert not [p for p in [*cfg.gazetteer_data, *cfg.cluster_text] if f"/{own_corpus}/" in p]
