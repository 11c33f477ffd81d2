"""`python -m herald` runs the same command as the `herald` console script."""

from herald.cli import main

main()
