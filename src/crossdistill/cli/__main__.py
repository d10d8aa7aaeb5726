"""``python -m crossdistill.cli``: the command line."""

from crossdistill.cli import main

main()
