"""The outcome of a corpus run: per-file results, the summary table, and the
per-engine totals of ``skelstore info --summary`` (as text, CSV or JSON)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from skelstore.corpus.tasks import FileResult
from skelstore.errors import EngineError
from skelstore.summary import DumpInfo

__all__ = ["CorpusReport", "CorpusSummary", "Totals", "format_table", "human_bytes", "summarize"]

#: Row order of the status table, per command.
_STATUSES = {
    "convert": ("converted", "skipped", "failed"),
    "validate": ("ok", "invalid", "failed"),
    "info": ("ok", "failed"),
}


def human_bytes(n: int | None) -> str:
    """``1.25 MB``-style sizes (powers of 1000); ``?`` for unknown."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        rest = [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        parts = [r[0].ljust(widths[0]), *rest]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _sum(values: list[int | None]) -> int:
    return sum(v for v in values if v is not None)


@dataclass
class CorpusReport:
    """Every file's :class:`~skelstore.corpus.tasks.FileResult` (in the order the
    sources were listed), and how the run went.

    Attributes:
        command: ``convert``, ``validate`` or ``info``.
        results: one per file.
        executor: where it ran (``this process``, ``local Dask cluster (...)``).
        seconds: wall time of the whole run (cluster start-up included).
    """

    command: str
    results: list[FileResult]
    executor: str = "this process"
    seconds: float = 0.0

    @property
    def failed(self) -> list[FileResult]:
        """The files whose task raised an error."""
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        """True if no file failed and none was found invalid."""
        return all(r.status not in ("failed", "invalid") for r in self.results)

    def counts(self) -> dict[str, int]:
        """Files per status, every status of the command listed (zeros too)."""
        out = dict.fromkeys(_STATUSES.get(self.command, ()), 0)
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def frames_done(self) -> int:
        """Frames of the files this run actually processed (not skipped, not failed)."""
        return _sum([r.frames for r in self.results if r.status in ("ok", "converted", "invalid")])

    def comparable(self) -> list[dict[str, Any]]:
        """Every result without what varies from run to run (for comparing runs)."""
        return [r.comparable() for r in self.results]

    def table(self) -> str:
        """The summary table: files (and sizes, frames, problems) per status."""
        rows: list[list[Any]] = []
        by = self.counts()
        if self.command == "convert":
            header = ["status", "files", "frames", "input", "output"]
            for status in by:
                rs = [r for r in self.results if r.status == status]
                convs = [r.conversion for r in rs if r.conversion is not None]
                rows.append([
                    status, len(rs),
                    _sum([c.frames for c in convs]) if status != "failed" else "",
                    human_bytes(_sum([c.src_bytes for c in convs])) if status != "failed" else "",
                    human_bytes(_sum([c.dst_bytes for c in convs])) if status != "failed" else "",
                ])  # fmt: skip
        elif self.command == "validate":
            header = ["status", "files", "shots", "tracks", "problems"]
            for status in by:
                rs = [r for r in self.results if r.status == status]
                vals = [r.validation for r in rs if r.validation is not None]
                rows.append([
                    status, len(rs),
                    sum(v.shots for v in vals), sum(v.tracks for v in vals),
                    sum(len(v.problems) for v in vals),
                ])  # fmt: skip
        else:
            header = ["status", "files", "frames"]
            for status in by:
                rs = [r for r in self.results if r.status == status]
                rows.append([status, len(rs), _sum([r.frames for r in rs])])
        rows.append(["total", len(self.results), *[""] * (len(header) - 2)])
        return format_table(header, rows)

    def footer(self) -> str:
        """One line: how many files, how long, where, and the throughput."""
        n = len(self.results)
        rate = n / self.seconds if self.seconds > 0 else 0.0
        frames = self.frames_done
        fps = f", {frames / self.seconds:,.0f} frames/s" if frames and self.seconds > 0 else ""
        bad = len(self.failed)
        tail = f"; {bad} failed" if bad else ""
        return (
            f"{n} file(s) in {self.seconds:.1f} s on {self.executor}: {rate:.1f} files/s{fps}{tail}"
        )


