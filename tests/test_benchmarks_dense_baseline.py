"""benchmarks/dense_baseline.py: probes with other steps or seeds keep their own records; the section names them."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.dense_baseline import record_name, render  # noqa: E402


def _record(**extra):
    lang = {"utterances": 10, "wer": 0.25, "cer": 0.1}
    return {
        "command": "python benchmarks/dense_baseline.py", "machine": json.loads((ROOT / "benchmarks/results/dense_baseline.json").read_text())["machine"], "seed": 0,
        "preset": "small", "steps": 7000, "mono_steps": 0, "monolingual": {},
        "multilingual": {"train_seconds": 60.0, "wall_s": 90.0, "audio_seconds_per_second": 200.0, "train_audio_hours": 1.0,
                         "peak_rss_mb": 100.0, "final_loss": 1.0, "languages": {"fr": lang}, "average": lang},
    } | extra


def test_only_the_small_presets_own_run_writes_the_acceptance_record():
    name = lambda **kw: record_name(**({"seed": 0, "steps": 7000, "preset_steps": 7000} | kw))  # noqa: E731
    assert name() == "dense_baseline"
    assert name(corpus="other/mls4") == "dense_baseline"  # the same corpus name elsewhere
    assert name(steps=2800) == "dense_baseline_steps2800"
    assert name(seed=3) == "dense_baseline_seed3"
    assert name(steps=2800, seed=3) == "dense_baseline_steps2800_seed3"
    assert name(preset="tiny", steps=300, preset_steps=300) == "dense_baseline_tiny"
    assert name(corpus="data/demo") == "dense_baseline_demo"
    assert name(eval_max_utts=20) == "dense_baseline_utts20"
    others = [name(steps=2800), name(seed=3), name(preset="tiny"), name(corpus="data/demo"), name(eval_max_utts=20)]
    assert len(set(others)) == len(others) and "dense_baseline" not in others


def test_section_says_steps_other_than_the_presets_and_names_its_record():
    card = {"languages": {"fr": {"train": {"hours": 4.0}}}}
    text = render(_record(steps=2800, preset_steps=7000, record="dense_baseline_steps2800"), card)
    assert text.splitlines()[0] == "## Dense multilingual baseline (RNN-T, `small` preset), 2,800 steps (not the preset's 7,000)"
    assert text.rstrip().endswith("benchmarks/results/dense_baseline_steps2800.json.")
    # records written before the record's name was stored render as before
    old = render(_record(), card)
    assert old.splitlines()[0] == "## Dense multilingual baseline (RNN-T, `small` preset)"
    assert old.rstrip().endswith("benchmarks/results/dense_baseline.json.")
    seed1 = json.loads((ROOT / "benchmarks/results/dense_baseline_seed1.json").read_text())
    assert render(seed1, card).rstrip().endswith("benchmarks/results/dense_baseline_seed1.json.")
