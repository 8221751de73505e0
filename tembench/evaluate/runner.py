"""``tembench eval``: accuracy of a registered variant on a dataset split under a named protocol.

Flow: read the split (:mod:`tembench.data.formats`) -> pick the protocol preset and apply overrides ->
build the model (random weights, seeded, unless a checkpoint is given) -> evaluate every video of this
process's shard, one forward pass per video over all its views -> gather -> rank 0 fuses the views,
computes the metrics and writes one record (plus the per-view logits beside it, ``<run>.logits.npz``).

Robustness: a video that cannot be read is counted and listed, the rest goes on. Logits are saved to
``<out>/partial/`` every ``save_every`` videos (and when the run stops on an error or Ctrl-C); a rerun
with the same variant, data, protocol, checkpoint and seed resumes from them, and they are removed
when the run completes.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tembench.data.formats import VideoDataset, read_dataset
from tembench.data.loader import ViewDataset, collate_one
from tembench.data.protocols import Protocol, default_protocol, get_protocol
from tembench.data.synth import synthetic_summary
from tembench.errors import UsageError, one_line
from tembench.evaluate import distributed
from tembench.evaluate.fingerprint import dataset_fingerprint
from tembench.evaluate.fusion import FUSIONS, fuse
from tembench.evaluate.metrics import compute, ranking
from tembench.runtime.memory import free_memory
from tembench.signals import raise_if_stopped, sigterm_as_interrupt

SUMMARY_KEYS = ("variant", "dataset", "split", "protocol", "views", "fusion", "weights", "videos", "evaluated",
                "failed", "top1", "top5", "mean_class_acc", "map")


@dataclass
class EvalSetup:
    spec: object
    dataset: VideoDataset
    protocol: Protocol
    frames: int
    fusion: str
    fingerprint: dict = field(default_factory=dict)


def prepare(variant: str, data: str | Path, split: str = "val", protocol: str | None = None,
            views: str | None = None, size: int | None = None, fusion: str | None = None,
            dataset_format: str | None = None, list_file: str | Path | None = None, label_order: str | None = None,
            classes_file: str | Path | None = None, limit: int | None = None) -> EvalSetup:
    """Everything an evaluation needs except the model; all input checks happen here, before any work."""
    from tembench.grid import parse_views
    from tembench.registry import get_variant

    spec = get_variant(variant)
    if spec.is_ensemble:
        raise UsageError(f"{spec.id} is an ensemble; evaluate its members ({', '.join(m.variant for m in spec.members)})")
    ds = read_dataset(data, split, dataset_format, list_file, label_order, classes_file)
    if limit is not None:
        if limit <= 0:
            raise UsageError(f"--limit must be positive, got {limit}")
        ds.items = ds.items[:limit]
    if not ds.items:
        raise UsageError(f"the {ds.split} split of {data} lists no video")
    proto = get_protocol(protocol or default_protocol(spec.arch, spec.family, ds.format))
    if views is not None:
        v_frames, crops, clips = parse_views(views)
        proto = proto.with_views(v_frames, crops, clips)
    proto = proto.with_size(size)
    if fusion is not None and fusion not in FUSIONS:
        raise UsageError(f"unknown fusion {fusion!r}; one of {', '.join(FUSIONS)}")
    frames = proto.frames or spec.frames
    setup = EvalSetup(spec, ds, proto, frames, fusion or proto.fusion)
    setup.fingerprint = dataset_fingerprint(ds, proto, frames)
    return setup


def build(setup: EvalSetup, checkpoint: str | Path | None = None, checkpoint_format: str = "auto",
          trust_checkpoint: bool = False, strict: bool = False, seed: int = 0):
    """(model in eval mode, checkpoint report dict or None)."""
    from tembench.evaluate.checkpoint import load_checkpoint
    from tembench.models.build import build_model

    torch.manual_seed(seed)
    try:
        model = build_model(setup.spec, setup.frames, num_classes=setup.dataset.num_classes)
    except (ValueError, KeyError) as e:
        raise UsageError(f"cannot build {setup.spec.id} for {setup.frames} frames: {e}") from None
    report = None
    if checkpoint is not None:
        report = load_checkpoint(model, checkpoint, trust=trust_checkpoint, strict=strict, source=checkpoint_format)
    return model.eval(), report


def class_features(model, path: str | Path | None, report=None) -> dict | None:
    """Give a model with an X-CLIP/ILA text head (a ``text_features`` buffer) its class text features
    from ``path`` (a (classes, E) tensor saved with ``torch.save``), and say where the features it
    uses come from: ``file`` (path and sha256), ``checkpoint`` or ``none`` (zeros). None for other
    models; ``path`` for them is an error."""
    from tembench.evaluate.checkpoint import file_sha256

    buffers = dict(model.named_buffers())
    if "text_features" not in buffers:
        if path is not None:
            raise UsageError(f"--class-features {path}: this model has no class text features (only the "
                             "X-CLIP/ILA heads 'xclip' and 'xclip-noprompt' use them)")
        return None
    expected = tuple(buffers["text_features"].shape)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"class features {p} does not exist")
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  (any unreadable file is one user error)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(f"class features {p} is not a tensor saved with torch.save ({first})") from None
        if not isinstance(obj, torch.Tensor) or not obj.is_floating_point():
            what = f"a {obj.dtype} tensor" if isinstance(obj, torch.Tensor) else f"a {type(obj).__name__}"
            raise UsageError(f"class features {p} holds {what}; expected a float tensor of shape "
                             f"(classes, E) = {expected}")
        if tuple(obj.shape) != expected:
            raise UsageError(f"class features {p} have shape {tuple(obj.shape)}; expected (classes, E) = {expected} "
                             f"({expected[0]} classes of the dataset, embedding width {expected[1]})")
        if not torch.isfinite(obj).all():
            raise UsageError(f"class features {p} contain NaN or infinite values")
        model.set_class_features(obj.float())
        return {"source": "file", "path": str(p), "sha256": file_sha256(p), "shape": list(expected)}
    if report is not None and "text_features" in report.loaded and bool(buffers["text_features"].any()):
        return {"source": "checkpoint", "path": report.path, "sha256": report.sha256, "shape": list(expected)}
    return {"source": "none", "shape": list(expected),
            "warning": "class text features are zeros: the logits carry no class information from text; "
                       "pass --class-features FILE.pt"}


def _key(setup: EvalSetup, report, seed: int, text: dict | None = None) -> str:
    text = json.dumps({"variant": setup.spec.id, "frames": setup.frames, "fp": setup.fingerprint,
                       "weights": report.sha256 if report else f"random-{seed}",
                       **({"text": text.get("sha256") or text["source"]} if text else {})},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_partials(directory: Path, key: str) -> dict[int, np.ndarray]:
    done: dict[int, np.ndarray] = {}
    for p in sorted(directory.glob(f"eval-{key}-*.npz")):
        try:
            with np.load(p, allow_pickle=False) as z:
                for i, lg in zip(z["indices"].tolist(), z["logits"]):
                    done.setdefault(int(i), lg)
        except (OSError, ValueError, KeyError) as e:
            print(f"warning: ignoring unreadable partial logits {p}: {e}", file=sys.stderr)
    return done


def run_model(model, views: torch.Tensor, max_views: int | None = None) -> np.ndarray:
    """(V, 3, T, H, W) -> (V, K) float32 logits; views go through in chunks of ``max_views``."""
    chunk = max_views or views.shape[0]
    with torch.inference_mode():
        out = torch.cat([model(views[i:i + chunk]) for i in range(0, views.shape[0], chunk)])
    return out.float().numpy()


def evaluate(variant: str, data: str | Path, split: str = "val", protocol: str | None = None, views: str | None = None,
             size: int | None = None, checkpoint: str | Path | None = None, checkpoint_format: str = "auto",
             trust_checkpoint: bool = False, strict: bool = False, fusion: str | None = None,
             out: str | Path | None = None, open_run: Callable[[dict, list | None], object] | None = None,
             dataset_format: str | None = None,
             list_file: str | Path | None = None, label_order: str | None = None,
             classes_file: str | Path | None = None, workers: int = 0, limit: int | None = None, seed: int = 0,
             resume: bool = True, save_every: int = 50, max_views: int | None = None,
             on_progress: Callable[[int, int], None] | None = None,
             on_note: Callable[[str], None] | None = None, command: list[str] | None = None,
             class_features_file: str | Path | None = None) -> dict | None:
    """Evaluate and return the record (``None`` on ranks other than 0 of a distributed run).

    ``out``: the directory of the run's partial logits (and of its run file); ``open_run(params, command)``
    opens the run file, an object with ``path``, ``run_id``, ``data``, ``add(record)`` and ``close(status,
    error=None)`` (:class:`tembench.results.store.RunWriter`; :func:`tembench.api.evaluate` passes one);
    without it nothing is written but the partial logits.
    ``class_features_file``: the class text features of an X-CLIP/ILA head (see :func:`class_features`)."""
    if out is None:
        raise ValueError("evaluate() needs the output directory `out` (tembench.api.evaluate defaults it)")
    note = on_note or (lambda s: None)
    if workers < 0:
        raise UsageError(f"--workers must be >= 0, got {workers}")
    if save_every <= 0:
        raise UsageError(f"--save-every must be positive, got {save_every}")
    setup = prepare(variant, data, split, protocol, views, size, fusion, dataset_format, list_file, label_order,
                    classes_file, limit)
    model, report = build(setup, checkpoint, checkpoint_format, trust_checkpoint, strict, seed)
    text = class_features(model, class_features_file, report)
    info = distributed.init()
    ds, proto = setup.dataset, setup.protocol
    out_dir = Path(out)
    key = _key(setup, report, seed, text)
    partial_dir = out_dir / "partial"
    done = _load_partials(partial_dir, key) if resume else {}
    resumed = len(done)
    if info.is_main:
        if report is None:
            note(f"no --checkpoint: {setup.spec.id} is randomly initialised (seed {seed}); "
                 "the accuracy only shows that the pipeline runs")
        else:
            note(f"checkpoint {Path(checkpoint).name} ({report.source}): {report.summary()}")
        if text is not None:
            if text["source"] == "none":
                note(f"warning: {text['warning']}")
            else:
                note(f"class text features from the {text['source']} {Path(text['path']).name}")
        if resumed:
            note(f"resuming: {resumed} of {len(ds.items)} videos already evaluated (from {partial_dir})")
    writer = None
    if info.is_main and open_run is not None:
        writer = open_run({
            "variant": setup.spec.id, "data": str(data), "split": split, "protocol": proto.name,
            "views": views, "size": size, "checkpoint": str(checkpoint) if checkpoint else None,
            "fusion": setup.fusion, "dataset_format": ds.format, "seed": seed, "world_size": info.world,
            "class_features": str(class_features_file) if class_features_file else None}, command)

    remaining = [i for i in range(len(ds.items)) if i not in done]
    mine = distributed.shard(remaining, info)
    new: dict[int, np.ndarray] = {}
    failures: dict[int, str] = {}
    attempt = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    partial_path = partial_dir / f"eval-{key}-{attempt}-rank{info.rank}of{info.world}.npz"
    n_views = proto.crops * proto.clips

    def save_partial():
        if new:
            idx = sorted(new)
            _save_npz(partial_path, indices=np.array(idx, dtype=np.int64), logits=np.stack([new[i] for i in idx]))

    t0 = time.monotonic()
    try:
        loader = torch.utils.data.DataLoader(ViewDataset(ds.items, proto, setup.frames, mine), batch_size=1,
                                             num_workers=workers, collate_fn=collate_one)
        since_save = 0
        with sigterm_as_interrupt():
            for count, item in enumerate(loader, 1):
                if item.error is not None:
                    failures[item.index] = item.error
                else:
                    try:
                        logits = run_model(model, item.views, max_views)
                    except Exception as e:  # noqa: BLE001 -- a video the model fails on is recorded; the run goes on
                        raise_if_stopped()  # unless the error is a stop (SIGTERM, Ctrl-C) the model swallowed
                        failures[item.index] = f"model forward failed: {one_line(e)}"
                        free_memory(str(next(model.parameters()).device), collect=True)
                        continue
                    raise_if_stopped()
                    new[item.index] = logits
                    since_save += 1
                    if since_save >= save_every:
                        save_partial()
                        since_save = 0
                if on_progress:
                    on_progress(count, len(mine))
    except BaseException as e:
        save_partial()
        measured = len(new) + resumed
        if writer:
            status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
            writer.data["partial_logits"] = str(partial_dir)
            writer.close(status, error=None if status == "interrupted" else f"{type(e).__name__}: {e}")
        note(f"stopped after {measured} of {len(ds.items)} videos; their logits are kept in {partial_dir} "
             "and a rerun resumes from them")
        distributed.finish(info)
        raise
    elapsed = time.monotonic() - t0

    gathered = distributed.gather((new, failures, elapsed), info)
    if not info.is_main:
        distributed.barrier(info)
        distributed.finish(info)
        return None
    logits_by_index = dict(done)
    all_failures: dict[int, str] = {}
    for part_new, part_failed, _ in gathered:
        logits_by_index.update(part_new)
        all_failures.update(part_failed)
    elapsed_max = max(g[2] for g in gathered)

    ok = sorted(logits_by_index)
    k = ds.num_classes
    logits = np.stack([logits_by_index[i] for i in ok]) if ok else np.zeros((0, n_views, k), np.float32)
    labels = [ds.items[i].label for i in ok]
    scores = fuse(logits, setup.fusion, ds.multilabel)
    metrics = compute(scores, labels if ds.multilabel else np.array(labels, dtype=np.int64), ds.multilabel, ds.classes)
    failed = [{"id": ds.items[i].id, "path": ds.items[i].path, "error": all_failures[i]} for i in sorted(all_failures)]
    record = {
        "variant": setup.spec.id,
        "arch": setup.spec.arch,
        "dataset": ds.format,
        "split": ds.split,
        "data_root": str(data),
        "protocol": proto.name,
        "views": proto.views(setup.frames),
        "frames": setup.frames,
        "input_size": proto.crop_size,
        "fusion": setup.fusion,
        "classes": k,
        "multilabel": ds.multilabel,
        "weights": Path(checkpoint).name if checkpoint else f"random init (seed {seed})",
        "randomly_initialised": checkpoint is None,
        "synthetic": synthetic_summary(data),  # `tembench data synth` wrote the data: its summary, else None
        "videos": len(ds.items),
        "evaluated": len(ok),
        "failed": len(failed),
        **{m: metrics[m] for m in ("top1", "top5", "mean_class_acc", "map") if m in metrics},
        "per_class": metrics["per_class"],
        "metric_rules": metrics["metric_rules"],
        # top-1 hit per evaluated video (dataset order), for paired tests between runs (McNemar)
        "correct": None if ds.multilabel else (ranking(scores)[:, 0] == np.array(labels, dtype=np.int64)).tolist()
        if ok else [],
        "failed_videos": failed,
        "checkpoint": report.as_dict() if report else None,
        "text_features": text,  # X-CLIP/ILA heads: where the class text features came from; else None
        "protocol_spec": proto.as_dict(),
        "dataset_fingerprint": setup.fingerprint,
        "dataset_notes": ds.notes,
        "world_size": info.world,
        "resumed_videos": resumed,
        "workers": workers,
        "seed": seed,
        "eval_s": round(elapsed_max, 3),
        "videos_per_s": round((len(ok) - resumed) / elapsed_max, 3) if elapsed_max > 0 else None,
        "logits_file": None,
    }
    if writer:
        logits_path = writer.path.with_name(writer.run_id + ".logits.npz")
        label_arr = (np.stack([np.isin(np.arange(k), lab).astype(np.int8) for lab in labels]) if ds.multilabel and ok
                     else np.array(labels, dtype=np.int64).reshape(len(ok), *((k,) if ds.multilabel else ())))
        _save_npz(logits_path, ids=np.array([ds.items[i].id for i in ok], dtype=str),
                  indices=np.array(ok, dtype=np.int64), logits=logits, labels=label_arr,
                  classes=np.array(ds.classes, dtype=str), multilabel=np.array(ds.multilabel))
        record["logits_file"] = logits_path.name
        writer.add(record)
        writer.close("complete")
        record["run_file"] = str(writer.path)
    for p in partial_dir.glob(f"eval-{key}-*.npz"):
        p.unlink(missing_ok=True)
    if failed:
        note(f"{len(failed)} of {len(ds.items)} videos could not be read and are not in the metrics "
             f"(listed in the record): {failed[0]['id']}: {failed[0]['error']}" + (" ..." if len(failed) > 1 else ""))
    distributed.barrier(info)
    distributed.finish(info)
    return record


def summary_row(record: dict) -> dict:
    return {k: record.get(k) for k in SUMMARY_KEYS if k in record}


# ------------------------------------------------------------------------------------------------
# Offline: recompute fusion and metrics from a run's stored per-view logits
# ------------------------------------------------------------------------------------------------

def load_logits(run: dict, record: dict) -> dict:
    name = record.get("logits_file")
    if not name:
        raise UsageError(f"run {run.get('run_id')} has no stored logits (it was not saved)")
    path = Path(run["path"]).parent / name if run.get("path") else Path(name)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read the logits of run {run.get('run_id')}: {path}: {e}") from None


def recompute(run: dict, fusion: str | None = None) -> list[dict]:
    """Metrics of every accuracy record of ``run`` (a loaded run file), fused with ``fusion``."""
    if run.get("kind") != "accuracy":
        raise UsageError(f"run {run.get('run_id')} is a {run.get('kind')} run, not an accuracy run")
    rows = []
    for rec in run["records"]:
        z = load_logits(run, rec)
        f = fusion or rec["fusion"]
        multilabel = bool(z["multilabel"])
        scores = fuse(z["logits"], f, multilabel)
        labels = z["labels"]
        m = compute(scores, labels, multilabel, [str(c) for c in z["classes"]])
        row = {k: rec.get(k) for k in ("variant", "dataset", "split", "protocol", "views", "weights", "videos",
                                       "evaluated", "failed")}
        row.update({"run_id": run["run_id"], "fusion": f, **{k: m[k] for k in ("top1", "top5", "mean_class_acc", "map")
                                                            if k in m}})
        row["per_class"] = m["per_class"]
        if not multilabel:
            from tembench.evaluate.metrics import confusion_matrix

            row["confusion"] = confusion_matrix(scores, labels, len(z["classes"])).tolist()
        row["dataset_fingerprint"] = rec.get("dataset_fingerprint")
        rows.append(row)
    return rows
