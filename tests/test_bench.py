"""`asr-pathways bench`: the tiny profile end to end, the plan, the report, and the paired bootstrap."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from asr_pathways.bench import BenchOptions, load_profile, run_bench
from asr_pathways.cli import main
from asr_pathways.errors import InputError
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
def _planner(tmp_path: Path, profile: str = "tiny", eight: dict | None = None, **opts):
    from dataclasses import replace

    from asr_pathways.bench.plan import Planner, make_context

    pr = load_profile(profile)
    if eight:
        pr = replace(pr, eight=replace(pr.eight, **eight))
    opts.setdefault("out", str(tmp_path / profile))
    planner = Planner(make_context(pr, BenchOptions(profile=profile, plan=True, **opts)))
    return planner, planner.build()


def test_profiles_ship_with_the_package():
    from asr_pathways.bench.profiles import BENCH_PROFILES, PROFILE_DIR

    assert {p.stem for p in PROFILE_DIR.glob("*.yaml")} == {*BENCH_PROFILES, "demo"}
    for name in (*BENCH_PROFILES, "demo"):
        pr = load_profile(name)
        assert pr.name == name and 0 < pr.mid <= pr.target < 1 and 0 < pr.n < pr.T
    with pytest.raises(InputError, match="tiny"):
        load_profile("huge")


def test_plan_counts_the_steps_of_every_schedule(tmp_path: Path):
    """The planned batches of every pruning job equal the steps its own options give (built from its
    command line as `prune` parses it, through the method's schedule), times the batches per step."""
    import shlex

    from asr_pathways.cli import build_parser
    from asr_pathways.methods.config import PruneConfig
    from asr_pathways.methods.schedule import build_schedule, sparsity_levels
    from asr_pathways.options import from_args

    for profile in ("small", "demo"):
        planner, _ = _planner(tmp_path, profile)
        checked = 0
        for job in planner.jobs.values():
            if job.kind != "prune":
                continue
            argv = [*job.argv, "--out", "x"]
            cfg = from_args(PruneConfig, build_parser("prune").parse_args(shlex.split(shlex.join(argv))))
            if cfg.method == "pathways":
                steps = cfg.steps
            else:
                levels = sparsity_levels(cfg.start_sparsity(), cfg.target, cfg.prune_step, cfg.prune_step_mode)
                steps = build_schedule(levels, cfg.round_steps, cfg.adaptation_steps()).total_steps
            assert job.batches == steps * len(cfg.languages), (job.name, job.batches, steps)
            checked += 1
        assert checked >= (30 if profile == "small" else 4)


def test_plan_is_printed_and_runs_nothing(tmp_path: Path, capsys):
    res = run_bench(BenchOptions(profile="small", out=str(tmp_path / "small"), plan=True))
    text = capsys.readouterr().out
    assert text.strip() == res["plan"].strip() and "s2/dyn-lap70" in text and "s0/abl-dyn-candall" in text
    assert "still to run: " in text and not (tmp_path / "small").exists()


def test_fixed_folder_built_by_another_command_is_not_reused(tmp_path: Path):
    """A dense model trained for fewer steps than the profile asks must stop the run, not be reused."""
    from asr_pathways.bench.jobs import run_job
    from asr_pathways.bench.run import plan_text

    planner, _ = _planner(tmp_path)
    dense8 = planner.jobs["dense8"]
    dense8.folder.mkdir(parents=True)
    old = [a if a != str(planner.pr.eight.dense_steps) else "1" for a in dense8.argv]
    (dense8.folder / "bench_job.json").write_text(json.dumps({"argv": [*old, "--out", str(dense8.folder)], "identity": "0" * 16}))
    assert dense8.done and dense8.stale() == old
    assert "STALE" in plan_text(list(planner.jobs.values()), planner.pr, planner.ctx)
    with pytest.raises(InputError, match="--steps 1"):
        run_job(dense8)
    (dense8.folder / "bench_job.json").write_text(json.dumps({"argv": [*dense8.argv, "--out", str(dense8.folder)],
                                                              "identity": dense8.identity}))
    assert dense8.stale() is None and run_job(dense8)["argv"][0] == "train"  # the same command: reused
    (dense8.folder / "bench_job.json").write_text(json.dumps({"argv": [*dense8.argv, "--out", str(dense8.folder)]}))
    assert dense8.stale() is None  # recorded before identities: the same command is the same job


def test_results_of_a_rebuilt_input_get_new_folders(tmp_path: Path):
    """Runs that read a dense model the benchmark trains are keyed by the identity of the job that trains it."""
    a, _ = _planner(tmp_path)
    b, _ = _planner(tmp_path, eight={"dense_steps": a.pr.eight.dense_steps + 1})
    assert a.jobs["dense8"].folder == b.jobs["dense8"].folder  # the fixed folder
    for key in ("dense-eval8", "s0/lth-8lang", "s0/dyn-lap50-8lang"):
        assert a.jobs[key].folder != b.jobs[key].folder, key
    assert a.jobs["s0/imp"].folder == b.jobs["s0/imp"].folder  # the 4-language runs do not read it
    assert a.jobs["s0/imp"].folder.name.endswith(a.jobs["s0/imp"].identity[:8])


# ------------------------------------------------------------------------------ degenerate output
def _write_hyps(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hyps_test.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def test_report_flags_degenerate_arm_and_does_not_compare_it(tmp_path: Path, capsys):
    """Demo profile, hand-made hypotheses: IMP emits 'è' for every fr utterance (degenerate), the other runs
    transcribe. The IMP comparison is not made (report, results.json, demo console); the multilingual one is."""
    from asr_pathways.demo import intro_line, summary_lines

    from asr_pathways.bench.report import build_report

    pr = load_profile("demo")
    planner, layout = _planner(tmp_path, "demo", ablations=False)  # the jobs only: the hypotheses files are written by hand
    ctx = planner.ctx
    langs, n = pr.languages, 20
    mid, tgt = pr.percent(pr.mid), pr.percent(pr.target)  # the demo profile's middle level and target
    refs = {l: [f"{l} phrase numéro {i} avec le mot {i * 7 % 13}" for i in range(n)] for l in langs}

    def rows(hyp) -> list[dict]:
        return [{"id": f"{l}-{i}", "language": l, "ref": refs[l][i], "hyp": hyp(l, i)} for l in langs for i in range(n)]

    good = lambda drop: (lambda l, i: refs[l][i] if i % drop else " ".join(refs[l][i].split()[:-1]))  # noqa: E731
    _write_hyps(planner.jobs["dense-eval"].folder, rows(good(3)))
    _write_hyps(planner.jobs["s0/imp"].folder, [r for r in rows(lambda l, i: "è") if r["language"] == "fr"])
    _write_hyps(planner.jobs[f"s0/{pr.method_key('adapt', 'imp', pr.mid)}"].folder, [r for r in rows(good(4)) if r["language"] == "fr"])
    _write_hyps(planner.jobs["s0/pathways"].folder, rows(good(2)))
    _write_hyps(planner.jobs[f"s0/{pr.method_key('dyn', 'lth', pr.target)}"].folder, rows(good(5)))
    res = build_report(planner, layout, {}, ctx, 0.0, "test", machine={"cpu": "test", "cores": 1, "torch": "-", "tcmalloc": False,
                                                                       "date": "-"})
    assert res["report"].ids()[:4] == ["header", "table1", "table2", "claims"]
    assert res["report"].text("table1").startswith("## Table 1") and "![" not in res["report"].text("table1", images=False)

    md = (ctx.out / "report.md").read_text()
    claims = {c["title"]: c for c in res["claims"]}
    imp = next(c for t, c in claims.items() if t.startswith(f"adaptive (IMP-{mid})"))
    dyn = next(c for t, c in claims.items() if t.startswith(f"Dynamic (LTH-{tgt})"))
    assert imp["degenerate"] and imp["base"] == "imp" and imp["degenerate_note"]["arms"] == ["imp"]
    assert imp["distinct_share_base"] == [pytest.approx(1 / n)] and imp["distinct_share_method"] == [1.0]
    assert imp["relative"] == imp["relative"] and "ci" in imp  # the raw numbers are kept in results.json
    assert not dyn["degenerate"] and dyn["relative"] > 0
    line = next(l for l in md.splitlines() if l.startswith(f"| adaptive (IMP-{mid})"))
    assert "degenerate output (5% distinct hypotheses): not compared" in line and "[" not in line
    assert f"not compared (IMP-{tgt}: degenerate output)" in line
    line = next(l for l in md.splitlines() if l.startswith(f"| Dynamic (LTH-{tgt}) vs ASR Pathways"))
    assert "degenerate" not in line and f"| {100 * dyn['relative']:+.1f}% | — (one seed) | [" in line
    assert "| not measurable at this budget (one seed: no seed-level interval" in line  # one seed: never "reproduced"
    assert dyn["t_interval"] is None and dyn["verdict"].startswith("not measurable")
    t1, t2 = res["tables"]["table1"], res["tables"]["table2"]
    assert t1[f"IMP-{tgt}"]["degenerate"] and t1[f"IMP-{tgt}"]["distinct_share"] == [pytest.approx(0.05)]
    assert t1[f"IMP-{tgt}"]["most_common_hypothesis"] == [["è", 1.0]]
    assert not t1["dense θ_ML"]["degenerate"] and t1["dense θ_ML"]["distinct_share"] == [1.0]
    assert not any(r["degenerate"] for r in t2.values())
    assert f"| IMP-{tgt} | 100.00 | **100.00** | 5 ⚠ degenerate |" in md
    assert "distinct hyps %" in md and "1 comparison(s) not made" in res["why"]
    assert json.loads((ctx.out / "results.json").read_text())["claims"][0]["degenerate"] is True

    summary = "\n".join(summary_lines(res))
    assert summary.startswith("dense θ_ML: average WER ")
    assert f"IMP-{tgt} (fr): WER 100.0%, 5% distinct hypotheses — DEGENERATE output: 100% of hypotheses are 'è'" in summary
    assert f"ASR Pathways (LTH-{tgt}) (en, fr, it, nl): WER" in summary and summary.count("DEGENERATE") == 1
    intro = intro_line(pr)
    assert intro.startswith("demo: ") and "\n" not in intro and "does not measure the paper's claims" in intro
    assert f"{pr.dense_steps} steps" in intro and f"{pr.eval_utts} test utterances" in intro


def test_degenerate_note_names_the_worst_share():
    from asr_pathways.bench.results import degenerate_note
    from asr_pathways.metrics import hypothesis_diversity

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
    for title in ("Table 1", "Table 2", "Table 3", "claims", "WER against deployed size", "Ablations", "8 languages", "Why"):
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
    for c in claims.values():  # a comparison is made (finite, inside its CI) or flagged as degenerate with its reason
        if c["degenerate"]:
            assert c["degenerate_note"]["message"].endswith("not compared")
        else:
            assert math.isfinite(c["relative"]) and c["ci"][0] - 1e-12 <= c["relative"] <= c["ci"][1] + 1e-12, c["title"]
    pngs = ["plots/wer_table1.png", "plots/wer_table2.png", "plots/wer_table2_8lang.png", "plots/cost.png", "plots/mask_changes.png",
            "plots/forest.png", "plots/wer_vs_union_size.png", "plots/wer_vs_sparsity.png",
            "plots/masks-pathways/sparsity_per_layer.png", "plots/masks-pathways/overlap_iou.png"]
    for p in pngs:
        f = out / p
        assert f.is_file() and f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", p
        assert f"({p})" in md, p


def test_tiny_planned_batches_are_the_runs_batches(tiny_bench: Path):
    """The plan's arithmetic counts what the runs did: planned batches = cost.json's language batches."""
    jobs = json.loads((tiny_bench / "jobs.json").read_text())
    planner, _ = _planner(tiny_bench.parent, out=str(tiny_bench))
    checked = 0
    for key, job in planner.jobs.items():
        assert jobs[key]["identity"] == job.identity and jobs[key]["folder"] == str(job.folder)
        if job.kind == "prune":
            cost = json.loads((job.folder / "cost.json").read_text())
            assert cost["own"]["language_batches"] == job.batches, key
            checked += 1
    assert checked > 20


def test_tiny_rerun_reuses_every_run(tiny_bench: Path, monkeypatch: pytest.MonkeyPatch):
    import asr_pathways.bench.jobs as jobs

    before = sorted(p.name for p in (tiny_bench / "runs" / "s0").iterdir())
    stamps = {p: p.stat().st_mtime for p in (tiny_bench / "runs" / "s0").glob("*/cost.json")}

    def refuse(argv):
        raise AssertionError(f"a finished job ran again: {argv}")

    monkeypatch.setattr(jobs, "invoke", refuse)
    assert main(["bench", "--profile", "tiny", "--out", str(tiny_bench)]) == 0
    assert sorted(p.name for p in (tiny_bench / "runs" / "s0").iterdir()) == before
    assert all(p.stat().st_mtime == m for p, m in stamps.items())
