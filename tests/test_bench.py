"""`asr-pathways bench`: the tiny profile end to end, the plan, and the paired bootstrap."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pytest

from asr_pathways.cli import main
from asr_pathways.report import paired_bootstrap, utterance_errors, word_errors


# ------------------------------------------------------------------------------ statistics
def _scores(errors: list[int], words: int = 10, lang: str = "fr") -> dict:
    return {lang: {f"u{i}": (e, words) for i, e in enumerate(errors)}}


def test_word_errors_match_jiwer():
    from asr_pathways.metrics import error_rates

    pairs = [("the cat sat on the mat", "the cat sat on mat"), ("a b c", "x y"), ("", "oops extra"), ("one two", ""),
             ("il fait beau aujourd'hui", "il fait beau aujourd hui"), ("same words here", "same words here")]
    for ref, hyp in pairs:
        assert word_errors(ref, hyp) == error_rates([ref], [hyp])["word_errors"], (ref, hyp)
    sc = utterance_errors([{"id": "a", "language": "en", "ref": "x y z", "hyp": "x z"}])
    assert sc == {"en": {"a": (1, 3)}}


def test_bootstrap_identical_method_contains_zero():
    import random

    rng = random.Random(1)
    base = {s: _scores([rng.randint(0, 6) for _ in range(200)]) for s in (0, 1, 2)}
    r = paired_bootstrap(base, {s: json.loads(json.dumps(v)) for s, v in base.items()}, n_boot=500)
    assert r["relative"] == 0.0
    assert r["ci"][0] <= 0.0 <= r["ci"][1]
    assert not r["excludes_zero"]


def test_bootstrap_strictly_better_is_above_zero():
    import random

    rng = random.Random(2)
    base, meth = {}, {}
    for s in (0, 1):
        errs = [rng.randint(1, 6) for _ in range(150)]
        base[s] = _scores(errs) | _scores(errs, lang="it")
        meth[s] = _scores([e - 1 for e in errs]) | _scores([e - 1 for e in errs], lang="it")
    r = paired_bootstrap(base, meth, n_boot=500)
    assert r["relative"] > 0 and r["ci"][0] > 0 and r["excludes_zero"]
    assert r["languages"] == ["fr", "it"] and r["utterances"] == {"fr": 150, "it": 150}
    worse = paired_bootstrap(meth, base, n_boot=500)  # the other way round: CI below 0
    assert worse["ci"][1] < 0


def test_bootstrap_pairs_only_common_utterances():
    base = {0: {"fr": {"a": (1, 5), "b": (2, 5), "c": (9, 5)}}}
    meth = {0: {"fr": {"a": (0, 5), "b": (1, 5)}}}  # evaluated on fewer utterances
    r = paired_bootstrap(base, meth, n_boot=200)
    assert r["utterances"] == {"fr": 2}
    assert r["wer_base"] == pytest.approx(3 / 10) and r["wer_method"] == pytest.approx(1 / 10)


# ------------------------------------------------------------------------------ plan
def _paper():
    from asr_pathways.bench_cli import load_paper

    return load_paper()


def test_small_profile_plan_fits_budget(capsys, tmp_path: Path):
    paper = _paper()
    pr = paper.PROFILES["small"]
    ns = argparse.Namespace(out=str(tmp_path / "small"), seeds=None, only=None, no_ablations=False, corpus=None, dense=None,
                            corpus8=None, dense8=None, eval_utts=None, device=None, plan=True, progress=False, benchmarks_md=False)
    res = paper.run_profile(pr, ns)
    assert "s2/dyn-lap70" in res["plan"] and "s0/abl-dyn-candall" in res["plan"]
    assert res["estimate"]["total_seconds"] / 60 <= pr.budget_minutes  # the arithmetic written in the profile's note
    assert not (tmp_path / "small").exists()  # --plan runs nothing
    demo = paper.PROFILES["demo"]
    ns.out, ns.no_ablations = str(tmp_path / "demo"), True
    d = paper.run_profile(demo, ns)
    e = d["estimate"]
    assert (e["total_seconds"] + e["dense_seconds"]) / 60 + 3 <= demo.budget_minutes  # + corpus synthesis (~2.5 min)


def _tiny_planner(tmp_path: Path, **eight_changes):
    from dataclasses import replace

    paper = _paper()
    pr = paper.PROFILES["tiny"]
    pr = replace(pr, eight=replace(pr.eight, **eight_changes))
    ns = argparse.Namespace(out=str(tmp_path / "tiny"), seeds=None, only=None, no_ablations=False, corpus=None, dense=None,
                            corpus8=None, dense8=None, eval_utts=None, device=None, plan=True, progress=False)
    planner = paper.Planner(paper.make_context(pr, ns))
    planner.build()
    return paper, planner


def test_fixed_folder_built_by_another_command_is_not_reused(tmp_path: Path):
    """A dense model trained for fewer steps than the profile asks must stop the run, not be reused."""
    paper, planner = _tiny_planner(tmp_path)
    dense8 = planner.jobs["dense8"]
    dense8.folder.mkdir(parents=True)
    old = [a if a != str(planner.pr.eight.dense_steps) else "1" for a in dense8.argv]
    (dense8.folder / "bench_job.json").write_text(json.dumps({"argv": [*old, "--out", str(dense8.folder)]}))
    assert dense8.done and dense8.stale() == old
    assert "STALE" in paper.plan_text(list(planner.jobs.values()), planner.pr, planner.ctx)
    with pytest.raises(RuntimeError, match="--steps 1"):
        paper.run_job(dense8)
    (dense8.folder / "bench_job.json").write_text(json.dumps({"argv": [*dense8.argv, "--out", str(dense8.folder)]}))
    assert dense8.stale() is None and paper.run_job(dense8)["argv"][0] == "train"  # the same command: reused


def test_results_of_a_rebuilt_input_get_new_folders(tmp_path: Path):
    """Runs that read a dense model the benchmark trains are keyed by the command that trains it."""
    _, a = _tiny_planner(tmp_path)
    _, b = _tiny_planner(tmp_path, dense_steps=a.pr.eight.dense_steps + 1)
    assert a.jobs["dense8"].folder == b.jobs["dense8"].folder  # the fixed folder
    for key in ("dense-eval8", "s0/lth-8lang", "s0/dyn-lap70-8lang"):
        assert a.jobs[key].folder != b.jobs[key].folder, key
    assert a.jobs["s0/imp"].folder == b.jobs["s0/imp"].folder  # the 4-language runs do not read it


# ------------------------------------------------------------------------------ degenerate output
def _write_hyps(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyps_test.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_report_flags_degenerate_arm_and_does_not_compare_it(tmp_path: Path, capsys):
    """Demo profile, hand-made hypotheses: IMP emits 'è' for every fr utterance (degenerate), the other runs
    transcribe. The IMP comparison is not made (report, results.json, demo console); the multilingual one is."""
    from asr_pathways.demo import intro_line, summary_lines

    paper = _paper()  # puts the repository on sys.path
    from benchmarks.paper_report import build_report

    pr = paper.PROFILES["demo"]
    ns = argparse.Namespace(out=str(tmp_path / "demo"), seeds=None, only=None, no_ablations=True, corpus=None, dense=None,
                            corpus8=None, dense8=None, eval_utts=None, device=None, plan=True, progress=False)
    ctx = paper.make_context(pr, ns)
    planner = paper.Planner(ctx)
    layout = planner.build()  # the jobs only: nothing runs, the hypotheses files are written by hand below
    langs, n = pr.languages, 20
    refs = {l: [f"{l} phrase numéro {i} avec le mot {i * 7 % 13}" for i in range(n)] for l in langs}

    def rows(hyp) -> list[dict]:
        return [{"id": f"{l}-{i}", "language": l, "ref": refs[l][i], "hyp": hyp(l, i)} for l in langs for i in range(n)]

    good = lambda drop: (lambda l, i: refs[l][i] if i % drop else " ".join(refs[l][i].split()[:-1]))  # noqa: E731
    _write_hyps(planner.jobs["dense-eval"].folder, rows(good(3)))
    _write_hyps(planner.jobs["s0/imp"].folder, [r for r in rows(lambda l, i: "è") if r["language"] == "fr"])
    _write_hyps(planner.jobs["s0/adapt-imp35"].folder, [r for r in rows(good(4)) if r["language"] == "fr"])
    _write_hyps(planner.jobs["s0/pathways"].folder, rows(good(2)))
    _write_hyps(planner.jobs["s0/dyn-lth70"].folder, rows(good(5)))
    res = build_report(planner, layout, {}, ctx, 0.0, "test")

    md = (ctx.out / "report.md").read_text()
    claims = {c["title"]: c for c in res["claims"]}
    imp = next(c for t, c in claims.items() if t.startswith("adaptive (IMP-35%)"))
    dyn = next(c for t, c in claims.items() if t.startswith("Dynamic (LTH-70%)"))
    assert imp["degenerate"] and imp["base"] == "imp" and imp["degenerate_note"]["arms"] == ["imp"]
    assert imp["distinct_share_base"] == [pytest.approx(1 / n)] and imp["distinct_share_method"] == [1.0]
    assert imp["relative"] == imp["relative"] and "ci" in imp  # the raw numbers are kept in results.json
    assert not dyn["degenerate"] and dyn["relative"] > 0
    line = next(l for l in md.splitlines() if l.startswith("| adaptive (IMP-35%)"))
    assert "degenerate output (5% distinct hypotheses): not compared" in line and "[" not in line
    assert "not compared (IMP-70%: degenerate output)" in line
    line = next(l for l in md.splitlines() if l.startswith("| Dynamic (LTH-70%) vs ASR Pathways"))
    assert "degenerate" not in line and f"{100 * dyn['relative']:+.1f}% [" in line
    t1, t2 = res["tables"]["table1"], res["tables"]["table2"]
    assert t1["IMP-70%"]["degenerate"] and t1["IMP-70%"]["distinct_share"] == [pytest.approx(0.05)]
    assert t1["IMP-70%"]["most_common_hypothesis"] == [["è", 1.0]]
    assert not t1["dense θ_ML"]["degenerate"] and t1["dense θ_ML"]["distinct_share"] == [1.0]
    assert not any(r["degenerate"] for r in t2.values())
    assert "| IMP-70% | 100.00 | **100.00** | 5 ⚠ degenerate |" in md
    assert "distinct hyps %" in md and "1 comparison(s) not made" in res["why"]
    assert json.loads((ctx.out / "results.json").read_text())["claims"][0]["degenerate"] is True

    summary = "\n".join(summary_lines(res))
    assert summary.startswith("dense θ_ML: average WER ")
    assert "IMP-70% (fr): WER 100.0%, 5% distinct hypotheses — DEGENERATE output: 100% of hypotheses are 'è'" in summary
    assert "ASR Pathways (LTH-70%) (en, fr, it, nl): WER" in summary and summary.count("DEGENERATE") == 1
    intro = intro_line(pr)
    assert intro.startswith("demo: ") and "\n" not in intro and "does not measure the paper's claims" in intro
    assert f"{pr.dense_steps} steps" in intro and f"{pr.eval_utts} test utterances" in intro


def test_degenerate_note_names_the_worst_share():
    _paper()
    from asr_pathways.metrics import hypothesis_diversity
    from benchmarks.paper_report import degenerate_note

    fine = hypothesis_diversity([{"language": "fr", "hyp": f"phrase {i}"} for i in range(10)])
    collapsed = hypothesis_diversity([{"language": "fr", "hyp": "è" if i else "le"} for i in range(10)])
    pooled = hypothesis_diversity([{"language": l, "hyp": h} for l in ("en", "fr", "it") for h in ("a", "b")])
    assert degenerate_note({"a": {0: fine}, "b": {0: fine, 1: fine}}) is None
    n = degenerate_note({"a": {0: fine}, "b": {0: fine, 1: collapsed}})
    assert n["message"] == "degenerate output (20% distinct hypotheses): not compared"
    assert n["arms"] == ["b"] and n["runs"] == {"b": {"1": {"fr": {"distinct_share": 0.2, "empty_share": 0.0, "most_common": "è",
                                                                  "most_common_share": 0.9}}}}
    n = degenerate_note({"a": {0: pooled}})  # degenerate only when pooled over languages
    assert n["message"] == "degenerate output (33% distinct hypotheses): not compared" and list(n["runs"]["a"]["0"]) == ["all"]
    empty = hypothesis_diversity([{"language": "nl", "hyp": ""}] * 8 + [{"language": "nl", "hyp": "x"}] * 2)
    assert degenerate_note({"a": {0: empty}})["message"] == "degenerate output (20% distinct hypotheses, 80% empty): not compared"


# ------------------------------------------------------------------------------ tiny, end to end
@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "tiny"
    assert main(["bench", "--profile", "tiny", "--out", str(out)]) == 0
    return out


def test_tiny_writes_report_plots_and_tables(tiny_bench: Path):
    out = tiny_bench
    md = (out / "report.md").read_text()
    for title in ("Table 1", "Table 2", "Table 3", "claims", "Ablations", "8 languages", "Why"):
        assert title in md, title
    res = json.loads((out / "results.json").read_text())
    assert set(res["tables"]) >= {"table1", "table2", "table3", "ablations", "table2_8lang"}
    t1, t2 = res["tables"]["table1"], res["tables"]["table2"]
    assert {"IMP-70%", "LTH-70%", "adaptive from IMP-50%", "adaptive from LTH-70%", "dense mono, continued"} <= set(t1)
    assert {"LAP-70%", "ASR Pathways (LTH-70%)", "Dynamic from LAP-50%", "dense multi, continued"} <= set(t2)
    assert 0.6 < t2["Dynamic from LTH-70%"]["union_sparsity"][0] <= 0.7 + 1e-6
    assert t2["LAP-70%"]["mean_iou"] == [1.0]
    for row in t1.values():
        assert set(row["wer"]) == {"en", "fr", "it", "nl"}
    cost = res["tables"]["table3"]
    assert cost["Dynamic from LAP-70%"]["language_specific_pruning_rounds"] == [0]
    assert cost["ASR Pathways (LTH-70%)"]["language_specific_pruning_rounds"][0] > 0
    claims = {c["title"]: c for c in res["claims"]}
    assert any(t.startswith("adaptive (IMP-50%)") for t in claims) and any(t.startswith("Dynamic (LTH-50%)") for t in claims)
    for c in claims.values():
        assert c["ci"][0] <= c["relative"] + 1e-12 or c["relative"] != c["relative"]
    pngs = ["plots/wer_table1.png", "plots/wer_table2.png", "plots/wer_table2_8lang.png", "plots/cost.png", "plots/mask_changes.png",
            "plots/masks-pathways/sparsity_per_layer.png", "plots/masks-pathways/overlap_iou.png"]
    for p in pngs:
        f = out / p
        assert f.is_file() and f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p
        assert f"({p})" in md, p


def test_tiny_rerun_reuses_every_run(tiny_bench: Path):
    before = sorted(p.name for p in (tiny_bench / "runs" / "s0").iterdir())
    stamps = {p: p.stat().st_mtime for p in (tiny_bench / "runs" / "s0").glob("*/cost.json")}
    t0 = time.perf_counter()
    assert main(["bench", "--profile", "tiny", "--out", str(tiny_bench)]) == 0
    assert time.perf_counter() - t0 < 60
    assert sorted(p.name for p in (tiny_bench / "runs" / "s0").iterdir()) == before
    assert all(p.stat().st_mtime == m for p, m in stamps.items())
