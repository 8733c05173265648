"""The benchmark's claims: the statistics on known inputs, the verdict rule, and the plan's arms
(twins and controls present, compared arms matched in language batches and steps at the final mask)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from asr_pathways.bench import BenchOptions, load_profile
from asr_pathways.errors import InputError
from asr_pathways.bench.stats import APPROX_MARGIN, Gate, relative_reductions, t_interval, union_matched_sparsity, verdict, wider
from asr_pathways.report import paired_bootstrap


# ------------------------------------------------------------------------------ statistics
def test_t_interval_on_known_values():
    # mean 0.02, sd 0.01, n = 3: half-width = t(0.975, 2) · 0.01 / √3 = 4.302653 · 0.0057735
    lo, hi = t_interval([0.01, 0.02, 0.03])
    assert (lo + hi) / 2 == pytest.approx(0.02)
    assert (hi - lo) / 2 == pytest.approx(4.302653 * 0.01 / math.sqrt(3), rel=1e-6)
    lo5, hi5 = t_interval([1.0, 2.0, 3.0, 4.0, 5.0], level=0.9)  # sd √2.5, t(0.95, 4) = 2.131847
    assert (hi5 - lo5) / 2 == pytest.approx(2.131847 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert t_interval([0.1]) is None and t_interval([]) is None
    assert t_interval([0.1, math.nan]) is None  # NaNs dropped: one value left
    assert t_interval([0.05, 0.05, 0.05]) == (pytest.approx(0.05), pytest.approx(0.05))


def test_relative_reductions_and_wider():
    assert relative_reductions([0.5, 0.25], [0.25, 0.5]) == [0.5, -1.0]
    assert math.isnan(relative_reductions([0.0], [0.1])[0])
    with pytest.raises(ValueError):
        relative_reductions([0.1], [0.1, 0.2])
    assert wider((-1.0, 1.0), (0.0, 0.5)) == (-1.0, 1.0) and wider(None, (0.0, 0.5)) == (0.0, 0.5) and wider(None, None) is None


def test_bootstrap_on_known_inputs():
    """Every utterance has 2 errors in 10 words under the base, 1 under the method: a 50% reduction,
    and every resample gives exactly that (the interval collapses onto it)."""
    base = {s: {"fr": {f"u{i}": (2, 10) for i in range(40)}} for s in (0, 1)}
    meth = {s: {"fr": {f"u{i}": (1, 10) for i in range(40)}} for s in (0, 1)}
    r = paired_bootstrap(base, meth, n_boot=200)
    assert r["relative"] == pytest.approx(0.5) and r["ci"] == [pytest.approx(0.5), pytest.approx(0.5)]
    assert r["per_seed"] == [pytest.approx(0.5), pytest.approx(0.5)] and t_interval(r["per_seed"]) == (pytest.approx(0.5),) * 2


def test_seed_interval_is_wider_than_the_bootstrap_when_seeds_disagree():
    """Two seeds that disagree (one +40%, one −40%) on many utterances: the t-interval over seeds is much wider
    than the joint bootstrap's, and the verdict (on the wider) does not call it."""
    n = 300
    base = {s: {"fr": {f"u{i}": (5, 10) for i in range(n)}} for s in (0, 1, 2)}
    meth = {0: {"fr": {f"u{i}": (3, 10) for i in range(n)}}, 1: {"fr": {f"u{i}": (7, 10) for i in range(n)}},
            2: {"fr": {f"u{i}": (4, 10) for i in range(n)}}}
    r = paired_bootstrap(base, meth, n_boot=300)
    t = t_interval(r["per_seed"])
    assert t is not None and (t[1] - t[0]) > (r["ci"][1] - r["ci"][0])
    used = wider(t, tuple(r["ci"]))
    assert used == t and verdict(used, t, Gate(0.2, 0.2, 0.2)).startswith("not measurable")


