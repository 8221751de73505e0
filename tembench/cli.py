"""The ``tembench`` command line: parse, call :mod:`tembench.api`, print. No logic here.

Errors from the library (:class:`~tembench.errors.TembenchError`) become one line on stderr and a
non-zero exit (2 for bad input); ``--debug`` (or ``TEMBENCH_DEBUG=1``) shows the traceback.
"""
from __future__ import annotations

import os
import sys
import textwrap
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

try:  # typer >= 0.22 vendors click as typer._click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from tembench.errors import TembenchError, UsageError
from tembench.report.render import TABLE_WIDTH, OutputFormat, fmt_value, plural, print_rows

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
ColumnsOpt = Annotated[Optional[str], typer.Option(
    "--columns", help="Table columns: 'all', or field names separated by commas. Default: the essential ones "
                      "(json and csv always carry every field).")]
ConventionOpt = Annotated[
    str, typer.Option("--convention", help="Counting convention: fvcore (default), fvcore-legacy, flops, no-bmm, ...")
]

_DEBUG = {"on": False}


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _print_table(rows, format, default_columns, columns: str | None, title: str) -> None:
    """Records in ``format``; a table shows the essential ``default_columns`` unless ``--columns`` says more."""
    from tembench.report.render import select_columns

    print_rows(rows, format, columns=select_columns(rows, format, default_columns, columns), title=title,
               wide=bool(columns))


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    if debug:
        _DEBUG["on"] = True


@app.command("list")
def list_cmd(patterns: PatternsArg = None, format: FormatOpt = OutputFormat.table, columns: ColumnsOpt = None) -> None:
    """List registered variants (id, backbone, temporal module, defaults, number of claims); options and
    ensemble members with --columns all or in json/csv."""
    from tembench.api import list_variants

    rows = list_variants(patterns)
    _print_table(rows, format, ["variant", "backbone", "temporal", "frames", "input_size", "classes", "claims"],
                 columns, f"{plural(len(rows), 'registered variant')}")


PROFILE_COLUMNS = ["variant", "frames", "input_size", "views", "gflops", "gflops_total", "params",
                   "temporal_gflops", "status"]
RUNTIME_COLUMNS = ["variant", "frames", "input_size", "batch", "gflops", "latency_ms", "latency_spread", "clips_per_s",
                   "temporal_ms", "rss_increase_mib", "mem_peak_alloc_mib", "max_batch", "status"]


