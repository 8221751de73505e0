"""Commands for accuracy: ``tembench eval``, ``tembench metrics`` and ``tembench data ...``.

Thin: parse, call :mod:`tembench.api`, print. Imported by :mod:`tembench.cli`, which owns ``app``.
"""
from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from tembench.cli.app import ColumnsOpt, FormatOpt, err, print_table, stderr_console, app
from tembench.report.render import OutputFormat, plural, print_rows

EVAL_COLUMNS = ["variant", "weights", "videos", "evaluated", "failed", "top1", "top5", "mean_class_acc", "map"]


class DatasetFormat(str, Enum):
    auto = "auto"
    ssv1 = "ssv1"
    ssv2 = "ssv2"
    k400 = "k400"
    diving48 = "diving48"
    charades = "charades"


class SynthFormat(str, Enum):
    ssv1 = "ssv1"
    ssv2 = "ssv2"
    k400 = "k400"
    diving48 = "diving48"
    charades = "charades"


class Fusion(str, Enum):
    prob = "prob"
    score = "score"
    sum = "sum"
    max = "max"


class CheckpointFormat(str, Enum):
    auto = "auto"
    tsn_official = "tsn-official"
    mmaction = "mmaction"
    clip = "clip"
    uniformer = "uniformer"
    plain = "plain"


def _progress(total_hint: str):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn(total_hint), BarColumn(), TextColumn("{task.completed}/{task.total} videos"),
                    TimeElapsedColumn(), TimeRemainingColumn(), transient=True, console=stderr_console(),
                    disable=not sys.stderr.isatty())


def _drop_nan(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if not (isinstance(v, float) and v != v)} for r in rows]