# ------------------------------------------------------------------------------ the verdict rule
def test_verdict_rule():
    good = Gate(dense_wer=0.20, base_wer=0.24, method_wer=0.23)
    assert verdict((0.01, 0.04), (0.01, 0.04), good) == "reproduced"
    assert verdict((-0.04, -0.01), (-0.04, -0.01), good) == "contradicted"
    assert verdict((-0.01, 0.04), (-0.01, 0.04), good) == "not measurable at this budget (interval contains 0)"
    # one seed: no seed-level interval, never "reproduced" however narrow the bootstrap
    assert verdict((0.05, 0.06), None, good) == "not measurable at this budget (one seed: no seed-level interval)"
    # the dense model above 25% WER, or an arm more than 25% relative worse than it: not measurable
    assert verdict((0.01, 0.04), (0.01, 0.04), Gate(0.26, 0.26, 0.26)) == "not measurable at this budget (dense WER 26.0% > 25%)"
    v = verdict((0.01, 0.04), (0.01, 0.04), Gate(0.20, 0.26, 0.23))
    assert v.startswith("not measurable") and "baseline +30% from dense" in v
    assert verdict((0.01, 0.04), (0.01, 0.04), Gate(0.20, 0.25, 0.25)) == "reproduced"  # exactly +25%: within
    # "about the same WER": not worse than the baseline by more than the margin
    assert verdict((-APPROX_MARGIN / 2, 0.02), (-0.01, 0.02), good, "approx") == "reproduced"
    assert verdict((-0.2, -0.1), (-0.2, -0.1), good, "approx") == "contradicted"
    assert verdict((0.01, 0.04), (0.01, 0.04), good, "control") == "control: fewer errors than the baseline"


def test_union_matched_sparsity_interpolates_and_extrapolates():
    curve = {0.25: 0.10, 0.5: 0.30, 0.7: 0.55}
    assert union_matched_sparsity(curve, 0.30) == pytest.approx(0.5)
    assert union_matched_sparsity(curve, 0.425) == pytest.approx(0.6)
    assert union_matched_sparsity(curve, 0.6625) == pytest.approx(0.7 + 0.2 * 0.1125 / 0.25)  # beyond the last level
    assert union_matched_sparsity({0.5: 0.3}, 0.3) is None


# ------------------------------------------------------------------------------ the plan's arms
def _plan(profile: str, tmp_path: Path, **changes):
    from asr_pathways.bench.plan import Planner, make_context

    pr = replace(load_profile(profile), **changes)
    planner = Planner(make_context(pr, BenchOptions(profile=profile, plan=True, out=str(tmp_path / profile))))
    return planner, planner.build()


@pytest.mark.parametrize("profile", ["tiny", "small", "gpu", "base"])
def test_compared_arms_are_matched(profile: str, tmp_path: Path):
    """Headline, twin and control comparisons: equal language batches (upstream included) and, where the claim
    says so, equal steps at the final mask, in every seed, computed from each job's own schedule."""
    from asr_pathways.bench.budget import check_matched

    planner, layout = _plan(profile, tmp_path)
    assert check_matched(planner, layout) == []


def test_step_matching_catches_unmatched_arms(tmp_path: Path):
    """The check is not vacuous: the paper's final-round adaptation (or a union-matched LTH run with one
    round more) leaves the arms unmatched, and the check names the claim and the numbers."""
    import asr_pathways.bench.arms as arms
    import asr_pathways.bench.plan as plan
    from asr_pathways.bench.budget import arm_budget, check_matched

    planner, layout = _plan("tiny", tmp_path, union_sparsity=0.8)  # the union LTH run's own prune step: 3 prunes, matched
    assert check_matched(planner, layout) == []
    orig_step = arms.union_prune_step
    try:  # the profile's step instead: levels 0, .25, .5, .75, .8, one round more
        arms.union_prune_step = lambda pl, s: pl.pr.p
        planner, layout = _plan("tiny", tmp_path, union_sparsity=0.8)
    finally:
        arms.union_prune_step = orig_step
    bad = check_matched(planner, layout)
    assert bad and all("union-matched" in b for b in bad) and "language batches" in bad[0]

    orig = plan.Planner.adapt_flags
    try:  # the paper's schedule: an adaptation in the final round too
        plan.Planner.adapt_flags = lambda self, *a, **kw: (lambda f: ([x for x in f[0] if x != "--no-final-adapt"], f[1]))(
            orig(self, *a, **kw))
        planner, layout = _plan("tiny", tmp_path)
        bad = check_matched(planner, layout)
    finally:
        plan.Planner.adapt_flags = orig
    assert any(b.startswith("s0: adaptive (IMP-50%) vs IMP-70%: steps at the final mask 2 (base) vs 1") for b in bad), bad
    k = layout["seeds"][0]
    assert arm_budget(planner, k, "imp").language_batches == arm_budget(planner, k, "adapt-imp50").language_batches