@app.command("profile")
def profile_cmd(
    patterns: PatternsArg = None,
    frames: Annotated[Optional[str], typer.Option(help="Frame counts, e.g. 8,16,32. Default: each variant's own.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Input height = width. Default: each variant's own.")] = None,
    views: Annotated[Optional[str], typer.Option(help="Test views CROPSxCLIPS or FRAMESxCROPSxCLIPS, e.g. 3x10.")] = None,
    convention: ConventionOpt = "fvcore",
    format: FormatOpt = OutputFormat.table,
    columns: ColumnsOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Directory for the run record. Default: $TEMBENCH_RUNS or results/runs.")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Write the run record.")] = True,
    latency: Annotated[bool, typer.Option("--latency", help="Time real forwards: median, p90, IQR, throughput, time per module.", rich_help_panel="Runtime")] = False,
    memory: Annotated[bool, typer.Option("--memory", help="Measure memory in a separate forward (CUDA peak allocated/reserved + NVML, or CPU peak RSS increase).", rich_help_panel="Runtime")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N. Default: cpu.", rich_help_panel="Runtime")] = None,
    batch: Annotated[Optional[str], typer.Option(help="Batch sizes in videos, e.g. 1,8; each video's views go through together. Default: 1.", rich_help_panel="Runtime")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="Weights and input dtype: fp32, fp16 or bf16. Default: fp32.", rich_help_panel="Runtime")] = None,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="Channels-last memory format.", rich_help_panel="Runtime")] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (compiled during warm-up).", rich_help_panel="Runtime")] = False,
    trace: Annotated[Optional[Path], typer.Option(help="Write torch.profiler traces to DIR/<case>/<worker>.pt.trace.json (tensorboard --logdir DIR, or Perfetto).", rich_help_panel="Runtime")] = None,
    find_max_batch: Annotated[bool, typer.Option("--find-max-batch", help="Also search the largest batch that fits (the other measurements keep their batch).", rich_help_panel="Runtime")] = False,
    modules: Annotated[bool, typer.Option("--modules", help="Also print the time per top-level and per temporal module.", rich_help_panel="Runtime")] = False,
    budget: Annotated[Optional[float], typer.Option(help="Seconds of timed repetitions per case (at least 5 are always taken). Default: 30 on CPU, sampling at least 20 s so that a shared machine's slow and fast phases average out; 10 on CUDA (at least 2 s). A smaller budget also shortens that minimum.", rich_help_panel="Runtime")] = None,
    warmup: Annotated[Optional[float], typer.Option(help="Minimum warm-up seconds per case (and at least 3 calls). Default: 1.", rich_help_panel="Runtime")] = None,
    threads: Annotated[Optional[int], typer.Option(help="Torch intra-op threads for the measurement. Default on CPU: 1, as torch.utils.benchmark (reproducible on a shared machine; give the core count to use the whole CPU); on CUDA: torch's own.", rich_help_panel="Runtime")] = None,
    steady_heap: Annotated[bool, typer.Option("--steady-heap/--default-heap", help="CPU: keep freed memory in the process so forwards do not page-fault fresh memory (the record says heap=held); --default-heap measures glibc's default behaviour.", rich_help_panel="Runtime")] = True,
) -> None:
    """Measure cost (GFLOPs per view and total, params, temporal-module share) of registered variants.

    Counting runs on the meta device: no weights, no real compute. Each record is appended to the
    run file as soon as it is measured.

    With --latency, --memory, --trace or --find-max-batch the variants are built and run on --device:
    one record per variant x frames x batch, with the cost beside the time (temporal_ms beside
    temporal_gflops). Out-of-memory cases are recorded as such and the run goes on; Ctrl-C keeps what
    was measured.
    """
    from tembench.api import run_profile, runtime_options

    runtime = latency or memory or trace is not None or find_max_batch
    if not runtime:
        given = [name for name, value in (("--device", device), ("--batch", batch), ("--dtype", dtype),
                                          ("--channels-last", channels_last), ("--compile", compile),
                                          ("--modules", modules), ("--budget", budget), ("--warmup", warmup),
                                          ("--threads", threads), ("--default-heap", not steady_heap))
                 if value not in (None, False)]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to runtime profiling; add --latency, --memory, "
                             "--trace or --find-max-batch")
        result = run_profile(patterns, frames, size, views, convention, out=out, save=save)
        single_view = all(r.get("gflops_total") == r.get("gflops") for r in result.records)
        default = [c for c in PROFILE_COLUMNS if not (single_view and c in ("views", "gflops_total"))]
        _print_table(result.records, format, default, columns,
                     f"Cost per view ({convention}: GFLOPs = 1e9 multiply-adds) — {plural(len(result.records), 'case')}")
        _finish(result)
        return
    opts = runtime_options(latency=latency, memory=memory, device=device or "cpu", dtype=dtype or "fp32",
                           channels_last=channels_last, compile=compile, trace=None if trace is None else str(trace),
                           find_max_batch=find_max_batch, budget=budget, warmup=1.0 if warmup is None else warmup,
                           threads=threads, steady_heap=steady_heap)
    result = run_profile(patterns, frames, size, views, convention, batches=batch, runtime=opts, out=out, save=save,
                         on_note=lambda s: _err(f"note: {s}"))
    _print_runtime(result.records, format, columns, opts, modules)
    _finish(result)


def _print_runtime(records, format, columns, opts, modules: bool) -> None:
    from tembench.api import module_table, scaling

    _print_table(records, format, RUNTIME_COLUMNS, columns,
                 f"Runtime on {opts.device}, {opts.dtype} (latency per forward of batch x views clips; "
                 f"GFLOPs per view, fvcore) — {plural(len(records), 'case')}")
    if format in (OutputFormat.table, OutputFormat.markdown):
        if growth := scaling(records):
            print_rows(growth, format, title="Growth with frames: value ~ frames^exponent")
        if modules:
            print_rows(module_table(records), format, title="Time per module (ms, hooks; median of 3 forwards)")


