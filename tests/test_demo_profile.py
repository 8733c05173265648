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