def test_plan_has_the_twins_and_the_controls(tmp_path: Path):
    planner, layout = _plan("small", tmp_path)
    pr = planner.pr
    for seed in pr.seeds:
        k = layout["seeds"][seed]
        for name in ("imp", "adapt-imp50", "adapt-imp50-own", "lth", "lap", "pathways", "pathways-lap70", "pathways-union",
                     "dyn-lth50", "dyn-lth50-own", "dyn-lap50", "dyn-lap50-own", "dense-multi", "dense-mono"):
            assert name in k, (seed, name)
        for name in k:  # every adaptive/Dynamic arm (score variants included) has its twin: the same command + --candidates own
            if name.startswith(("adapt-", "dyn-")) and not name.endswith("-own"):
                twin, main = planner.jobs[k[name + "-own"]].argv, planner.jobs[k[name]].argv
                assert twin == [*main, "--candidates", "own"], name
        secondary = seed in pr.secondary_seeds
        assert ("dyn-lth50-shared" in k) == secondary and ("dyn-lap70" in k) == secondary and ("adapt-lth50" in k) == secondary
        assert ("dyn-lap70-shared-own" in k) == secondary
        literal = seed in (pr.literal_seeds if pr.literal_seeds is not None else pr.secondary_seeds)
        assert ("dyn-lth50-literal" in k) == literal and ("dyn-lap50-literal-own" in k) == literal and "dyn-lth70-literal" not in k
        if literal:  # the literal reading: the main arm's command with --scores finetune; the plan counts its scoring batches
            lit, main = planner.jobs[k["dyn-lth50-literal"]], planner.jobs[k["dyn-lth50"]]
            assert lit.argv == [*main.argv, "--scores", "finetune"] and lit.batches == main.batches and lit.score_batches > 0
    fixed = planner.jobs[layout["seeds"][0]["pathways-lap70"]].argv
    assert fixed[fixed.index("--masks-from") + 1] == str(planner.jobs[layout["seeds"][0]["lap"]].folder)
    union = planner.jobs[layout["seeds"][0]["pathways-union"]].argv
    assert union[union.index("--init-sparsity") + 1] == f"{pr.union_sparsity:g}"
    assert len(pr.seeds) >= 5 and len(pr.ablation_seeds) >= 3 and len(pr.secondary_seeds) >= 3
    for job in planner.jobs.values():  # final models are evaluated on test, said explicitly (choices are made on dev)
        if job.kind == "prune" and "--eval-split" in job.argv:
            assert job.argv[job.argv.index("--eval-split") + 1] in ("test", "none"), job.name


def test_profile_language_loss_reaches_the_multilingual_runs_only(tmp_path: Path):
    planner, layout = _plan("small", tmp_path, language_loss="weighted")
    k = layout["seeds"][0]
    for name in ("lap", "pathways", "dyn-lth50", "dyn-lth50-own", "dense-multi"):
        argv = planner.jobs[k[name]].argv
        assert argv[argv.index("--language-loss") + 1] == "weighted", name
    for name in ("imp", "lth", "adapt-imp50"):  # one language per step: no weighting to pass
        assert "--language-loss" not in planner.jobs[k[name]].argv, name
    assert all("--language-loss" not in planner.jobs[j].argv for j in k["dense-mono"])
    planner, layout = _plan("small", tmp_path / "equal")
    assert all("--language-loss" not in j.argv for j in planner.jobs.values())  # the default keeps the runs' identities


def test_profile_phase_batch_reaches_every_pruning_run(tmp_path: Path):
    """small keeps 16-s phase batches (its time budget); without the field a prune job gets no --max-duration
    (prune's default: the dense run's batch); a batch of 0 s is refused, naming the field."""
    planner, _ = _plan("small", tmp_path)
    prunes = [j for j in planner.jobs.values() if j.kind == "prune"]
    assert prunes and all(j.argv[j.argv.index("--max-duration") + 1] == "16" for j in prunes)
    controls = {j.name: j for j in planner.jobs.values() if j.kind == "train" and j.name != "dense"}
    assert controls and all(j.argv[j.argv.index("--max-duration") + 1] == "16" for j in controls.values())
    planner, _ = _plan("small", tmp_path / "default", phase_max_duration=None)
    assert all("--max-duration" not in j.argv for j in planner.jobs.values() if j.kind == "prune")
    defaults = {j.name: j for j in planner.jobs.values() if j.kind == "train" and j.name != "dense"}
    # the control's batch then comes from the dense run at run time, and its identity differs from the 16-s one
    assert all("--max-duration" not in j.argv and j.identity != controls[n].identity for n, j in defaults.items())
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\npreset: tiny\nphase_max_duration: 0\n")
    with pytest.raises(InputError, match="phase_max_duration"):
        load_profile(bad)


