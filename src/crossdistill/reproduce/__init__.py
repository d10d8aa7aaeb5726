"""Reproducing the paper: its tables as resumable grids of runs, beside its numbers.

- :mod:`.grid` — the runs of Tables 2–4 with stable ids and their teachers;
- :mod:`.presets`, :mod:`.data` — ``paper`` and ``demo`` scales, and the cache they use;
- :mod:`.runs` — one run: configuration, finished / interrupted / new, train once;
- :mod:`.runner`, :mod:`.launchers` — dependency-ordered execution, locally or in parallel;
  :mod:`.launcher_ray` — on a Ray cluster (optional: ``crossdistill[ray]``);
- :mod:`.paper_numbers`, :mod:`.tables`, :mod:`.table1` — the paper's numbers
  (:mod:`crossdistill.paper`) by site, and their rendering;
- :mod:`.figures`, :mod:`.report` — figures, and rebuilding everything from stored results;
- :mod:`.pipeline` — ``crossdistill reproduce``.
"""

from crossdistill.reproduce.pipeline import reproduce
from crossdistill.reproduce.report import report

__all__ = ["report", "reproduce"]