@app.command("eval")
def eval_cmd(
    variant: Annotated[str, typer.Argument(help="Registered variant id, e.g. tsm/tsm-r50 (see `tembench list`).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset root (official layout, or one written by "
                                       "`tembench data synth`; format detected).")],
    split: Annotated[str, typer.Option(help="Split: val (validation/test as the dataset names it) or train.")] = "val",
    protocol: Annotated[Optional[str], typer.Option(help="Protocol preset (see `tembench data protocols`). "
                                                    "Default: the variant's paper's protocol for this dataset.")] = None,
    views: Annotated[Optional[str], typer.Option(help="Override views: FRAMESxCROPSxCLIPS (e.g. 8x3x2) or CROPSxCLIPS.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Crop size (input height = width); the resize scales with it.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Weights: TSM/TAM official, mmaction2, ATM, ILA, "
                                                       "EMIM/UniFormer or tembench state dict. Default: random init.")] = None,
    checkpoint_format: Annotated[CheckpointFormat, typer.Option(help="Key layout of --checkpoint.")] = CheckpointFormat.auto,
    trust_checkpoint: Annotated[bool, typer.Option("--trust-checkpoint", help="Allow a checkpoint that needs full "
                                                   "unpickling (runs code from the file).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail unless every key loads (no missing, unexpected "
                                         "or shape-mismatched keys).")] = False,
    fusion: Annotated[Optional[Fusion], typer.Option(help="View fusion. Default: the protocol's.")] = None,
    class_features: Annotated[Optional[Path], typer.Option(
        "--class-features", help="X-CLIP/ILA heads (option head=xclip): the class text features, a float "
        "tensor of shape (classes, E) saved with torch.save, row i = class i of the dataset (CLIP's text "
        "encoder on the class names, e.g. the official code's encode_text of its tokenised labels; "
        "tembench has no text tower, and official ILA/X-CLIP checkpoints hold the text tower, not these "
        "features). Default: the checkpoint's text_features if it has them, else zeros (warned). The "
        "record says which were used (file and sha256).")] = None,
    format: FormatOpt = OutputFormat.table,
    columns: ColumnsOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Directory for the run record and logits. Default: "
                                                "$TEMBENCH_RUNS or results/runs.")] = None,
    dataset_format: Annotated[DatasetFormat, typer.Option(help="Dataset format (default: detected).")] = DatasetFormat.auto,
    list_file: Annotated[Optional[Path], typer.Option("--list", help="Generic list instead of the official "
                                                      "annotations: 'path num_frames label' or 'path label'.")] = None,
    classes_file: Annotated[Optional[Path], typer.Option("--classes", help="Class names for --list (one a line).")] = None,
    label_order: Annotated[Optional[str], typer.Option(help="SSv1 label ids: file (mmaction) or sorted (TSM).")] = None,
    workers: Annotated[int, typer.Option(help="Data loader worker processes.")] = 0,
    limit: Annotated[Optional[int], typer.Option(help="Only the first N videos of the split.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation and of random samplers.")] = 0,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Resume from saved partial logits.")] = True,
    save_every: Annotated[int, typer.Option(help="Save partial logits every N videos.")] = 50,
    max_views: Annotated[Optional[int], typer.Option(help="At most N views per forward pass (memory).")] = None,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also print per-class accuracy / AP.")] = False,
) -> None:
    """Accuracy of a variant on a dataset split, measured under a named paper protocol.

    Each video's views are fused (prob = mean softmax, score = mean logits, sum, max) and scored:
    top-1/top-5 (ties: lower class index first), mean class accuracy, or mAP for multi-label data.
    Per-view logits are stored with the run; `tembench metrics RUN --fusion ...` recomputes offline.
    Under `torchrun --nproc-per-node N -m tembench eval ...` the split is sharded and rank 0 writes.
    Models with an X-CLIP/ILA text head score classes against class text features: give them with
    --class-features FILE.pt (see there). A video that cannot be read, or that the model fails on, is
    recorded with its reason and the run goes on; the exit code is 1 when any video failed.
    """
    from tembench.api import evaluate

    progress = _progress(variant)
    state = {"task": None}

    def on_progress(done: int, total: int) -> None:
        if state["task"] is None:
            state["task"] = progress.add_task("eval", total=total)
        progress.update(state["task"], completed=done)

    with progress:
        record = evaluate(
            variant, str(data), split=split, protocol=protocol, views=views, size=size, checkpoint=checkpoint,
            checkpoint_format=checkpoint_format.value, trust_checkpoint=trust_checkpoint, strict=strict,
            fusion=fusion.value if fusion else None, out=out, dataset_format=dataset_format.value,
            list_file=list_file, classes_file=classes_file, label_order=label_order, workers=workers, limit=limit,
            seed=seed, resume=resume, save_every=save_every, max_views=max_views, on_progress=on_progress,
            on_note=lambda s: err(f"note: {s}"), command=["tembench", *sys.argv[1:]],
            class_features_file=class_features)
    if record is None:  # not rank 0
        return
    if format is OutputFormat.json:
        print_rows([record], format)
    else:
        title = (f"Accuracy (%) of {record['variant']} on {record['dataset']} {record['split']} -- "
                 f"{record['protocol']}, {record['views']} views, fusion {record['fusion']}")
        print_table(_drop_nan([record]), format, EVAL_COLUMNS, columns, title)
        if per_class:
            print_rows(record["per_class"], format, title="Per class")
    for f in record.get("failed_videos", [])[:5]:
        err(f"failed: {f['id']}: {f['error']}")
    err(f"{record['evaluated']} of {plural(record['videos'], 'video')} evaluated"
         + (f", {record['failed']} failed" if record["failed"] else "")
         + f"; saved to {record.get('run_file', '(not saved)')}")
    if record["failed"]:
        raise typer.Exit(1)


