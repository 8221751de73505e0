"""The Typer app, the options every command shares (validated here, once, with their choices in
``--help``), and the few output helpers commands use. Commands live in one module per group."""
from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer

from tembench.api import CONVENTION_NAMES
from tembench.report.render import OutputFormat, print_rows, select_columns

app = typer.Typer(
    name="tembench",
    help="Benchmark and profile temporal-modeling video networks: cost, the papers' claims, and more.\n\n"
    "GFLOPs everywhere are fvcore's: one multiply-add = one FLOP, per view (1 clip x 1 crop) unless a "
    "column says total.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Convention = Enum("Convention", {name: name for name in CONVENTION_NAMES}, type=str)


class Dtype(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


def _device(value: Optional[str]) -> Optional[str]:
    if value is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", value.strip().lower()):
        raise typer.BadParameter(f"must be cpu, cuda or cuda:N, got {value!r}")
    return None if value is None else value.strip().lower()


FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)]
PatternsArg = Annotated[
    Optional[list[str]],
    typer.Argument(help="Variant ids, families (e.g. 'tam') or glob patterns (e.g. 'tam/tanet-*'); for profile also "
                        "a factory of your own, 'package.module:callable'. Default: all."),
]
ColumnsOpt = Annotated[Optional[str], typer.Option(
    "--columns", help="Table columns: 'all', or field names separated by commas. Default: the essential ones "
                      "(json and csv always carry every field).")]
ConventionOpt = Annotated[Convention, typer.Option("--convention", case_sensitive=False, help=(
    "Counting convention (fvcore: one multiply-add = one FLOP, attention counted; see README)."))]
DeviceOpt = Annotated[Optional[str], typer.Option(
    callback=_device, help="cpu, cuda or cuda:N. Default: cpu.", rich_help_panel="Runtime")]
DtypeOpt = Annotated[Optional[Dtype], typer.Option(
    case_sensitive=False, help="Weights and input dtype. Default: fp32.", rich_help_panel="Runtime")]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    registry: Annotated[Optional[list[str]], typer.Option(
        "--registry", metavar="DIR", help="A directory of registry files of your own, merged with the built-in "
                                          "registry (repeatable; also $TEMBENCH_REGISTRY, a path list).")] = None,
    no_builtin: Annotated[bool, typer.Option("--no-builtin", help="Leave the built-in registry out (only your "
                                                                  "own variants).")] = False,
) -> None:
    """Global options, accepted before or after the command (:func:`tembench.cli.main` takes them out of
    the command line wherever they are)."""


def err(msg: str) -> None:
    """One line on stderr (notes, summaries, the path a run was saved to)."""
    print(msg, file=sys.stderr)


def print_table(rows, format, default_columns, columns: str | None, title: str) -> None:
    """Records in ``format``; a table shows the essential ``default_columns`` unless ``--columns`` says more."""
    print_rows(rows, format, columns=select_columns(rows, format, default_columns, columns), title=title,
               wide=bool(columns))


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, markup=False, emoji=False, highlight=False)


@contextmanager
def progress_lines(what: str):
    """A ``progress(line)`` callable for long work: on a terminal one transient status line; elsewhere
    (CI logs) each line printed to stderr with the time since the start, so a job is never silent."""
    t0 = time.perf_counter()
    if sys.stderr.isatty():
        console = stderr_console()
        with console.status(f"{what} ...") as status:
            yield lambda line: status.update(f"{what}: {line} [{time.perf_counter() - t0:.0f} s]")
        return

    def say(line: str) -> None:
        print(f"{what}: {line} [{time.perf_counter() - t0:.0f} s elapsed]", file=sys.stderr, flush=True)

    yield say
