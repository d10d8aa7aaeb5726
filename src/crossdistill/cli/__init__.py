"""The ``crossdistill`` command line: thin wiring over the Python API.

A user's mistake ends as one line on stderr (``crossdistill: error: <file or key>: <reason>``)
and exit code 2, never a traceback. Each module holds a group of commands; importing them
registers the commands on :data:`app` in the order ``--help`` lists them.
"""

# isort: off
from crossdistill.cli import data, training, deploy, grids  # noqa: F401  (registers commands)

# isort: on
from crossdistill.cli.app import app, main

__all__ = ["app", "main"]
