"""benchmarks/pruning_recovery.py: each record's section heading states its settings."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.pruning_recovery import section_heading  # noqa: E402


def test_heading_names_split_round_peak_parts_seed_and_options():
    h = section_heading("dev", 240, 4.0, 1.0, "multi", 0, {"block": "1x1", "multi-max-duration": "64"})
    assert h == ("## Pruned pathways against the dense model (`benchmarks/pruning_recovery.py`, dev: T = 240, "
                 "peak × 4 (multilingual × 1), multi, --block 1x1, --multi-max-duration 64)")
    both = section_heading("test", 30, 4.0, 4.0, "mono,multi", 0, {})
    assert both.endswith("(`benchmarks/pruning_recovery.py`, test: T = 30, peak × 4)")
    assert section_heading("dev", 240, 4.0, 4.0, "mono", 1, {}) != section_heading("dev", 240, 4.0, 4.0, "mono", 0, {})
