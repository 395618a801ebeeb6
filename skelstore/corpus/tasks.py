"""One file's work in a corpus run: the task functions and what they return.

Each task takes a :class:`Job` and returns a :class:`FileResult`; it never
raises for a problem of its file (any ``Exception`` is caught and returned as a
``failed`` result naming the error's type), so one bad file cannot stop the
others. The functions are plain module-level functions: Dask ships them to
workers by reference, so workers need skelstore installed.
"""

from __future__ import annotations

import time
import traceback as _traceback
from dataclasses import asdict, dataclass
from typing import Any, Literal

from skelstore.conversion import ConvertReport
from skelstore.summary import DumpInfo
from skelstore.validate import ValidationReport

__all__ = ["FileResult", "Job", "Status", "convert_file", "info_file", "validate_file"]

#: ``ok`` (validate, info), ``converted``, ``skipped`` (convert: a verified copy was
#: already there), ``invalid`` (validate found problems), ``failed`` (an error).
Status = Literal["ok", "converted", "skipped", "invalid", "failed"]

#: Keys left out of :meth:`FileResult.comparable`: they vary from run to run.
_VOLATILE = frozenset({"seconds", "traceback"})


@dataclass(frozen=True)
class Job:
    """One file of a run: its source and, for conversions, its destination."""

    src: str
    dst: str | None = None


@dataclass
class FileResult:
    """What one file's task did. Plain data: picklable, and the same whether the
    task ran in this process or on a Dask worker (only ``seconds`` and
    ``traceback`` vary; :meth:`comparable` leaves them out).

    Attributes:
        src: the source file, as listed.
        status: see :data:`Status`.
        dst: the destination (conversions).
        error_type: the class name of the error (``FormatError``, ``NotFoundError``,
            ...) when ``status`` is ``failed``.
        error: its message, which names the file.
        traceback: the formatted traceback of the error (``--debug``).
        note: a remark, e.g. why a file was skipped.
        info: what the dump holds (``info``).
        validation: the structural checks' report (``validate``).
        conversion: the conversion's report (``convert``; for a skipped file, the
            report recorded when it was converted).
        seconds: wall time of the task.
    """

    src: str
    status: Status
    dst: str | None = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    note: str | None = None
    info: DumpInfo | None = None
    validation: ValidationReport | None = None
    conversion: ConvertReport | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """True if the task raised an error."""
        return self.status == "failed"

    @property
    def frames(self) -> int | None:
        """The source's frame count, when known."""
        if self.info is not None:
            return self.info.num_frames
        if self.conversion is not None:
            return self.conversion.frames
        return None

    def as_dict(self) -> dict[str, Any]:
        """Every field as plain data (JSON-serialisable)."""
        return asdict(self)

    def comparable(self) -> dict[str, Any]:
        """:meth:`as_dict` without what varies between runs (times, tracebacks)."""
        return _strip(self.as_dict())

    @classmethod
    def from_error(cls, job: Job, exc: BaseException, seconds: float = 0.0) -> FileResult:
        """A ``failed`` result for ``job``, naming ``exc``'s type and message."""
        tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(
            src=job.src,
            dst=job.dst,
            status="failed",
            error_type=type(exc).__name__,
            error=str(exc) or repr(exc),
            traceback=tb,
            seconds=seconds,
        )


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


# ---------------------------------------------------------------- info, validate


def info_file(
    job: Job, *, storage_options: dict[str, Any] | None = None, engine: str | None = None
) -> FileResult:
    """``skelstore info`` of one file: ``ok`` with :class:`DumpInfo`, or ``failed``.
    ``engine`` is the file's engine (default: guessed)."""
    import skelstore
    from skelstore.summary import describe

    t0 = time.perf_counter()
    try:
        with skelstore.open(job.src, engine=engine, storage_options=storage_options) as root:
            info = describe(root, storage_options=storage_options)
    except Exception as exc:
        return FileResult.from_error(job, exc, time.perf_counter() - t0)
    return FileResult(job.src, "ok", info=info, seconds=time.perf_counter() - t0)