# ---------------------------------------------------------------- info --summary


@dataclass
class Totals:
    """Sums over the dumps of one engine (or all of them).

    ``frames`` and ``bytes`` count the dumps that record them; ``frames_unknown``
    and ``bytes_unknown`` count those that do not.
    """

    files: int = 0
    frames: int = 0
    shots: int = 0
    pose_tracks: int = 0
    poses: int = 0
    keypoints: int = 0
    bytes: int = 0
    frames_unknown: int = 0
    bytes_unknown: int = 0

    def add(self, info: DumpInfo) -> None:
        """Count one dump."""
        self.files += 1
        self.shots += info.shots
        self.pose_tracks += info.pose_tracks
        self.poses += info.poses_stored
        self.keypoints += info.keypoints_stored
        if info.num_frames is None:
            self.frames_unknown += 1
        else:
            self.frames += info.num_frames
        if info.bytes_stored is None:
            self.bytes_unknown += 1
        else:
            self.bytes += info.bytes_stored


#: Columns of the CSV (after ``engine``).
CSV_COLUMNS = [f.name for f in fields(Totals)]


@dataclass
class CorpusSummary:
    """Per-engine totals of an ``info`` run (``skelstore info --summary``).

    Attributes:
        engines: totals per engine name, sorted by name.
        total: totals over every dump read.
        failed: ``{"src", "error_type", "error"}`` of every file that could not be read.
        files: what each dump read holds, in the order listed.
    """

    engines: dict[str, Totals]
    total: Totals
    failed: list[dict[str, str | None]] = field(default_factory=list)
    files: list[DumpInfo] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain data: ``engines``, ``total``, ``failed``, ``files``."""
        return {
            "engines": {k: asdict(v) for k, v in self.engines.items()},
            "total": asdict(self.total),
            "failed": list(self.failed),
            "files": [f.as_dict() for f in self.files],
        }

    def to_json(self) -> str:
        """:meth:`as_dict` as indented JSON."""
        return json.dumps(self.as_dict(), indent=2)

    def to_csv(self) -> str:
        """One row per engine and a ``total`` row; columns ``engine`` and
        :data:`CSV_COLUMNS`."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["engine", *CSV_COLUMNS])
        for name, t in [*self.engines.items(), ("total", self.total)]:
            writer.writerow([name, *(getattr(t, c) for c in CSV_COLUMNS)])
        return buf.getvalue()

    def table(self) -> str:
        """The totals as a text table."""
        header = ["engine", "files", "frames", "shots", "pose tracks", "poses", "keypoints", "size"]
        rows = [
            [name, t.files, t.frames, t.shots, t.pose_tracks, t.poses, t.keypoints,
             human_bytes(t.bytes)]
            for name, t in [*self.engines.items(), ("total", self.total)]
        ]  # fmt: skip
        return format_table(header, rows)

    def write(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        """Write the summary to ``url`` (a path or fsspec URL) as CSV or JSON,
        chosen by its suffix (``.csv``, ``.json``).

        Raises:
            EngineError: the suffix is neither.
        """
        import fsspec

        lower = url.lower()
        if lower.endswith(".csv"):
            text = self.to_csv()
        elif lower.endswith(".json"):
            text = self.to_json() + "\n"
        else:
            raise EngineError(f"{url}: the summary is written as .csv or .json, not as this")
        with fsspec.open(url, "w", encoding="utf-8", **(storage_options or {})) as f:
            f.write(text)


def summarize(report: CorpusReport) -> CorpusSummary:
    """The per-engine totals of an ``info`` run."""
    engines: dict[str, Totals] = {}
    total = Totals()
    files = []
    for r in report.results:
        if r.info is None:
            continue
        files.append(r.info)
        engines.setdefault(r.info.engine, Totals()).add(r.info)
        total.add(r.info)
    failed = [{"src": r.src, "error_type": r.error_type, "error": r.error} for r in report.failed]
    return CorpusSummary(dict(sorted(engines.items())), total, failed, files)
