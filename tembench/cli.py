"""The ``tembench`` command line: parse, call :mod:`tembench.api`, print. No logic here.

Errors from the library (:class:`~tembench.errors.TembenchError`) become one line on stderr and a
non-zero exit (2 for bad input); ``--debug`` (or ``TEMBENCH_DEBUG=1``) shows the traceback.
"""
from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

try:  # typer >= 0.22 vendors click as typer._click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from tembench.errors import TembenchError
from tembench.report.render import OutputFormat, print_rows

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

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)]
PatternsArg = Annotated[
    Optional[list[str]],
    typer.Argument(help="Variant ids, families (e.g. 'tam') or glob patterns (e.g. 'tam/tanet-*'). Default: all."),
]
ConventionOpt = Annotated[
    str, typer.Option("--convention", help="Counting convention: fvcore (default), fvcore-legacy, flops, no-bmm, ...")
]

_DEBUG = {"on": False}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    if debug:
        _DEBUG["on"] = True


@app.command("list")
def list_cmd(patterns: PatternsArg = None, format: FormatOpt = OutputFormat.table) -> None:
    """List registered variants (id, backbone, temporal module, defaults, number of claims)."""
    from tembench.api import list_variants

    rows = list_variants(patterns)
    cols = None if format is not OutputFormat.table else [
        "variant", "backbone", "temporal", "options", "frames", "input_size", "classes", "claims", "members"]
    print_rows(rows, format, columns=cols, title=f"{len(rows)} registered variants")


PROFILE_COLUMNS = ["variant", "frames", "input_size", "views", "gflops", "gflops_total", "params",
                   "temporal_gflops", "temporal_params"]


@app.command("profile")
def profile_cmd(
    patterns: PatternsArg = None,
    frames: Annotated[Optional[str], typer.Option(help="Frame counts, e.g. 8,16,32. Default: each variant's own.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Input height = width. Default: each variant's own.")] = None,
    views: Annotated[Optional[str], typer.Option(help="Test views CROPSxCLIPS or FRAMESxCROPSxCLIPS, e.g. 3x10.")] = None,
    convention: ConventionOpt = "fvcore",
    format: FormatOpt = OutputFormat.table,
    out: Annotated[Optional[Path], typer.Option(help="Directory for the run record. Default: $TEMBENCH_RUNS or results/runs.")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Write the run record.")] = True,
) -> None:
    """Measure cost (GFLOPs per view and total, params, temporal-module share) of registered variants.

    Counting runs on the meta device: no weights, no real compute. Each record is appended to the
    run file as soon as it is measured.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from tembench.api import cost_record, parse_int_list, profile_cases
    from tembench.cost.conventions import get_convention
    from tembench.results.store import RunWriter

    if size is not None and size <= 0:
        raise typer.BadParameter(f"must be a positive integer, got {size}", param_hint="--size")
    get_convention(convention)
    cases = profile_cases(patterns, parse_int_list(frames), size, views)
    writer = RunWriter("cost", out, params={"patterns": patterns, "frames": frames, "size": size,
                                            "views": views, "convention": convention}) if save else None
    records = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), transient=True,
                        console=_stderr_console(), disable=not sys.stderr.isatty())
    try:
        with progress:
            task = progress.add_task("counting", total=len(cases))
            for spec, t, s, crops, clips in cases:
                progress.update(task, description=f"{spec.id} @{t or spec.frames}")
                rec = cost_record(spec, t, s, crops, clips, convention)
                records.append(rec)
                if writer:
                    writer.add(rec)
                progress.advance(task)
    except BaseException as e:
        if writer:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            writer.close(status, error=None if status == "interrupted" else str(e))
            _err(f"{len(records)} of {len(cases)} cases measured; kept in {writer.path}")
        raise
    if writer:
        path = writer.close("complete")
    print_rows(records, format, columns=PROFILE_COLUMNS if format is OutputFormat.table else None,
               title=f"Cost per view ({convention}: GFLOPs = 1e9 multiply-adds) — {len(records)} cases")
    if writer:
        _err(f"saved {len(records)} records to {path}")


CLAIM_COLUMNS = ["source", "row", "variant", "metric", "claimed", "measured", "rel_err", "status", "diagnosis"]


@app.command("claims")
def claims_cmd(
    paper: Annotated[Optional[str], typer.Option(help="Only this paper's claims (e.g. tam, atm, ila, emim).")] = None,
    table: Annotated[Optional[str], typer.Option(help="Only one paper table, e.g. 'TAM Table 2'.")] = None,
    format: FormatOpt = OutputFormat.table,
    mismatches: Annotated[bool, typer.Option("--mismatches", help="Only claims that do not match.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any measured claim does not match.")] = False,
) -> None:
    """Every number the papers publish beside the value measured under the claim's own protocol.

    `--format markdown` renders each paper table in the paper's own row order.
    """
    from tembench.api import claims
    from tembench.registry import registry
    from tembench.report.claims import paper_table

    rows = claims(paper, table)
    if format is OutputFormat.markdown:
        sources = list(dict.fromkeys(r["source"] for r in rows))
        reg = registry()
        for source in sources:
            t = reg.tables.get(source)
            print_rows(paper_table(source), format, title=f"{source}" + (f": {t.title}" if t and t.title else ""))
    else:
        shown = [r for r in rows if r["status"] == "mismatch"] if mismatches else rows
        for r in shown:
            if r["rel_err"] is not None and format is OutputFormat.table:
                r["rel_err"] = f"{100 * r['rel_err']:+.2f}%"
        print_rows(shown, format, columns=CLAIM_COLUMNS if format is OutputFormat.table else None,
                   title="Published vs measured (GFLOPs per view, fvcore MACs unless the claim names another convention)")
    n_match = sum(r["status"] == "match" for r in rows)
    n_mis = sum(r["status"] == "mismatch" for r in rows)
    _err(f"{len(rows)} claims: {n_match} match, {n_mis} mismatch, {len(rows) - n_match - n_mis} not measured")
    if strict and n_mis:
        raise typer.Exit(1)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, markup=False, emoji=False, highlight=False)


# Command groups that live in their own modules register themselves on `app` when imported.
for _name in ("tembench.cli_eval", "tembench.cli_results", "tembench.cli_report", "tembench.cli_check"):
    try:
        __import__(_name)
    except ModuleNotFoundError as _e:
        if _e.name != _name:
            raise


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("TEMBENCH_DEBUG", "") not in ("", "0")
    try:
        # without standalone mode, typer returns the exit code of typer.Exit (130 for Ctrl-C)
        rv = app(args=args, prog_name="tembench", standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click_exceptions.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except typer.Abort:
        _err("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except TembenchError as e:
        if debug:
            traceback.print_exc()
        _err(f"error: {e}")
        sys.exit(e.exit_code)
    except Exception as e:  # noqa: BLE001 -- one line unless --debug
        if debug:
            traceback.print_exc()
        _err(f"error: {type(e).__name__}: {e} (run with --debug for the traceback)")
        sys.exit(1)
    if isinstance(rv, int) and rv:
        if rv == 130:
            _err("interrupted")
        sys.exit(rv)
    sys.exit(0)


if __name__ == "__main__":
    main()
