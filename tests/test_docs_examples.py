"""The examples of README.md and docs/*.md run (issue 14: a README example failed
on the README's own file).

Every ```` ```python ```` block of a page runs, in the page's order, in one
namespace per page, in a fresh temporary working directory (so a block may use
what an earlier block of the same page wrote, as a reader following the page
would). A block that cannot run here (it needs a bucket, credentials or input the
page does not make) is marked in the markdown, on the line before it, with
``<!-- no-run: REASON -->``; there are few.

Every ``$ skelstore ...`` line of a ```` ```console ```` block is parsed by the
command line's own parser: the commands and options it shows exist and take
the values shown.
"""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import click
import pytest

from skelstore.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S
)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>.+?)\s*-->\s*$")

#: Blocks marked no-run, at most: keep examples runnable.
MAX_NO_RUN = 6


def blocks(page: Path, language: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, no-run reason)`` of every block of ``language`` in ``page``."""
    return blocks_of(page.read_text(encoding="utf-8"), language)


def blocks_of(text: str, language: str) -> list[tuple[int, str, str | None]]:
    """``(line, code, no-run reason)`` of every block of ``language`` in ``text``."""
    out = []
    for m in FENCE.finditer(text):
        info = m.group("info").strip().split()
        if not info or info[0] != language:
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NO_RUN.search(before)
        indent = len(m.group("indent"))
        body = "\n".join(ln[indent:] for ln in m.group("body").splitlines())
        out.append((line, body, reason.group("reason") if reason else None))
    return out


def _id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_every_page_is_found_and_few_blocks_are_skipped() -> None:
    names = {_id(p) for p in PAGES}
    assert {"README.md", "docs/usage.md", "docs/index.md"} <= names
    runnable = [b for p in PAGES for b in blocks(p, "python") if b[2] is None]
    skipped = [b for p in PAGES for b in blocks(p, "python") if b[2] is not None]
    assert len(runnable) >= 15 and len(skipped) <= MAX_NO_RUN


# netCDF4 (xarray's default netCDF engine, which docs/export.md's example uses) warns
# on import that it was built against another numpy; harmless
@pytest.mark.filterwarnings("ignore:numpy.ndarray size changed:RuntimeWarning")
@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SKELSTORE_UNTRUSTED", raising=False)
    namespace: dict[str, object] = {"__name__": f"docs_example_{page.stem}"}
    ran = 0
    for line, code, reason in blocks(page, "python"):
        if reason is not None:
            compile(code, f"{page}:{line}", "exec")  # still valid Python
            continue
        # padded so that tracebacks point at the markdown's own lines
        exec(compile("\n" * line + code, str(page), "exec"), namespace)
        ran += 1
    capsys.readouterr()
    assert ran == sum(1 for b in blocks(page, "python") if b[2] is None)


def _console_commands(page: Path) -> list[tuple[int, list[str]]]:
    out = []
    for line, body, _ in blocks(page, "console"):
        for i, text in enumerate(body.splitlines()):
            if text.startswith("$ skelstore "):
                command = text[2:].split(" | ")[0].split("  #")[0]
                out.append((line + 1 + i, shlex.split(command)[1:]))
    return out


@pytest.mark.parametrize("page", [p for p in PAGES if _console_commands(p)], ids=_id)
def test_console_examples_parse(page: Path) -> None:
    for line, args in _console_commands(page):
        where = f"{_id(page)}:{line}: skelstore {' '.join(args)}"
        try:
            ctx = cli.make_context("skelstore", list(args))
            with warnings.catch_warnings():  # Click 8.2 deprecates protected_args
                warnings.simplefilter("ignore", DeprecationWarning)
                unparsed = [*ctx.protected_args, *ctx.args]
            name, command, rest = cli.resolve_command(ctx, unparsed)
            assert command is not None, where
            command.make_context(name, rest, parent=ctx)
        except click.UsageError as exc:
            pytest.fail(f"{where}: {exc.format_message()}")


def test_markers_are_seen() -> None:
    text = "a\n<!-- no-run: needs a bucket -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n"
    assert blocks_of(text, "python") == [(3, "x = 1", "needs a bucket"), (7, "y = 2", None)]


def test_layout_page_states_zarr_chunking_as_it_is(tmp_path: Path) -> None:
    # issue 14: docs/layout.md said Zarr chunks equal HDF5's; they do not
    import skelstore
    from skelstore.summary import iter_tracks

    golden = ROOT / "tests" / "data" / "golden" / "unseg_body25.h5"
    store = tmp_path / "u.zarr"
    skelstore.convert(golden, store, layout="skelshop")
    with skelstore.open(golden) as h5, skelstore.open(store) as z:
        (_, h5_track), *_ = iter_tracks(h5)
        (_, z_track), *_ = iter_tracks(z)
        assert h5_track["data"].chunks == (1170, 3) and h5_track["indptr"].chunks == (1024,)
        assert z_track["data"].chunks == (87750, 3)
        assert z_track["indices"].chunks == (525330,)
        assert z_track["indptr"].chunks == (16384,)
    page = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    assert "`data` chunks of 87750 entries" in page and "525330" in page and "16384" in page
    zarr_bytes = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    ratio = round(zarr_bytes / golden.stat().st_size)
    assert f"{ratio}x the HDF5 bytes for the 300-frame golden file" in page