def _finish(result) -> None:
    """Say what the sweep left out, what failed and where it is kept; exit 130 when interrupted, 1 when a
    case failed or the run file could not be written."""
    for note in result.notes:
        _err(f"note: {note}")
    for r in result.records:
        if r.get("status", "ok") != "ok":
            where = f"{r['variant']} @{r.get('frames')}" + (f" batch {r['batch']}" if "batch" in r else "")
            _err(f"{r['status']}: {where}: {r.get('error', '')}")
    _err(result.note)
    if result.stopped == "write-error":
        _err(f"error: {result.error}")
        raise typer.Exit(1)
    if result.stopped == "interrupted":
        raise typer.Exit(130)
    if result.failed:
        raise typer.Exit(1)


CLAIM_COLUMNS = ["source", "row", "metric", "claimed", "measured", "rel_err", "status"]


@app.command("claims")
def claims_cmd(
    paper: Annotated[Optional[str], typer.Option(help="Only this paper's claims (e.g. tam, atm, ila, emim).")] = None,
    table: Annotated[Optional[str], typer.Option(help="Only one paper table, e.g. 'TAM Table 2'.")] = None,
    format: FormatOpt = OutputFormat.table,
    columns: ColumnsOpt = None,
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
            if format is OutputFormat.table:  # the published digits as printed, the difference in percent
                r["claimed"] = fmt_value(r["claimed"])
                if r["rel_err"] is not None:
                    r["rel_err"] = f"{100 * r['rel_err']:+.2f}%"
        _print_table(shown, format, CLAIM_COLUMNS, columns,
                     "Published vs measured (GFLOPs per view, fvcore MACs unless the claim names another convention)")
        if format is OutputFormat.table and not columns:
            for r in shown:
                if r["status"] == "mismatch" and r.get("diagnosis"):
                    print(textwrap.fill(f"{r['source']} · {r['row'] or r['variant']} · {r['metric']}: {r['diagnosis']}",
                                        TABLE_WIDTH, subsequent_indent="    "))
    n_match = sum(r["status"] == "match" for r in rows)
    n_mis = sum(r["status"] == "mismatch" for r in rows)
    _err(f"{len(rows)} claims: {n_match} match, {n_mis} mismatch, {len(rows) - n_match - n_mis} not measured")
    if strict and n_mis:
        raise typer.Exit(1)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True, markup=False, emoji=False, highlight=False)


@contextmanager
def progress_lines(what: str):
    """A ``progress(line)`` callable for long work: on a terminal one transient status line; elsewhere
    (CI logs) each line printed to stderr with the time since the start, so a job is never silent."""
    import time

    t0 = time.perf_counter()
    if sys.stderr.isatty():
        console = _stderr_console()
        with console.status(f"{what} ...") as status:
            yield lambda line: status.update(f"{what}: {line} [{time.perf_counter() - t0:.0f} s]")
        return

    def say(line: str) -> None:
        print(f"{what}: {line} [{time.perf_counter() - t0:.0f} s elapsed]", file=sys.stderr, flush=True)

    yield say


# Command groups that live in their own modules register themselves on `app` when imported.
for _name in ("tembench.cli_eval", "tembench.cli_results", "tembench.cli_report", "tembench.cli_check"):
    try:
        __import__(_name)
    except ModuleNotFoundError as _e:
        if _e.name != _name:
            raise


def main(argv: list[str] | None = None) -> None:
    """The ``tembench`` entry point: one line on stderr and a non-zero exit for every error (the traceback
    too with ``--debug`` anywhere on the command line, or ``TEMBENCH_DEBUG=1``); SIGTERM stops a command
    as Ctrl-C does, so a killed measurement keeps what it measured."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("TEMBENCH_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    try:
        # without standalone mode, typer returns the exit code of typer.Exit (130 for Ctrl-C)
        with _sigterm_as_interrupt():
            rv = app(args=args, prog_name="tembench", standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except click_exceptions.ClickException as e:
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _err(f"error: {e.format_message()}{hint}")
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


@contextmanager
def _sigterm_as_interrupt():
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. main() called from a test's worker thread)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
