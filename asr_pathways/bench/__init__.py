"""The paper benchmark: `asr-pathways bench --profile {tiny,small,base}` (and `asr-pathways demo`).

It reproduces (and extends) the paper's tables from runs made by the project's own commands.
Part of the package, so that a plain ``pip install`` runs it:

- :mod:`.profiles` the sizes of a run (``profiles/*.yaml``, shipped as package data);
- :mod:`.options` :class:`BenchOptions`, what the command line, ``demo`` and the tests build;
- :mod:`.plan` every job of a profile; :mod:`.jobs` one job, its identity, running it;
- :mod:`.run` :func:`run_bench`: plan, run, report;
- :mod:`.results` reading the runs and the statistics; :mod:`.tables`, :mod:`.analysis` and
  :mod:`.report` the report's sections (by id), ``report.md``, ``results.json`` and the plots.
"""

from __future__ import annotations

from .options import BenchOptions
from .profiles import Profile, load_profile
from .run import run_bench

__all__ = ["BenchOptions", "Profile", "load_profile", "run_bench"]
