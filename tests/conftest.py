"""Fixtures shared by the whole suite.

``target`` is parametrised over every storage kind a dump can live on; it yields a
factory ``make(name=None) -> (url, open_kwargs)`` that gives a fresh target on each
call, so a test writes with ``skelstore.open(url, "w", **open_kwargs)`` and reads
back with ``skelstore.open(url, "r")``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from dumputil import GOLDEN_DIR, STORAGE_KINDS, clear_memory_fs, make_target

TargetFactory = Callable[..., tuple[str, dict[str, Any]]]


@pytest.fixture
def golden_dir() -> Path:
    """The directory of the golden skelshop dumps and their expected decodings."""
    return GOLDEN_DIR


@pytest.fixture(autouse=True)
def _clean_memory_fs() -> Iterator[None]:
    """Every test starts and ends with an empty ``memory://`` filesystem."""
    clear_memory_fs()
    yield
    clear_memory_fs()


@pytest.fixture(params=STORAGE_KINDS)
def storage_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def target(storage_kind: str, tmp_path: Path) -> Iterator[TargetFactory]:
    """A factory of fresh ``(url, open_kwargs)`` pairs of one storage kind."""

    def make(name: str | None = None) -> tuple[str, dict[str, Any]]:
        return make_target(storage_kind, tmp_path, name)

    make.kind = storage_kind  # type: ignore[attr-defined]
    yield make
