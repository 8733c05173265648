"""The demo profile's corpus: its lexicon size reaches `corpus synth` and the console's first line."""

from pathlib import Path

from asr_pathways.bench import BenchOptions, load_profile


def test_demo_corpus_job_uses_the_profiles_lexicon(tmp_path: Path):
    from asr_pathways.bench.plan import Planner, make_context
    from asr_pathways.demo import intro_line

    pr = load_profile("demo")
    assert pr.lexicon_size and pr.lexicon_size >= 1000  # the corpus rules: at least 1,000 content words per language
    planner = Planner(make_context(pr, BenchOptions(profile="demo", plan=True, out=str(tmp_path / "demo"))))
    planner.build()
    argv = planner.jobs["corpus"].argv
    assert argv[argv.index("--lexicon-size") + 1] == str(pr.lexicon_size)
    assert f"{pr.lexicon_size:,}-word lexicon" in intro_line(pr)
    # the report header names the monolingual claim's languages: the demo's monolingual rows run on one language
    assert planner.mono_languages == (pr.ablation_language,)
    assert {j.argv[j.argv.index("--languages") + 1] for j in planner.jobs.values() if j.name == "imp" or j.name.startswith("adapt")} == {pr.ablation_language}
    small = load_profile("small")  # a measuring profile keeps the synth default
    assert small.lexicon_size is None


def test_decoding_reaches_every_evaluation_and_greedy_profiles_keep_their_commands(tmp_path: Path):
    """The demo decodes every final model with its profile's beam search; a greedy profile's commands (and so its
    jobs' identities) carry no decoding flag, exactly as before the option existed."""
    from dataclasses import replace

    from asr_pathways.bench.plan import Planner, make_context
    from asr_pathways.demo import intro_line

    def jobs_of(pr, name: str) -> dict:
        planner = Planner(make_context(pr, BenchOptions(profile=name, plan=True, out=str(tmp_path / name))))
        planner.build()
        return planner.jobs

    demo = load_profile("demo")
    assert (demo.decoding, demo.beam) == ("beam", 4)
    evaluating = [j for j in jobs_of(demo, "demo").values() if j.kind in ("prune", "evaluate") and "none" not in j.argv]
    assert evaluating and all(j.argv[j.argv.index("--decoding") + 1] == "beam" and j.argv[j.argv.index("--beam") + 1] == "4"
                              for j in evaluating)
    assert all("--plain-names" in j.argv for j in evaluating if j.kind == "evaluate")  # the bench reads hyps_test.jsonl
    assert "(beam search, beam 4)" in intro_line(demo)
    greedy = jobs_of(replace(demo, decoding="greedy"), "demo-greedy")
    assert not any("--decoding" in j.argv or "--plain-names" in j.argv for j in greedy.values())
    assert "beam search" not in intro_line(replace(demo, decoding="greedy"))


def test_profile_rejects_unknown_decoding_and_bad_beam(tmp_path: Path):
    import pytest

    from asr_pathways.errors import InputError

    text = (Path(__file__).resolve().parent.parent / "asr_pathways/bench/profiles/demo.yaml").read_text()
    for bad, field in (("decoding: viterbi", "decoding"), ("beam: 0", "beam")):
        p = tmp_path / f"{field}.yaml"
        p.write_text(text.replace("decoding: beam", bad) if field == "decoding" else text.replace("beam: 4", bad))
        with pytest.raises(InputError, match=field):
            load_profile(p)
