"""Many dumps at once: convert, validate and summarise a corpus, in parallel on Dask.

    >>> from skelstore.corpus import Runner, convert_corpus, info_corpus, summarize
    >>> report = convert_corpus("s3://bucket/dumps/*.h5", "s3://bucket/zarr",
    ...                         runner=Runner(workers=8))          # doctest: +SKIP
    >>> [(r.src, r.error_type) for r in report.failed]             # doctest: +SKIP
    >>> summarize(info_corpus("dumps/*.zarr")).to_csv()            # doctest: +SKIP

Each file is one task (:mod:`skelstore.corpus.tasks`); a failing file becomes a
``failed`` result naming its error and the others go on. Tasks run in this
process or on Dask (:class:`~skelstore.corpus.runner.Runner`: a ``LocalCluster``
of worker processes by default for two files or more, or an existing cluster).
Conversions are verified and recorded (:mod:`skelstore.corpus.record`), so a
run can be repeated or resumed. Sources are paths, URLs and globs
(:mod:`skelstore.corpus.sources`).

Importing this package does not import Dask; running on Dask needs
``pip install 'skelstore[dask]'``.
"""

from __future__ import annotations

from skelstore.corpus.ops import convert_corpus, info_corpus, plan_conversion, validate_corpus
from skelstore.corpus.report import CorpusReport, CorpusSummary, Totals, summarize
from skelstore.corpus.runner import Runner
from skelstore.corpus.sources import destination_for, expand_sources
from skelstore.corpus.tasks import FileResult, Job

__all__ = [
    "CorpusReport",
    "CorpusSummary",
    "FileResult",
    "Job",
    "Runner",
    "Totals",
    "convert_corpus",
    "destination_for",
    "expand_sources",
    "info_corpus",
    "plan_conversion",
    "summarize",
    "validate_corpus",
]
