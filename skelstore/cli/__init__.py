"""The ``skelstore`` command line (also ``python -m skelstore``).

:data:`cli` is the click group and :func:`main` its entry point; each command
lives in a module of this package by what it does (:mod:`~skelstore.cli.inspect`,
:mod:`~skelstore.cli.check`, :mod:`~skelstore.cli.convert`,
:mod:`~skelstore.cli.imports`, :mod:`~skelstore.cli.export`) and registers itself
on :data:`cli` when imported. Exit codes and error reporting: :mod:`skelstore.cli.app`.
"""

from __future__ import annotations

# importing the command modules registers their commands on ``cli``
from skelstore.cli import check, convert, export, imports, inspect  # noqa: F401
from skelstore.cli.app import cli, main

__all__ = ["cli", "main"]
