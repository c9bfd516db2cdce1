"""``python -m ecowatch``: the same command line as the ``ecowatch`` console script."""

from pipelines.cli import main

main()
