"""Paired comparisons of training methods: ``crossdistill compare``.

- :mod:`.arms` — the arms (w/o, presets, presets with a control teacher) and their runs;
- :mod:`.stats` — paired differences over seeds, Student-t and bootstrap intervals;
- :mod:`.results` — from finished runs to differences (validation and test Dice);
- :mod:`.report`, :mod:`.forest` — ``compare.md/.csv/.json`` and the forest plot;
- :mod:`.pipeline` — the command: plan, train what is missing, report.
"""

from crossdistill.compare.pipeline import compare, read_plan, write_comparison

__all__ = ["compare", "read_plan", "write_comparison"]
