"""``python -m skelstore``: the command line."""

from skelstore.cli import main

# guarded: Dask's worker processes are spawned and import the main module again
if __name__ == "__main__":
    main()
