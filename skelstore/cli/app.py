"""The ``skelstore`` command group: global options, exit codes, and how errors
become one line on stderr.

Exit codes: 0 success; 1 a check failed (verification, validation); 2 usage
error or bad input; 130 interrupted (Ctrl-C, as shells report SIGINT). Errors are
one line on stderr naming the file and the problem; ``--debug`` shows the
traceback instead. Library messages name options in Python's spelling
(``engine=...``); :func:`cli_text` rewrites them in the command line's
(``--engine ENGINE``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from skelstore.config import set_options
from skelstore.errors import SkelstoreError, VerificationError

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
#: 128 + SIGINT, what a shell reports for a command stopped with Ctrl-C.
EXIT_INTERRUPTED = 130


class Context:
    """What every command gets first: ``--debug`` and the ``-o`` storage options."""

    def __init__(self, debug: bool, storage_options: dict[str, Any]) -> None:
        self.debug = debug
        self.storage_options = storage_options or None


def parse_options(values: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict, each VALUE parsed as JSON where it parses."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--storage-option")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


#: Library messages name the options that would help as Python arguments; how the
#: command line spells each (the commands that print them have these options).
_CLI_SPELLINGS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), cli)
    for pattern, cli in (
        (r"skelstore\.open\(\.\.\., engine=\.\.\.\)", "--engine ENGINE"),
        (r"(?<![\w.])src_engine=\.\.\.", "--src-engine ENGINE"),
        (r"(?<![\w.])engine=\.\.\.", "--engine ENGINE"),
        (r"(?<![\w.])overwrite=True\b", "--overwrite"),
        (r"(?<![\w.])missing='empty'", "--missing empty"),
        (r"(?<![\w.])workers=0\b", "--workers 0"),
        (r"(?<![\w.])zarr_format= ", "--zarr-format "),
        (r"\bwith tracked=False\b", "without --tracked"),
        (r"(?<![\w.])frames=slice\(a, b\) or shot=N\b", "--frames A:B or --shot N"),
        (r"(?<![\w.])frames= or shot=", "--frames or --shot"),
        (r"(?<![\w.])fps=\.\.\.", "--fps FPS"),
        (
            r"(?<![\w.])(\w+)= does not apply to export target '([\w-]+)'",
            lambda m: f"--{m[1].replace('_', '-')} does not apply to --to {m[2]}",
        ),
    )
)


def cli_text(message: str) -> str:
    """``message`` on one line, with its Python option hints in the command line's
    spelling."""
    message = re.sub(r"\s*\n\s*", " ", message.strip())  # libhdf5's messages span lines
    for pattern, cli in _CLI_SPELLINGS:
        message = pattern.sub(cli, message)
    return message


def fail(ctx: Context, exc: BaseException, code: int) -> None:
    if ctx.debug:
        raise exc
    # one line, whatever the message holds (a server's error body may span lines)
    text = cli_text(str(exc))
    message = " ".join(line.strip() for line in text.splitlines() if line.strip())
    click.echo(f"skelstore: error: {message}", err=True)
    sys.exit(code)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn skelstore and OS errors into one-line messages and exit codes."""

    @click.pass_obj
    def wrapper(obj: Context, *args: Any, **kwargs: Any) -> Any:
        extra = kwargs.pop("command_storage_options", ())
        if extra:  # -o after the command adds to (and overrides) -o before it
            obj.storage_options = {**(obj.storage_options or {}), **parse_options(extra)}
        try:
            return fn(obj, *args, **kwargs)
        except KeyboardInterrupt:  # Ctrl-C: not "a check failed" (1), not bad input (2)
            if obj.debug:
                raise
            click.echo("skelstore: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # output piped into `head` and closed: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except VerificationError as exc:
            fail(obj, exc, EXIT_CHECK_FAILED)
        except (SkelstoreError, OSError, ValueError) as exc:
            fail(obj, exc, EXIT_BAD_INPUT)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(
    "-o",
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="fsspec storage option (repeatable; VALUE parsed as JSON when it can be).",
)
@click.option(
    "--untrusted",
    is_flag=True,
    help="Files may be damaged or hostile: read each one's metadata in a watchdog child "
    "process first (about 0.5 s a file), so that none can hang or crash the run.",
)
@click.version_option(package_name="skelstore")
@click.pass_context
def cli(ctx: click.Context, debug: bool, storage_options: tuple[str, ...], untrusted: bool) -> None:
    """Skeleton (pose) dumps on any storage: HDF5 and Zarr, local or remote."""
    if not debug and not logging.getLogger().handlers:
        # errors are reported here, in one line: the filesystems' own logging (gcsfs
        # logs every failed request with its traceback) is shown with --debug only
        logging.getLogger().addHandler(logging.NullHandler())
    if untrusted:  # for every skelstore.open of this command, corpus tasks included
        ctx.with_resource(set_options(untrusted=True))
    ctx.obj = Context(debug, parse_options(storage_options))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``skelstore`` command."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="skelstore")