def test_plan_totals_fit_the_budgets(tmp_path: Path):
    """small: ≤ 90 min given a corpus and a dense model; gpu: ≤ 6 h on one GPU, two monolingual and four
    multilingual languages, ≥ 3 seeds; tiny stays small."""
    from asr_pathways.bench.run import plan_estimate

    for profile, minutes in (("small", 90), ("gpu", 360)):
        pr = load_profile(profile)
        from asr_pathways.bench.plan import Planner, make_context

        planner = Planner(make_context(pr, BenchOptions(profile=profile, plan=True, out=str(tmp_path / profile),
                                                        corpus=None, dense=None)))
        planner.build()
        jobs = [j for j in planner.jobs.values() if j.name not in ("corpus", "dense", "corpus8", "dense8")]
        jobs = [j for j in jobs if not j.name.endswith("8lang") and j.name != "dense-eval8"]
        assert plan_estimate(jobs, pr)["total_seconds"] / 60 <= minutes, profile
    gpu = load_profile("gpu")
    assert len(gpu.mono_languages) == 2 and len(gpu.languages) == 4 and len(gpu.seeds) >= 3
    tiny, _ = _plan("tiny", tmp_path)
    assert sum(j.batches for j in tiny.jobs.values()) < 2500


def test_small_report_from_hand_made_hypotheses(tmp_path: Path):
    """The small profile's plan (two seeds, no ablations) with hand-made hypotheses for every evaluated run: the
    claims table has its columns and rows (twins, the LAP-fixed and union-matched controls), seed t-intervals, the
    verdicts of the rule; Table 1 shows the monolingual claim's languages; Table 3 the steps at the final mask."""
    import json

    from asr_pathways.bench.plan import Planner, make_context
    from asr_pathways.bench.report import build_report

    pr = load_profile("small")
    planner = Planner(make_context(pr, BenchOptions(profile="small", plan=True, out=str(tmp_path / "small"), seeds=[0, 1],
                                                    ablations=False)))
    layout = planner.build()
    n = 40
    refs = {l: [f"{l} phrase {i} avec le mot {i * 7 % 13} et encore {i}" for i in range(n)] for l in pr.languages}
    for key, job in planner.jobs.items():
        if not job.eval_utts:
            continue
        drop = 1 + (sum(map(ord, job.name)) + (job.seed or 0)) % 5  # a run-specific share of utterances loses a word
        rows = [{"id": f"{l}-{i}", "language": l, "ref": refs[l][i],
                 "hyp": " ".join(refs[l][i].split()[:-1]) if i % (drop + 4) == 0 else refs[l][i]}
                for l in job.languages for i in range(n)]
        job.folder.mkdir(parents=True, exist_ok=True)
        (job.folder / "hyps_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = build_report(planner, layout, {}, planner.ctx, 0.0, "test",
                       machine={"cpu": "test", "cores": 1, "torch": "-", "tcmalloc": False, "date": "-"})
    md = (planner.ctx.out / "report.md").read_text()
    header = next(l for l in md.splitlines() if l.startswith("| comparison |"))
    for col in ("paper", "ours: relative reduction", "seed t-interval", "bootstrap interval", "verdict"):
        assert col in header, col
    claims = {c["title"]: c for c in res["claims"]}
    for t in ("adaptive (IMP-50%) vs IMP-70%", "adaptive (IMP-50%) vs its --candidates own twin",
              "Dynamic (LTH-50%) vs ASR Pathways (LTH-70%)",
              "Dynamic (LAP-50%) vs ASR Pathways (LAP-70%, fixed) (adaptation + pruning inside multilingual training)",
              f"Dynamic (LTH-50%) vs ASR Pathways (union-matched, {planner.pr.percent(planner.pr.union_sparsity)} per language)",
              "Dynamic (LAP-50%) vs Dynamic (LTH-50%)"):
        c = claims[t]
        assert c["t_interval"] is not None and len(c["seeds"]) == 2, t
        assert c["matched"] == "yes", t
        assert c["verdict"] in ("reproduced", "contradicted") or c["verdict"].startswith("not measurable"), t
        lo, hi = c["interval"]
        assert hi - lo >= max(c["t_interval"][1] - c["t_interval"][0], c["ci"][1] - c["ci"][0]) - 1e-12  # the wider
    assert claims["adaptive (IMP-50%) vs IMP-70%"]["languages"] == ["fr"]  # the monolingual claim's languages
    t1 = next(l for l in md.splitlines() if l.startswith("| method | fr |"))
    assert "| en |" not in t1
    assert "steps at the final mask" in md and (planner.ctx.out / "plots" / "forest.png").is_file()
    assert res["tables"]["table3"]["ASR Pathways (LTH-70%)"]["final_mask_steps"] == pr.T
