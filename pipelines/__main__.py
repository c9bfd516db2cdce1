"""``python -m pipelines``: the ``ecowatch`` command line."""

from pipelines.cli import main

main()
