"""Inference speed: ParsNER's Tagger against ``transformers.pipeline``, same model, same raw text.

    python eval/bench_predict.py --limit 100                 # quick check (stand-in model, 100 sentences)
    python eval/bench_predict.py --model models/peyma --quantize --repeat 3 --json eval/bench_predict.json

Text: PEYMA's test sentences (``shared/data/peyma/hooshvare_split/test.txt``) joined back into raw text, one
text per sentence; without the shared data, the embedded sample corpus (the output says so). Both systems get
the same list of strings, on CPU, in one run; with ``--repeat N`` every row is timed once per round for N
rounds (rows in turn, so a slow spell of a shared machine hits all rows alike) and keeps its best:

* ``transformers.pipeline("token-classification", aggregation_strategy="first")`` at its default settings
  (no ``batch_size``: one text at a time) and at each ``--pipeline-batch-sizes`` value; the fastest of
  these is "pipeline best";
* ``Tagger`` at ``--batch-sizes`` (length-sorted windows, dynamic padding, ``inference_mode``);
* with ``--quantize``: ``Tagger(quantize=True)`` (dynamic int8), with its F1 cost measured on the same
  sentences' gold tags (``predict_words``), next to the fp32 F1 and the tag agreement between the two.
* with ``--onnx``: the same model exported by ``parsner export --onnx`` (fp32) and ``--quantize int8``,
  run by the Tagger's ONNX Runtime backend with as many threads as torch: "ORT fp32" and "ORT int8" rows
  at ``--batch-sizes``, their word-tag agreement with torch and F1 on the gold tags;
* with ``--latency``: single-text latency (p50/p99 over ``--latency-repeats`` calls) of a 1-sentence and a
  30-sentence article for each Tagger backend — what an interactive user waits.

The output and the JSON name the machine (:func:`parsner.envinfo.bench_record`: CPU model, vendor, family and
model numbers, cores, SIMD flags, torch and onnxruntime versions, threads, load average): the same model's
ratios differ between CPUs (eval/RESULTS.md section 8).

Without ``--model`` a stand-in is built: ParsBERT v1's real tokenizer and config with random weights and
``--layers`` layers (or the ``tiny`` stand-in when the shared tokenizer is missing). Speed is what it
measures; its F1 is meaningless (random weights) and is labelled so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from parsner.paths import SAMPLE_DIR, parsbert_v1_tokenizer_dir, shared_data_dir  # noqa: E402


def load_sentences(limit: int) -> tuple[list[list[str]], list[list[str]], str]:
    """(tokens, gold tags, description) of PEYMA test, or of the embedded sample when it is absent."""
    from parsner.data.readers import read_file

    peyma = shared_data_dir() / "peyma" / "hooshvare_split" / "test.txt"
    if peyma.is_file():
        sents = read_file(peyma).sentences
        source = f"PEYMA test ({peyma})"
    else:
        sents = read_file(SAMPLE_DIR / "sample.jsonl").sentences
        source = f"NOTE: PEYMA not found at {peyma}; embedded sample corpus instead ({SAMPLE_DIR})"
    if 0 < limit < len(sents):  # evenly spaced, so the length distribution is kept
        step = len(sents) / limit
        sents = [sents[int(i * step)] for i in range(limit)]
        source += f", {limit} evenly spaced sentences"
    return [s.tokens for s in sents], [s.tags for s in sents], source


def build_standin(out: Path, layers: int, types: list[str], words: list[list[str]]) -> str:
    """Save a random-weight model directory like a training run; returns its description."""
    import torch

    from parsner.data.normalize import PersianNormalizer
    from parsner.inference.modeling import load_model, load_tokenizer
    from parsner.labels import label_list

    labels = label_list(types)
    torch.manual_seed(0)
    if (parsbert_v1_tokenizer_dir() / "tokenizer.json").is_file():
        spec = f"parsbert-standin:{layers}"
        tok = load_tokenizer(spec)
        desc = f"ParsBERT v1 tokenizer+config, {layers} layers, random weights (stand-in)"
    else:
        spec = f"tiny:{layers}"
        tok = load_tokenizer(spec, train_words=words)
        desc = f"tiny BERT, {layers} layers, random weights (stand-in; ParsBERT tokenizer not found)"
    model = load_model(spec, labels, tok)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    PersianNormalizer().save(out)
    (out / "parsner.json").write_text(json.dumps({"max_length": 512, "stride": 128, "stand_in": desc}))
    return desc


#: Row names of the Tagger backends in the speed table (the ONNX ones keep their names).
ROW_NAMES = {"Tagger torch fp32": "Tagger", "Tagger torch int8": "Tagger int8 (dynamic)"}
ONNX_ROWS = ("ORT fp32", "ORT int8")


def time_interleaved(runs: list[tuple[str, Any, Callable[[], Any]]], repeat: int, n_sent: int,
                     n_tok: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """Best of ``repeat`` timings per run, the runs taken in turn each round (so a slow spell of a shared
    machine hits every row alike, not the rows that happened to run during it); rows and first outputs."""
    best = [float("inf")] * len(runs)
    outputs: list[Any] = [None] * len(runs)
    for rnd in range(repeat):
        for k, (system, batch, fn) in enumerate(runs):
            t0 = time.perf_counter()
            out = fn()
            best[k] = min(best[k], time.perf_counter() - t0)
            outputs[k] = out if outputs[k] is None else outputs[k]
            print(f"  round {rnd + 1}: {system:<24} batch {batch!s:>4}: {best[k]:8.2f} s", file=sys.stderr, flush=True)
    rows = [{"system": system, "batch_size": batch, "seconds": round(secs, 3),
             "sentences_per_s": round(n_sent / secs, 2), "tokens_per_s": round(n_tok / secs, 1)}
            for (system, batch, _), secs in zip(runs, best, strict=True)]
    return rows, outputs


def int8_cost(tagger: Any, qtagger: Any | None, tokens: list[list[str]], gold: list[list[str]], bs: int,
              standin: bool) -> dict[str, Any] | None:
    """F1 of torch fp32 and dynamic int8 on the gold tags, and their word-tag agreement."""
    if qtagger is None:
        return None
    fp = tagger.predict_words(tokens, batch_size=bs)
    q8 = qtagger.predict_words(tokens, batch_size=bs)
    f_fp, f_q8 = micro_f1(gold, fp), micro_f1(gold, q8)
    same = sum(a == b for s, t in zip(fp, q8, strict=True) for a, b in zip(s, t, strict=True))
    return {"f1_fp32": round(f_fp, 4), "f1_int8": round(f_q8, 4), "f1_cost": round(f_fp - f_q8, 4),
            "tag_agreement": round(same / sum(map(len, tokens)), 4),
            "note": "random-weight stand-in: F1 is meaningless" if standin else ""}


def micro_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Entity micro-F1, conlleval/seqeval default mode (no seqeval needed, so it runs anywhere)."""
    from parsner.labels import spans_from_tags

    n_gold = n_pred = n_ok = 0
    for g, p in zip(gold, pred, strict=True):
        gs, ps = set(spans_from_tags(g)), set(spans_from_tags(p))
        n_gold, n_pred, n_ok = n_gold + len(gs), n_pred + len(ps), n_ok + len(gs & ps)
    return 2 * n_ok / (n_gold + n_pred) if n_gold + n_pred else 1.0


