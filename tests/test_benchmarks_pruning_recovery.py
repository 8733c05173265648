"""benchmarks/pruning_recovery.py: each record's section heading states its settings."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.pruning_recovery import section_heading  # noqa: E402

BASE = {"split": "dev", "T": 240, "mono_f": 4.0, "multi_f": 4.0, "parts": "mono,multi", "seed": 0, "variant": {}}


def test_heading_names_split_round_peak_parts_seed_and_options():
    h = section_heading(**BASE | {"multi_f": 1.0, "parts": "multi", "variant": {"block": "1x1", "multi-max-duration": "64"}})
    assert h == ("## Pruned pathways against the dense model (`benchmarks/pruning_recovery.py`, dev: T = 240, "
                 "peak × 4 (multilingual × 1), multi, --block 1x1, --multi-max-duration 64)")
    assert section_heading(**BASE | {"split": "test", "T": 30}).endswith("(`benchmarks/pruning_recovery.py`, test: T = 30, peak × 4)")


def test_every_setting_in_a_records_name_changes_its_heading():
    variants = [BASE | {"seed": 1}, BASE | {"parts": "mono"}, BASE | {"prune_step": 0.1}, BASE | {"target": 0.5},
                BASE | {"language": "it"}, BASE | {"T": 120}, BASE | {"mono_f": 1.0, "multi_f": 1.0}, BASE | {"multi_f": 2.0},
                BASE | {"variant": {"block": "1x1"}}, BASE | {"split": "test"}]
    headings = [section_heading(**v) for v in [BASE, *variants]]
    assert len(set(headings)) == len(headings)
    assert "--prune-step 0.1" in headings[3] and "--target 0.5" in headings[4] and "--language it" in headings[5]
