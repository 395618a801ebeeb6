"""Storage engines, one module each; see skelstore.engines for the registry."""
