"""`tembench check`, `tembench compare` and `tembench sanity`: CI regression gates and the motion benchmark."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tembench.cli.app import PatternsArg, app, progress_lines
from tembench.report.render import OutputFormat, print_rows


class GateFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    json = "json"
    github = "github"


GATE_COLUMNS = ["gate", "key", "metric", "baseline", "current", "status", "detail"]
GatesOpt = Annotated[str, typer.Option("--gates", help="Gates to run, comma separated: cost, latency, accuracy.")]
GateFormatOpt = Annotated[GateFormat, typer.Option("--format", "-f", case_sensitive=False,
                                                   help="table, markdown (pull-request comment), json, or "
                                                        "github (github-action-benchmark customSmallerIsBetter).")]


def _print_verdicts(verdicts, fmt: GateFormat) -> None:
    from tembench import gates

    if fmt is GateFormat.markdown:
        print(gates.to_markdown(verdicts), end="")
    elif fmt is GateFormat.json:
        print(json.dumps({"summary": gates.summary(verdicts), "verdicts": [v.as_dict() for v in verdicts]}, indent=2))
    elif fmt is GateFormat.github:
        print(json.dumps(gates.to_github_benchmark(verdicts), indent=2))
    else:
        print_rows(gates.gate_rows(verdicts), OutputFormat.table, title="What was compared, per gate",
                   empty="No gate produced a verdict.")
        shown = [v.as_dict() for v in verdicts if v.status != gates.PASS]
        if shown:
            print_rows(shown, OutputFormat.table, columns=GATE_COLUMNS, title="Everything that did not simply pass")


def _exit_for(verdicts, allow_uncompared: bool = False) -> None:
    from tembench import gates

    for line in gates.uncompared_lines(verdicts, allow_uncompared):
        print(line, file=sys.stderr)
    failed, line = gates.outcome(verdicts, allow_uncompared)
    print(line, file=sys.stderr)
    if failed:
        raise typer.Exit(1)


@app.command("check")
def check_cmd(
    patterns: PatternsArg = None,
    baseline: Annotated[Path, typer.Option(help="Directory of the committed baselines.")] = Path("results/baselines"),
    gates_: GatesOpt = "cost,latency,accuracy",
    accept: Annotated[bool, typer.Option("--accept", help="Rewrite the baselines with the current measurements.")] = False,
    format: GateFormatOpt = GateFormat.table,
    base: Annotated[Optional[str], typer.Option(
        "--base", metavar="REF", help="Latency on any machine: measure this commit, branch or tag (e.g. origin/main, "
                                      "HEAD~1) and the current tree side by side, here, in one run, and compare those "
                                      "(REF is checked out into a temporary git worktree). Cost and accuracy still "
                                      "use the committed baselines.")] = None,
    latency_budget: Annotated[Optional[float], typer.Option(
        "--latency-budget", metavar="SECONDS", help="Seconds for the whole latency gate (default: 120 with --base, "
                                                    "for the four built-in CPU cases on 2 cores; 4.5 per case "
                                                    "without).")] = None,
    allow_uncompared: Annotated[bool, typer.Option(
        "--allow-uncompared", help="Pass even when a gate compared nothing because its baseline is not comparable "
                                   "here (a latency baseline from another machine and no --base); says what was "
                                   "skipped.")] = False,
) -> None:
    """Measure now and compare with the committed baselines; exit 1 on a regression.

    Cost (FLOPs and params, exact, per module) always; latency against the committed baseline only on
    the machine whose fingerprint it carries, or on any machine with --base REF (REF and the current tree
    measured side by side in interleaved rounds, each side in a process of its own); the motion-benchmark
    accuracy always (on the same dataset fingerprint). Fails closed: no baseline, an unreadable or empty
    one (exit 2), a gate that cannot run, a gate that compared nothing because its baseline is not
    comparable here (unless --allow-uncompared), or nothing compared at all (exit 1) never pass. Baselines
    are written only with --accept. Progress goes to stderr, one line per model on a non-terminal (CI logs).
    """
    from tembench.api import check

    with progress_lines("check") as progress:
        verdicts = check(str(baseline), [g.strip() for g in gates_.split(",") if g.strip()], accept=accept,
                         progress=progress, patterns=patterns, base=base, latency_budget=latency_budget)
    _print_verdicts(verdicts, format)
    if accept:
        from tembench.check import GATE_FILES

        written = [GATE_FILES[g] for g in dict.fromkeys(v.gate for v in verdicts) if g in GATE_FILES]
        print(f"wrote {', '.join(written) or 'no baseline'} in {baseline}/ (each read back and compared with what "
              "was just measured, above)", file=sys.stderr)
    _exit_for(verdicts, allow_uncompared)


@app.command("compare")
def compare_cmd(
    a: Annotated[str, typer.Argument(help="Baseline: a run record (JSON path, e.g. results/baselines/cost.json) "
                                          "or a run id (prefix) in the results directory.")],
    b: Annotated[str, typer.Argument(help="Candidate of the same kind: a run record path or run id.")],
    format: GateFormatOpt = GateFormat.table,
) -> None:
    """Compare two run records of the same kind (cost, latency or accuracy); exit 1 on a regression
    or when nothing could be compared."""
    from tembench.api import compare

    verdicts = compare(a, b)
    _print_verdicts(verdicts, format)
    _exit_for(verdicts)


@app.command("sanity")
def sanity_cmd(
    patterns: PatternsArg = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs per model (default 10).")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", case_sensitive=False)] = OutputFormat.table,
    out: Annotated[Optional[Path], typer.Option(help="Directory for the run record.")] = None,
) -> None:
    """Motion-sensitivity benchmark: train the small `motion/*` variants on synthetic direction-of-motion
    clips (fixed seeds, CPU) and check that order-blind models stay at chance and temporal ones learn."""
    import time

    from tembench.api import sanity

    t0 = time.perf_counter()
    records, path = sanity(patterns, epochs, None if out is None else str(out), on_record=lambda r: print(
        f"{r['variant']}: top-1 {r['top1']:.1f}% in {r['train_s']:.0f} s — {r['purpose']}", file=sys.stderr))
    rows = [{k: v for k, v in r.items() if k != "correct"} for r in records]
    print_rows(rows, format, columns=["variant", "temporal", "top1", "chance", "train_s", "purpose"]
               if format is OutputFormat.table else None, title="Motion-sensitivity benchmark (2 classes, chance 50%)")
    print(f"total {time.perf_counter() - t0:.0f} s; saved {path}", file=sys.stderr)
    if any(r["purpose"].startswith("FAILS") for r in records):
        raise typer.Exit(1)
