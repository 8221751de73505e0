"""``tembench list`` and ``tembench profile``: the registry, and cost or runtime sweeps over it."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tembench.cli.app import (ColumnsOpt, Convention, ConventionOpt, DeviceOpt, DtypeOpt, FormatOpt, PatternsArg, app,
                              err, print_table)
from tembench.errors import UsageError


class CrossCheck(str, Enum):
    fvcore = "fvcore"


class Layout(str, Enum):
    BCTHW = "BCTHW"
    BTCHW = "BTCHW"
from tembench.report.render import OutputFormat, plural, print_rows


@app.command("list")
def list_cmd(patterns: PatternsArg = None, format: FormatOpt = OutputFormat.table, columns: ColumnsOpt = None) -> None:
    """List registered variants (id, backbone, temporal module, defaults, number of claims); options and
    ensemble members with --columns all or in json/csv."""
    from tembench.api import list_variants

    rows = list_variants(patterns)
    missing = [r for r in rows if r.get("missing")]
    if missing:
        hints = sorted({r["install"] for r in missing})
        err(f"note: {len(missing)} of these variants need packages that are not installed "
            f"({', '.join(sorted({m for r in missing for m in r['missing'].split(', ')}))}); to use them: {'; '.join(hints)}")
    print_table(rows, format, ["variant", "backbone", "temporal", "frames", "input_size", "classes", "claims"],
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
    convention: ConventionOpt = Convention.fvcore,
    format: FormatOpt = OutputFormat.table,
    columns: ColumnsOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Directory for the run record. Default: $TEMBENCH_RUNS or results/runs.")] = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Write the run record.")] = True,
    kwargs: Annotated[Optional[str], typer.Option(
        "--kwargs", help="For a factory named by import path (package.module:callable): its keyword arguments "
                         "as a JSON object, e.g. '{\"depth\": 50}'.")] = None,
    layout: Annotated[Optional[Layout], typer.Option(
        case_sensitive=False, help="For a factory named by import path: the clip tensor its model takes, "
                                   "BCTHW (default, as tembench's models) or BTCHW (e.g. pixel_values).")] = None,
    cross_check: Annotated[Optional[CrossCheck], typer.Option(
        "--cross-check", help="Instead of the cost table: count each variant at a small input (its frames, "
        "64x64, or --frames/--size) both on the meta device under fvcore-legacy and with fvcore's own "
        "FlopCountAnalysis of a real CPU forward, and print the two totals side by side (equal, or the "
        "operators that differ). Nothing is saved.")] = None,
    latency: Annotated[bool, typer.Option("--latency", help="Time real forwards: median, p90, IQR, throughput, time per module.", rich_help_panel="Runtime")] = False,
    memory: Annotated[bool, typer.Option("--memory", help="Measure memory in a separate forward (CUDA peak allocated/reserved + NVML, or CPU peak RSS increase).", rich_help_panel="Runtime")] = False,
    device: DeviceOpt = None,
    batch: Annotated[Optional[str], typer.Option(help="Batch sizes in videos, e.g. 1,8; each video's views go through together. Default: 1.", rich_help_panel="Runtime")] = None,
    dtype: DtypeOpt = None,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="Channels-last memory format.", rich_help_panel="Runtime")] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model (compiled during warm-up).", rich_help_panel="Runtime")] = False,
    trace: Annotated[Optional[Path], typer.Option(help="Write torch.profiler traces to DIR/<case>/<worker>.pt.trace.json (tensorboard --logdir DIR, or Perfetto).", rich_help_panel="Runtime")] = None,
    find_max_batch: Annotated[bool, typer.Option("--find-max-batch", help="Also search the largest batch that fits (the other measurements keep their batch).", rich_help_panel="Runtime")] = False,
    modules: Annotated[bool, typer.Option("--modules", help="Also print the time per top-level and per temporal module.", rich_help_panel="Runtime")] = False,
    budget: Annotated[Optional[float], typer.Option(help="Seconds of timed repetitions per case (at least 5 are always taken). Default: 30 on CPU, sampling at least 20 s so that a shared machine's slow and fast phases average out; 10 on CUDA (at least 2 s). A smaller budget also shortens that minimum.", rich_help_panel="Runtime")] = None,
    warmup: Annotated[Optional[float], typer.Option(help="Minimum warm-up seconds per case (and at least 3 calls). Default: 1.", rich_help_panel="Runtime")] = None,
    threads: Annotated[Optional[int], typer.Option(help="Torch intra-op threads for the measurement. Default on CPU: 1, as torch.utils.benchmark (reproducible on a shared machine; give the core count to use the whole CPU); on CUDA: torch's own.", rich_help_panel="Runtime")] = None,
    steady_heap: Annotated[bool, typer.Option("--steady-heap/--default-heap", help="CPU: keep freed memory in the process so forwards do not page-fault fresh memory (the record says heap=held); --default-heap measures glibc's default behaviour.", rich_help_panel="Runtime")] = True,
    resume: Annotated[Optional[str], typer.Option(
        "--resume", metavar="RUN", help="Complete a run that stopped early (a run id or a run file): measure only "
        "the cases of its grid that have no record yet, into its file, with its own parameters (options given "
        "beside it must equal the run's). Works under torchrun too.")] = None,
) -> None:
    """Measure cost (GFLOPs per view and total, params, temporal-module share) of registered variants.

    Counting runs on the meta device: no weights, no real compute. Each record is appended to the
    run file as soon as it is measured.

    With --latency, --memory, --trace or --find-max-batch the variants are built and run on --device:
    one record per variant x frames x batch, with the cost beside the time (temporal_ms beside
    temporal_gflops). Out-of-memory cases are recorded as such and the run goes on; Ctrl-C keeps what
    was measured.

    Under torchrun (torchrun --nproc-per-node N -m tembench profile ... --device cuda) the grid is shared
    out over the ranks, each on its own GPU (or CPU cores); rank 0 writes the one run file and prints.
    """
    from tembench.api import cross_check as run_cross_check
    from tembench.api import run_profile, runtime_options
    from tembench.runtime.shard import FollowedError

    runtime = latency or memory or trace is not None or find_max_batch
    if resume is not None:
        if cross_check is not None:
            raise UsageError("--resume completes a run of `tembench profile`; leave out --cross-check")
        changes = {name: value for name, value in (
            ("latency", latency or None), ("memory", memory or None), ("device", device), ("batch", batch),
            ("dtype", dtype.value if dtype else None), ("channels_last", channels_last or None),
            ("compile", compile or None), ("trace", None if trace is None else str(trace)),
            ("find_max_batch", find_max_batch or None), ("budget_s", budget), ("warmup_s", warmup),
            ("threads", threads), ("steady_heap", None if steady_heap else False)) if value is not None}
        if "batch" in changes:
            from tembench.grid import parse_int_list

            changes["batch"] = parse_int_list(batch, "batch sizes")
        try:
            result = run_profile(patterns, frames, size, views,
                                 convention.value if convention != Convention.fvcore else None, out=out,
                                 save=save, kwargs=kwargs, layout=layout.value if layout else None, resume=resume,
                                 changes=changes, on_note=lambda s: err(f"note: {s}"))
        except FollowedError as e:  # rank 0 says why
            raise typer.Exit(e.exit_code) from None
        _print_result(result, format, columns, convention.value, modules)
        return
    if cross_check is not None:
        if runtime or views:
            raise UsageError("--cross-check counts one view of each variant; leave out --views and the runtime options")
        rows = run_cross_check(patterns, frames, size, cross_check.value)
        print_table(rows, format, ["variant", "frames", "input_size", "tembench_macs", "fvcore_macs", "equal",
                                   "differing_ops"], columns,
                    "Meta-device count (fvcore-legacy) beside fvcore's FlopCountAnalysis of a real forward (MACs)")
        equal = sum(r["equal"] for r in rows)
        err(f"{equal} of {plural(len(rows), 'variant')} equal to fvcore")
        return
    if not runtime:
        given = [name for name, value in (("--device", device), ("--batch", batch), ("--dtype", dtype),
                                          ("--channels-last", channels_last), ("--compile", compile),
                                          ("--modules", modules), ("--budget", budget), ("--warmup", warmup),
                                          ("--threads", threads), ("--default-heap", not steady_heap))
                 if value not in (None, False)]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to runtime profiling; add --latency, --memory, "
                             "--trace or --find-max-batch")
        try:
            result = run_profile(patterns, frames, size, views, convention.value, out=out, save=save, kwargs=kwargs,
                                 layout=layout.value if layout else None)
        except FollowedError as e:
            raise typer.Exit(e.exit_code) from None
        _print_result(result, format, columns, convention.value, modules)
        return
    opts = runtime_options(latency=latency, memory=memory, device=device or "cpu", dtype=dtype.value if dtype else "fp32",
                           channels_last=channels_last, compile=compile, trace=None if trace is None else str(trace),
                           find_max_batch=find_max_batch, budget=budget, warmup=1.0 if warmup is None else warmup,
                           threads=threads, steady_heap=steady_heap)
    try:
        result = run_profile(patterns, frames, size, views, convention.value, batches=batch, runtime=opts, out=out,
                             save=save, on_note=lambda s: err(f"note: {s}"), kwargs=kwargs,
                             layout=layout.value if layout else None)
    except FollowedError as e:
        raise typer.Exit(e.exit_code) from None
    _print_result(result, format, columns, convention.value, modules)


def _print_result(result, format, columns, convention: str, modules: bool) -> None:
    """Rank 0 (or the one process) prints the table and how the sweep went; other ranks of a torchrun
    launch stay quiet (exit 130 when interrupted)."""
    if result.rank != 0:
        if result.stopped == "interrupted":
            raise typer.Exit(130)
        return
    records = result.records
    if result.kind == "cost":
        single_view = all(r.get("gflops_total") == r.get("gflops") for r in records)
        default = [c for c in PROFILE_COLUMNS if not (single_view and c in ("views", "gflops_total"))]
        print_table(records, format, default, columns,
                    f"Cost per view ({convention}: GFLOPs = 1e9 multiply-adds) — {plural(len(records), 'case')}")
    else:
        _print_runtime(records, format, columns, modules)
    _finish(result)


def _print_runtime(records, format, columns, modules: bool) -> None:
    from tembench.api import module_table, scaling

    devices = ", ".join(sorted({str(r.get("device")) for r in records})) or "-"
    dtypes = ", ".join(sorted({str(r.get("dtype")) for r in records})) or "-"
    print_table(records, format, RUNTIME_COLUMNS, columns,
                 f"Runtime on {devices}, {dtypes} (latency per forward of batch x views clips; "
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
        err(f"note: {note}")
    for r in result.records:
        if r.get("status", "ok") != "ok":
            where = f"{r['variant']} @{r.get('frames')}" + (f" batch {r['batch']}" if "batch" in r else "")
            err(f"{r['status']}: {where}: {r.get('error', '')}")
    err(result.note)
    if result.stopped == "write-error":
        err(f"error: {result.error}")
        raise typer.Exit(1)
    if result.stopped == "interrupted":
        raise typer.Exit(130)
    if result.failed or result.stopped == "incomplete":
        raise typer.Exit(1)