def entity_agreement(ours: list[list[dict]], theirs: list[list[dict]]) -> dict[str, float]:
    a = {(i, e["start"], e["end"], e["label"]) for i, ents in enumerate(ours) for e in ents}
    b = {(i, int(e["start"]), int(e["end"]), e["entity_group"]) for i, es in enumerate(theirs) for e in es}
    both = len(a & b)
    return {
        "tagger_entities": len(a),
        "pipeline_entities": len(b),
        "shared": both,
        "share_of_pipeline_found_by_tagger": round(both / len(b), 4) if b else 1.0,
        "share_of_tagger_found_by_pipeline": round(both / len(a), 4) if a else 1.0,
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model directory (default: build a stand-in)")
    ap.add_argument("--layers", type=int, default=4, help="layers of the stand-in (default 4)")
    ap.add_argument("--limit", type=int, default=0, help="use N evenly spaced sentences (0: all)")
    ap.add_argument("--pipeline-batch-sizes", default="4,8,16,32,64",
                    help="batch sizes tried besides the default (which is one text at a time)")
    ap.add_argument("--batch-sizes", default="32,64", help="Tagger batch sizes (first = its default)")
    ap.add_argument("--quantize", action="store_true", help="add the dynamic int8 row with its F1 cost")
    ap.add_argument("--onnx", action="store_true", help="add ONNX Runtime fp32 and int8 rows, parity and F1")
    ap.add_argument("--latency", action="store_true", help="single-text latency p50/p99 per Tagger backend")
    ap.add_argument("--latency-repeats", type=int, default=50, help="calls per latency figure (default 50)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; every row is timed once per round, its best kept")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    import torch
    from transformers import pipeline

    from parsner.inference.tagger import Tagger

    if args.threads:
        torch.set_num_threads(args.threads)
    tokens, gold, source = load_sentences(args.limit)
    texts = [" ".join(t) for t in tokens]
    n_sent, n_tok = len(texts), sum(len(t) for t in tokens)
    print(f"data: {source}: {n_sent} sentences, {n_tok} tokens", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        desc = f"trained model {args.model}"
        if model_dir is None:
            types = sorted({t[2:] for sent in gold for t in sent if t != "O"})
            model_dir = str(Path(tmp) / "standin")
            desc = build_standin(Path(model_dir), args.layers, types, tokens)
        print(f"model: {desc}", file=sys.stderr)
        tagger = Tagger.from_pretrained(model_dir, device="cpu")
        pipe = pipeline("token-classification", model=model_dir, aggregation_strategy="first", device="cpu")
        taggers: dict[str, Any] = {"Tagger torch fp32": tagger}
        if args.quantize:
            taggers["Tagger torch int8"] = Tagger.from_pretrained(model_dir, device="cpu", quantize=True)
        if args.onnx:
            taggers.update(onnx_taggers(model_dir, Path(tmp), torch.get_num_threads()))
        sizes = [int(x) for x in args.batch_sizes.split(",") if x]
        runs: list[tuple[str, Any, Callable[[], Any]]] = [("pipeline (default)", 1, lambda: pipe(texts))]
        runs += [("pipeline", bs, lambda bs=bs: pipe(texts, batch_size=bs))
                 for bs in [int(x) for x in args.pipeline_batch_sizes.split(",") if x]]
        for name, t in taggers.items():
            for bs in sizes if name in ("Tagger torch fp32", *ONNX_ROWS) else sizes[:1]:
                runs.append((ROW_NAMES.get(name, name), bs, lambda t=t, bs=bs: t(texts, batch_size=bs)))
        for fn in [pipe, *taggers.values()]:
            fn(texts[:8])  # warm-up
        rows, outputs = time_interleaved(runs, args.repeat, n_sent, n_tok)
        pipe_out = outputs[0]
        tagger_out = next(out for (name, _, _), out in zip(runs, outputs, strict=True) if name == "Tagger")
        quant = int8_cost(tagger, taggers.get("Tagger torch int8"), tokens, gold, sizes[0], args.model is None)
        onnx = None
        if args.onnx:
            onnx = onnx_parity(tagger, {k: taggers[k] for k in ONNX_ROWS}, tokens, gold, texts, sizes[0])
        latency = measure_latency(taggers, texts, tokens, args.latency_repeats) if args.latency else None

    from parsner.envinfo import bench_record

    threads = torch.get_num_threads()
    machine = bench_record(torch=threads, onnxruntime=threads if args.onnx else None)
    default = rows[0]["seconds"]
    pipes = [r for r in rows if r["system"].startswith("pipeline")]
    best_pipe = min(pipes, key=lambda r: r["seconds"])
    for r in rows:
        r["speedup_vs_pipeline_default"] = round(default / r["seconds"], 2)
        r["speedup_vs_pipeline_best"] = round(best_pipe["seconds"] / r["seconds"], 2)
    tagger_rows = [r for r in rows if r["system"] == "Tagger"]
    result = {
        "data": source, "sentences": n_sent, "tokens": n_tok, "model": desc,
        "device": "cpu", "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "repeat": args.repeat, "rows": rows,
        "pipeline_best_batch_size": best_pipe["batch_size"],
        "tagger_default_vs_pipeline_best": tagger_rows[0]["speedup_vs_pipeline_best"],
        "tagger_default_vs_pipeline_default": tagger_rows[0]["speedup_vs_pipeline_default"],
        "entity_agreement_tagger_vs_pipeline": entity_agreement(tagger_out or [], pipe_out),
        "int8": quant,
        "onnx": onnx,
        "latency_ms": latency,
        "machine": machine,
    }
    print(render_markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


def onnx_taggers(model_dir: str, tmp: Path, threads: int) -> dict[str, Any]:
    """The model exported to ONNX (fp32 and int8), each in a Tagger with ``threads`` intra-op threads."""
    from parsner.inference.export import export_onnx
    from parsner.inference.modeling import load_onnx_for_inference
    from parsner.inference.tagger import Tagger

    out: dict[str, Any] = {}
    for name, quantize in (("ORT fp32", None), ("ORT int8", "int8")):
        d = tmp / name.replace(" ", "-")
        t0 = time.perf_counter()
        export_onnx(model_dir, d, quantize=quantize)
        print(f"  exported {name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        runner, tok, norm, meta = load_onnx_for_inference(d, threads=threads)
        out[name] = Tagger(runner, tok, norm, meta=meta)
    return out


def onnx_parity(tagger: Any, ort: dict[str, Any], tokens: list[list[str]], gold: list[list[str]],
                texts: list[str], bs: int) -> dict[str, Any]:
    """Word-tag agreement with torch and F1 on gold tags (``predict_words``), entity agreement on raw text."""
    ref = tagger.predict_words(tokens, batch_size=bs)
    f_ref = micro_f1(gold, ref)
    ref_ents = [[(e["start"], e["end"], e["label"]) for e in ents] for ents in tagger(texts, batch_size=bs)]
    n_words = sum(map(len, ref))
    result: dict[str, Any] = {"f1_torch_fp32": round(f_ref, 4)}
    for name, t in ort.items():
        tags = t.predict_words(tokens, batch_size=bs)
        same = sum(a == b for s, u in zip(ref, tags, strict=True) for a, b in zip(s, u, strict=True))
        ents = [[(e["start"], e["end"], e["label"]) for e in es] for es in t(texts, batch_size=bs)]
        f = micro_f1(gold, tags)
        result[name] = {"f1": round(f, 4), "f1_change_points": round(100 * (f - f_ref), 2),
                        "word_tag_agreement": round(same / n_words, 6),
                        "texts_with_identical_entities": round(
                            sum(a == b for a, b in zip(ref_ents, ents, strict=True)) / len(texts), 6)}
    return result


def measure_latency(taggers: dict[str, Any], texts: list[str], tokens: list[list[str]],
                    repeats: int) -> dict[str, Any]:
    """p50/p99 wall time of ``tagger(text)`` for one text at a time: a median sentence, a 30-sentence article."""
    import statistics

    median_len = statistics.median_low(len(t) for t in tokens)
    one = texts[next(i for i, t in enumerate(tokens) if len(t) == median_len)]
    article = " ".join(texts[:30])
    out: dict[str, Any] = {"1 sentence": {"words": median_len}, "30 sentences": {"words": len(article.split())}}
    for label, text in (("1 sentence", one), ("30 sentences", article)):
        for name, t in taggers.items():
            t(text)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                t(text)
                times.append(1000 * (time.perf_counter() - t0))
            times.sort()
            out[label][name] = {"p50": round(times[len(times) // 2], 2),
                                "p99": round(times[min(len(times) - 1, int(0.99 * len(times)))], 2)}
            print(f"  latency {label:<12} {name:<18}: p50 {out[label][name]['p50']:7.1f} ms", file=sys.stderr)
    return out


def render_markdown(r: dict[str, Any]) -> str:
    from parsner.envinfo import bench_summary

    lines = [
        f"Inference speed, CPU ({r['torch_threads']} torch threads, {r['cpu_count']} CPUs), "
        f"torch {r['torch']}",
        bench_summary(r["machine"]),
        f"data: {r['data']} — {r['sentences']} sentences, {r['tokens']} tokens; model: {r['model']}",
        "",
        "| system | batch | seconds | sentences/s | tokens/s | × pipeline default | × pipeline best |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['system']} | {row['batch_size']} | {row['seconds']:.2f} | "
            f"{row['sentences_per_s']:.1f} | "
            f"{row['tokens_per_s']:.0f} | {row['speedup_vs_pipeline_default']:.2f} | "
            f"{row['speedup_vs_pipeline_best']:.2f} |"
        )
    lines.append("")
    lines.append(f"Tagger (default batch) vs pipeline at its best batch_size "
                 f"({r['pipeline_best_batch_size']}): {r['tagger_default_vs_pipeline_best']:.2f}×; "
                 f"vs pipeline default: {r['tagger_default_vs_pipeline_default']:.2f}×.")
    ag = r["entity_agreement_tagger_vs_pipeline"]
    lines.append(f"Entity agreement: {ag['shared']} shared; {ag['share_of_pipeline_found_by_tagger']:.1%} "
                 f"of the pipeline's {ag['pipeline_entities']} entities found by the Tagger, "
                 f"{ag['share_of_tagger_found_by_pipeline']:.1%} of the Tagger's {ag['tagger_entities']} "
                 "by the pipeline (the Tagger normalises words; the pipeline sees raw text).")
    q = r.get("int8")
    if q:
        lines.append(f"int8: F1 {q['f1_int8']:.4f} vs fp32 {q['f1_fp32']:.4f} (cost {q['f1_cost']:+.4f}), "
                     f"tag agreement {q['tag_agreement']:.2%}. {q['note']}".rstrip())
    o = r.get("onnx")
    if o:
        for name in ("ORT fp32", "ORT int8"):
            x = o[name]
            lines.append(f"{name}: F1 {x['f1']:.4f} vs torch fp32 {o['f1_torch_fp32']:.4f} "
                         f"({x['f1_change_points']:+.2f} points), word-tag agreement with torch "
                         f"{x['word_tag_agreement']:.4%}, texts with identical entities "
                         f"{x['texts_with_identical_entities']:.2%}.")
    lat = r.get("latency_ms")
    if lat:
        lines += ["", "| single text | system | p50 ms | p99 ms |", "|---|---|---:|---:|"]
        for label, rows in lat.items():
            for name, v in rows.items():
                if name != "words":
                    lines.append(f"| {label} ({rows['words']} words) | {name} | {v['p50']:.1f} | {v['p99']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