@app.command("metrics")
def metrics_cmd(
    runs: Annotated[list[str], typer.Argument(help="Accuracy run files or run ids.")],
    fusion: Annotated[Optional[Fusion], typer.Option(help="Fusion to apply to the stored per-view logits. "
                                                     "Default: the run's.")] = None,
    format: FormatOpt = OutputFormat.table,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also print per-class accuracy / AP.")] = False,
    confusion: Annotated[bool, typer.Option("--confusion", help="Also print the confusion matrix (rows: true class).")] = False,
    allow_mismatch: Annotated[bool, typer.Option("--allow-mismatch", help="Compare runs whose dataset "
                                                 "fingerprints differ.")] = False,
    runs_dir: Annotated[Optional[Path], typer.Option(help="Where to look up run ids.")] = None,
) -> None:
    """Recompute view fusion and metrics from stored per-view logits, without running a model."""
    from tembench.api import recompute_metrics

    rows = recompute_metrics(runs, fusion.value if fusion else None, allow_mismatch, str(runs_dir) if runs_dir else None)
    if format is OutputFormat.json:
        print_rows(rows, format)
        return
    cols = ["run_id", "variant", "fusion", "evaluated", "top1", "top5", "mean_class_acc", "map"]
    print_rows(_drop_nan(rows), format, columns=[c for c in cols if any(c in r for r in rows)],
               title="Accuracy (%) recomputed from stored logits")
    for r in rows:
        if per_class:
            print_rows(r["per_class"], format, title=f"{r['run_id']}: per class")
        if confusion and "confusion" in r:
            names = [p["class"] for p in r["per_class"]]
            print_rows([{"true": names[i], **{str(j): v for j, v in enumerate(row)}} for i, row in enumerate(r["confusion"])],
                       format, title=f"{r['run_id']}: confusion (columns: predicted class index)")


data_app = typer.Typer(help="Datasets: synthetic data, protocol presets, what a data root holds.",
                       no_args_is_help=True, rich_markup_mode=None)
app.add_typer(data_app, name="data")


@data_app.command("synth")
def synth_cmd(
    format: Annotated[SynthFormat, typer.Option("--format", help="On-disk format to write.")],
    out: Annotated[Path, typer.Option(help="New (or empty) directory.")],
    train: Annotated[int, typer.Option(help="Training videos per class.")] = 12,
    val: Annotated[int, typer.Option(help="Validation videos per class.")] = 4,
    size: Annotated[str, typer.Option(help="Frame size WIDTHxHEIGHT (even numbers).")] = "96x72",
    frames: Annotated[str, typer.Option(help="Video length in frames: N or MIN-MAX.")] = "24-40",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write a small dataset in a real on-disk format whose labels depend only on motion.

    Two squares move one after the other; the label is their order and directions (Charades: each
    square's direction, multi-label), so a frame-order-blind model (TSN) is at chance.
    """
    from tembench.api import synth_dataset

    s = synth_dataset(format.value, str(out), train, val, size, frames, seed)
    err(f"wrote {s['format']} synthetic data to {out}: {s['videos']['train']} train + {s['videos']['val']} val "
         f"videos, {len(s['classes'])} classes, {s['frame_size'][0]}x{s['frame_size'][1]}")


@data_app.command("protocols")
def protocols_cmd(format: FormatOpt = OutputFormat.table) -> None:
    """The named test protocols (sampling, resize, crops, normalisation, fusion) and their sources."""
    from tembench.api import protocols

    rows = protocols()
    cols = None if format is not OutputFormat.table else ["protocol", "views", "sampler", "resize", "crop", "norm",
                                                          "fusion", "description"]
    print_rows(rows, format, columns=cols, title=f"{len(rows)} protocol presets (views = frames x crops x clips)")


@data_app.command("info")
def info_cmd(
    data: Annotated[Path, typer.Argument(help="Dataset root.")],
    split: Annotated[str, typer.Option(help="Split.")] = "val",
    dataset_format: Annotated[DatasetFormat, typer.Option(help="Dataset format (default: detected).")] = DatasetFormat.auto,
    list_file: Annotated[Optional[Path], typer.Option("--list", help="Generic list file.")] = None,
    label_order: Annotated[Optional[str], typer.Option(help="SSv1: file or sorted.")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """What the dataset reader finds: format, classes, videos, and how many media files are missing."""
    from tembench.api import dataset_info

    info = dataset_info(str(data), split, dataset_format.value, str(list_file) if list_file else None, label_order)
    if format is OutputFormat.table:  # one record: a field per line reads better than one wide row
        print_rows([{"field": k, "value": v} for k, v in info.items()], format, title=f"{data} ({split})")
    else:
        print_rows([info], format)