def validate_file(
    job: Job,
    *,
    deep: bool = False,
    storage_options: dict[str, Any] | None = None,
    engine: str | None = None,
) -> FileResult:
    """``skelstore validate`` of one file: ``ok``, ``invalid`` (with the problems in
    ``validation``) or ``failed`` (it could not be opened or read). ``engine`` is
    the file's engine (default: guessed)."""
    import skelstore
    from skelstore.validate import validate

    t0 = time.perf_counter()
    try:
        with skelstore.open(job.src, engine=engine, storage_options=storage_options) as root:
            report = validate(root, deep=deep)
    except Exception as exc:
        return FileResult.from_error(job, exc, time.perf_counter() - t0)
    return FileResult(
        job.src,
        "ok" if report.ok else "invalid",
        validation=report,
        seconds=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------- convert


def _existing(
    src: str,
    dst: str,
    options: dict[str, Any],
    source: dict[str, Any],
    storage_options: dict[str, Any] | None,
    src_engine: str | None = None,
) -> tuple[ConvertReport, str]:
    """Judge an existing destination: recorded, or verified now against ``src``.

    Returns:
        The report of the copy, and why it is kept (the file is ``skipped``).

    Raises:
        VerificationError: ``dst`` differs from ``src``, or was written with
            another compression or Zarr format than the one asked for.
    """
    import skelstore
    from skelstore.conversion import compare_dumps, read_record
    from skelstore.corpus.record import record_matches
    from skelstore.errors import VerificationError
    from skelstore.summary import describe

    t0 = time.perf_counter()
    hint = "; pass overwrite=True to replace it"
    compression, zarr_format = options["compression"], options["zarr_format"]
    with (
        skelstore.open(src, engine=src_engine, storage_options=storage_options) as a,
        skelstore.open(dst, engine=options["engine"], storage_options=storage_options) as b,
    ):
        src_info = describe(a, storage_options=storage_options)
        dst_info = describe(b, storage_options=storage_options)
        if record_matches(read_record(b), src, options, source):
            note = "verified earlier"
        else:
            if compression is not None and dst_info.compression != compression:
                raise VerificationError(
                    f"{dst}: exists with compression {dst_info.compression}, "
                    f"not {compression}{hint}"
                )
            fmt = dst_info.format_info.get("zarr_format")
            if zarr_format is not None and fmt is not None and fmt != zarr_format:
                raise VerificationError(
                    f"{dst}: exists in Zarr format {fmt}, not {zarr_format}{hint}"
                )
            diff = compare_dumps(a, b)
            if diff:
                raise VerificationError(f"{dst}: exists and differs from {src}: {diff}{hint}")
            note = "existing copy verified"
    report = ConvertReport.of(
        src, dst, src_info, dst_info, seconds=time.perf_counter() - t0, verified=True
    )
    return report, note


def convert_file(
    job: Job,
    *,
    engine: str | None = None,
    compression: str | None = None,
    zarr_format: int | None = None,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    src_engine: str | None = None,
    layout: str | None = None,
) -> FileResult:
    """Convert ``job.src`` (of engine ``src_engine``, default: guessed) to
    ``job.dst``, verified and recorded; idempotent.

    * Destination present, carrying a record of this source (unchanged since)
      and these options: ``skipped``, "verified earlier" (the record and the
      small ``indptr`` arrays are read, no keypoint data).
    * Destination present without such a record: compared with the source; the
      same dump (with the compression and Zarr format asked for): ``skipped``,
      "existing copy verified"; otherwise ``failed`` with
      :class:`~skelstore.errors.VerificationError`.
    * Otherwise, or with ``overwrite``: converted, verified before it is
      published, with the record in its root attribute: ``converted``.

    See :mod:`skelstore.corpus.record`.
    """
    from skelstore.conversion import convert
    from skelstore.corpus import record as rec
    from skelstore.staging import exists

    t0 = time.perf_counter()
    src, dst = job.src, job.dst
    try:
        if dst is None:
            raise ValueError(f"{src}: a conversion job needs a destination")
        options = {"engine": engine, "compression": compression, "zarr_format": zarr_format}
        if layout is not None:  # recorded only when asked for: older records stay valid
            options["layout"] = layout
        source = rec.fingerprint(src, storage_options)
        if not overwrite and exists(dst, storage_options):
            report, note = _existing(src, dst, options, source, storage_options, src_engine)
            return FileResult(
                src, "skipped", dst=dst, note=note, conversion=report,
                seconds=time.perf_counter() - t0,
            )  # fmt: skip
        report = convert(
            src,
            dst,
            engine=engine,
            compression=compression,
            zarr_format=zarr_format,
            storage_options=storage_options,
            verify=True,
            overwrite=overwrite,
            record=rec.make_record(src, options, source),
            src_engine=src_engine,
            layout=layout,
        )
    except Exception as exc:
        return FileResult.from_error(job, exc, time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    return FileResult(src, "converted", dst=dst, conversion=report, seconds=seconds)
