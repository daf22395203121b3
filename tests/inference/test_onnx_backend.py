"""ONNX export and the ONNX Runtime backend: same windows, tags, offsets and scores as torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the ONNX extra is not installed (pip install 'parsner[onnx]')")

from helpers.serve import TEXTS, export, train_tiny_run
from helpers.tagger import TRAIN_TEXT, build_model_dir, check_entities
from parsner.cli import main
from parsner.errors import EXIT_USER_ERROR, ConfigError, ModelLoadError


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx")
    run = train_tiny_run(root)
    return {"run": run, "fp32": export(run, root / "fp32"), "int8": export(run, root / "int8", "int8")}


@pytest.fixture(scope="module")
def random_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random tiny BERT with small windows (max_length 24): many near-tied logits and windowed sentences."""
    root = tmp_path_factory.mktemp("onnx-random")
    run = build_model_dir(root / "run", seed=3, max_length=24)
    return {"run": run, "fp32": export(run, root / "fp32")}


def _spans(entities: list[dict]) -> list[tuple]:
    return [(e["text"], e["label"], e["start"], e["end"]) for e in entities]


@pytest.mark.slow
def test_export_directory_contents(trained: dict[str, Path]) -> None:
    out = trained["fp32"]
    for name in ("model.onnx", "config.json", "tokenizer.json", "normalizer.json", "parsner.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert not (out / "model.safetensors").exists()
    meta = json.loads((out / "parsner.json").read_text(encoding="utf-8"))
    assert meta["onnx"]["quantize"] is None and meta["onnx"]["opset"] >= 17
    assert meta["onnx"]["parity"]["max_abs_diff"] < 1e-4
    assert meta["onnx"]["parity"]["argmax_agreement"] == 1.0
    assert meta["max_length"] == 64  # the run's windows travel with it
    int8 = json.loads((trained["int8"] / "parsner.json").read_text(encoding="utf-8"))["onnx"]
    assert int8["quantize"] == "int8"
    import onnx

    ops = {n.op_type for n in onnx.load(str(trained["int8"] / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops, sorted(ops)
    # fp32: the plain (eager) attention was traced, not SDPA with its NaN guards, and each layer's attention
    # became onnxruntime's fused Attention op; int8 is quantised from the plain graph
    fp32_ops = [n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node]
    assert meta["onnx"]["fused_attention"] is True and "IsNaN" not in fp32_ops
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert fp32_ops.count("Attention") == config["num_hidden_layers"], sorted(set(fp32_ops))
    assert int8["fused_attention"] is False and "IsNaN" not in ops and "Softmax" in ops


@pytest.mark.parametrize("which", ["trained", "random"])
def test_onnx_entities_equal_torch(which: str, trained: dict[str, Path], random_run: dict[str, Path]) -> None:
    from parsner.inference.tagger import Tagger

    dirs = trained if which == "trained" else random_run
    torch_tagger = Tagger.from_pretrained(dirs["run"], device="cpu")
    ort_tagger = Tagger.from_pretrained(dirs["fp32"])
    assert ort_tagger.runner.backend == "onnx" and ort_tagger.model is None
    assert (ort_tagger.max_length, ort_tagger.stride) == (torch_tagger.max_length, torch_tagger.stride)
    # ZWNJ, three kinds of digits, Arabic ي/ك, and a sentence longer than one window (max_length 24/64).
    long = " ".join([TRAIN_TEXT.replace(".", "")] * 4) + "."
    texts = [*TEXTS, "زهرا كريمي در ۱۲ مهر ١٤٠٢ به خلیج فارس رفت.", long, "", "   "]
    for bs in (1, 7, 64):
        ours, ref = ort_tagger(texts, batch_size=bs), torch_tagger(texts, batch_size=bs)
        for text, a, b in zip(texts, ours, ref, strict=True):
            check_entities(text, a) if which == "random" else None
            assert _spans(a) == _spans(b)
            assert [e["score"] for e in a] == pytest.approx([e["score"] for e in b], abs=1e-4)
    if which == "trained":  # the trained model finds the entities it was taught
        found = {(e["text"], e["label"]) for e in ort_tagger(TEXTS[0])}
        assert ("حمید رحمانی", "PER") in found and ("تهران", "LOC") in found


def test_word_tags_and_f1_equal_torch_int8_close(trained: dict[str, Path]) -> None:
    """Parity on held-out sentences: fp32 ONNX gives torch's word tags exactly; int8 stays close."""
    from helpers.train import make_sentences
    from parsner.evaluation.metrics import score
    from parsner.inference.tagger import Tagger

    test = make_sentences(40, 3)
    words, gold = [t for t, _ in test], [g for _, g in test]
    ref = Tagger.from_pretrained(trained["run"], device="cpu").predict_words(words)
    fp32 = Tagger.from_pretrained(trained["fp32"]).predict_words(words)
    int8 = Tagger.from_pretrained(trained["int8"]).predict_words(words)
    assert fp32 == ref
    f_ref, f_int8 = score(gold, ref)["default"]["f1"], score(gold, int8)["default"]["f1"]
    assert f_ref > 0.9
    assert abs(f_ref - f_int8) <= 0.05
    same = sum(a == b for s, t in zip(ref, int8, strict=True) for a, b in zip(s, t, strict=True))
    assert same / sum(map(len, ref)) > 0.97


def test_backend_choice_and_errors(trained: dict[str, Path]) -> None:
    from parsner.inference.tagger import Tagger

    assert Tagger.from_pretrained(trained["run"], device="cpu").runner.backend == "torch"
    assert Tagger.from_pretrained(trained["fp32"], backend="onnx").runner.backend == "onnx"
    with pytest.raises(ModelLoadError, match="parsner export"):
        Tagger.from_pretrained(trained["run"], backend="onnx")
    with pytest.raises(ModelLoadError, match="only an ONNX model"):
        Tagger.from_pretrained(trained["fp32"], backend="torch")
    with pytest.raises(ConfigError, match="quantised when exported"):
        Tagger.from_pretrained(trained["fp32"], quantize=True)
    with pytest.raises(ConfigError, match="backend"):
        Tagger.from_pretrained(trained["fp32"], backend="tensorrt")


def test_predict_and_eval_cli_run_the_onnx_model(trained: dict[str, Path], capsys) -> None:
    assert main(["predict", "--model", str(trained["fp32"]), TEXTS[1]]) == 0
    onnx_out = capsys.readouterr().out
    assert main(["predict", "--model", str(trained["run"]), TEXTS[1]]) == 0
    torch_out = capsys.readouterr().out
    assert json.loads(onnx_out)["entities"] and onnx_out == torch_out


def test_export_cli_errors(trained: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "exists"
    out.mkdir()
    (out / "mine.txt").write_text("keep", encoding="utf-8")
    assert main(["export", str(trained["run"]), "--onnx", "--out", str(out)]) == EXIT_USER_ERROR
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(trained["run"]), "--onnx", "--out", str(out), "--overwrite"]) == EXIT_USER_ERROR
    assert "not an ONNX export" in capsys.readouterr().err
    assert (out / "mine.txt").read_text(encoding="utf-8") == "keep"
    assert main(["export", str(tmp_path / "missing"), "--onnx", "--out", str(tmp_path / "o")]) == EXIT_USER_ERROR
    assert "not found" in capsys.readouterr().err
    assert main(["export", str(trained["fp32"]), "--onnx", "--out", str(tmp_path / "o2")]) == EXIT_USER_ERROR
    assert "already an ONNX export" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()
    with pytest.raises(SystemExit) as exc:  # --onnx is the format: required
        main(["export", str(trained["run"]), "--out", str(tmp_path / "o3")])
    assert exc.value.code == 2


def test_export_cli_writes_int8(trained: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli-int8"
    assert main(["export", str(trained["run"]), "--onnx", "--quantize", "int8", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "int8 ONNX" in err and "argmax agreement" in err and "fused attention" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["cli-int8"]  # no temporary directory left behind


def test_export_cli_portable_keeps_standard_operators(trained: dict[str, Path], tmp_path: Path, capsys) -> None:
    import onnx

    from parsner.inference.tagger import Tagger

    out = tmp_path / "portable"
    assert main(["export", str(trained["run"]), "--onnx", "--portable", "--out", str(out)]) == 0
    assert "fp32 ONNX" in capsys.readouterr().err
    graph = onnx.load(str(out / "model.onnx")).graph
    assert {n.domain for n in graph.node} <= {"", "ai.onnx"}, "only standard ONNX operators"
    default = onnx.load(str(trained["fp32"] / "model.onnx")).graph
    fused = [n.op_type for n in default.node if n.domain == "com.microsoft"]
    assert "Attention" in fused  # the default export is onnxruntime-specific, hence the option
    assert [_spans(e) for e in Tagger.from_pretrained(out)(TEXTS)] == [
        _spans(e) for e in Tagger.from_pretrained(trained["fp32"])(TEXTS)]


def test_an_onnx_export_tags_without_torch(trained: dict[str, Path]) -> None:
    """Inference from an export needs onnxruntime and the tokenizer only: torch is made unimportable."""
    import subprocess
    import sys

    from parsner.inference.tagger import Tagger

    code = (
        "import json, sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from parsner.inference.tagger import Tagger\n"
        "t = Tagger.from_pretrained(sys.argv[1])\n"
        "print(json.dumps(t(sys.argv[2]), ensure_ascii=False))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(trained["fp32"]), TEXTS[1]], capture_output=True,
                          text=True, encoding="utf-8", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    want = Tagger.from_pretrained(trained["run"], device="cpu")(TEXTS[1])
    assert got and _spans(got) == _spans(want)


def test_a_failed_attention_fusion_keeps_the_plain_graph(trained: dict[str, Path], tmp_path: Path,
                                                         monkeypatch) -> None:
    from onnxruntime.transformers import optimizer

    from parsner.inference.tagger import Tagger

    def broken(*args, **kwargs):
        raise RuntimeError("no pattern matched")

    monkeypatch.setattr(optimizer, "optimize_model", broken)
    out = export(trained["run"], tmp_path / "plain")
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".onnx") == ["model.onnx"]  # no leftover
    meta = json.loads((out / "parsner.json").read_text(encoding="utf-8"))["onnx"]
    assert meta["fused_attention"] is False and meta["parity"]["max_abs_diff"] < 1e-4
    plain = Tagger.from_pretrained(out)(TEXTS)
    fused = Tagger.from_pretrained(trained["fp32"])(TEXTS)
    assert [_spans(e) for e in plain] == [_spans(e) for e in fused]


def test_the_export_honours_any_attention_mask(trained: dict[str, Path]) -> None:
    """Padding on the left or a masked hole gives torch's logits too (the Tagger pads right; others may not)."""
    import numpy as np
    import torch

    from parsner.inference.backends import OrtRunner
    from parsner.inference.modeling import load_for_inference

    model, _, _, _ = load_for_inference(str(trained["run"]), device="cpu")
    runner = OrtRunner(trained["fp32"] / "model.onnx", model.config, threads=1)
    ids = np.random.default_rng(1).integers(5, model.config.vocab_size, size=(3, 10)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[0, :4] = 0  # left padding
    mask[1, 3:5] = 0  # a hole
    mask[2, 7:] = 0  # right padding
    with torch.inference_mode():
        ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).logits.numpy()
    got = runner(ids, mask)
    real = mask.astype(bool)
    assert np.abs(ref - got)[real].max() < 1e-4


def test_int8_sessions_leave_skip_layer_norm_unfused(trained: dict[str, Path], tmp_path: Path) -> None:
    """The fusion OrtRunner turns off exists under that name (a renamed fusion would silently come back)."""
    import onnx
    import onnxruntime as ort

    from parsner.inference.backends import ORT_DISABLED_OPTIMIZERS

    def optimized_ops(disabled: list[str]) -> set[str]:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.optimized_model_filepath = str(tmp_path / f"opt{len(disabled)}.onnx")
        ort.InferenceSession(str(trained["int8"] / "model.onnx"), opts, providers=["CPUExecutionProvider"],
                             disabled_optimizers=disabled)
        return {n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node}

    assert "SkipLayerNormalization" in optimized_ops([])
    assert "SkipLayerNormalization" not in optimized_ops(list(ORT_DISABLED_OPTIMIZERS))
