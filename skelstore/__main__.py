"""``python -m skelstore``: the command line."""

from skelstore.cli import main

main()
