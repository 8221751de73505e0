"""Dataset readers: the annotation files of each dataset, in their published on-disk formats.

Each reader returns a :class:`VideoDataset`: the class names in head order and one :class:`VideoItem`
per video of the split (id, where its media is, label(s), frame count when the list gives one). Media
are not opened here; a missing video or frame folder is kept as an item and reported when evaluated.
Formats and label-id conventions are those of ``research/datasets-and-eval-protocols.md`` §1:

==============  =========================================================================================
``ssv1``        ``something-something-v1-labels.csv`` (one name a line), ``-train.csv``/``-validation.csv``
                (``id;name``), frames ``20bn-something-something-v1/<id>/00001.jpg``. Label ids: file order
                (mmaction, ``label_order='file'``) or sorted names (TSM, ``'sorted'``; equal to SSv2 ids)
``ssv2``        ``something-something-v2-labels.json`` (name -> id), ``-train.json``/``-validation.json``
                (``id``, ``template`` with ``[something]``: brackets removed, then looked up), videos
                ``20bn-something-something-v2/<id>.webm``
``k400``        ``kinetics_{train,val,test}.csv`` (``label,youtube_id,time_start,time_end,split[,is_cc]``),
                clips ``<youtube_id>_<start:06d>_<end:06d>.mp4`` anywhere under the root; ids = sorted names
``diving48``    ``Diving48_V2_{train,test}.json`` (``vid_name``, ``label``), ``Diving48_vocab.json``,
                videos ``rgb/<vid_name>.mp4``; the test split is the evaluation split
``charades``    ``Charades_v1_{train,test}.csv`` (``actions``: ``cNNN start end;...``, multi-label),
                ``Charades_v1_classes.txt``, frames ``Charades_v1_rgb/<id>/<id>-000001.jpg``
``list``        generic lists: ``path num_frames label [label ...]`` (frame folders: TSM, mmaction rawframes)
                or ``path label`` (videos: mmaction, PySlowFast, EMIM's ``name.mp4,label``)
==============  =========================================================================================
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tembench.errors import UsageError

FORMATS = ("ssv1", "ssv2", "k400", "diving48", "charades", "list")
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi", ".mov")
SPLIT_NAMES = {"val": "validation", "validation": "validation", "train": "train", "test": "test"}


@dataclass(frozen=True)
class VideoItem:
    id: str
    path: str  # video file or frame folder (may not exist: reported at evaluation)
    kind: str  # "video" | "frames"
    label: int | tuple[int, ...]  # one class id, or a tuple of ids for multi-label datasets
    num_frames: int | None = None  # from the list; None: counted when opened
    template: str | None = None  # frame file name template (frames only); None: detected
    start_index: int = 1


@dataclass
class VideoDataset:
    format: str
    split: str
    root: str
    classes: list[str]
    items: list[VideoItem]
    multilabel: bool = False
    label_order: str = ""
    annotation_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def annotation_hash(self) -> str:
        """sha256 of the canonical split list (id, media kind, label(s), listed frame count) and class names."""
        h = hashlib.sha256()
        h.update(json.dumps(self.classes).encode())
        for it in self.items:
            label = list(it.label) if isinstance(it.label, tuple) else it.label
            h.update(json.dumps([it.id, it.kind, label, it.num_frames]).encode())
        return h.hexdigest()


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UsageError(f"{what} not found: {path}")
    return path


def _split(split: str, fmt: str, allowed: tuple[str, ...]) -> str:
    s = SPLIT_NAMES.get(split)
    if s is None or s not in allowed:
        raise UsageError(f"{fmt} has splits {', '.join(allowed)} (val = validation); got {split!r}")
    return s


def _media_dir(root: Path, name: str) -> Path:
    return root / name if (root / name).is_dir() else root


# ------------------------------------------------------------------------------------------------
# Something-Something V1 / V2
# ------------------------------------------------------------------------------------------------

def read_ssv1(root: Path, split: str = "val", label_order: str = "file") -> VideoDataset:
    s = _split(split, "ssv1", ("train", "validation"))
    labels_file = _need(root / "something-something-v1-labels.csv", "SSv1 label list")
    names = [ln.strip() for ln in labels_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if label_order not in ("file", "sorted"):
        raise UsageError(f"SSv1 label order is 'file' (mmaction) or 'sorted' (TSM), got {label_order!r}")
    classes = sorted(names) if label_order == "sorted" else names
    index = {n: i for i, n in enumerate(classes)}
    split_file = _need(root / f"something-something-v1-{s}.csv", f"SSv1 {s} list")
    frames_dir = _media_dir(root, "20bn-something-something-v1")
    items = []
    for n, line in enumerate(split_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        vid, _, name = line.partition(";")
        if name.strip() not in index:
            raise UsageError(f"{split_file}:{n}: class {name.strip()!r} is not in {labels_file.name}")
        items.append(VideoItem(vid.strip(), str(frames_dir / vid.strip()), "frames", index[name.strip()],
                               template="{:05d}.jpg", start_index=1))
    return VideoDataset("ssv1", split, str(root), classes, items, label_order=label_order,
                        annotation_files=[str(labels_file), str(split_file)])


def normalise_template(template: str) -> str:
    """SSv2 templates -> label names: every ``[`` and ``]`` removed, nothing else changed."""
    return template.replace("[", "").replace("]", "")


def read_ssv2(root: Path, split: str = "val") -> VideoDataset:
    s = _split(split, "ssv2", ("train", "validation"))
    labels_file = _need(root / "something-something-v2-labels.json", "SSv2 labels")
    mapping = _load_json(labels_file)
    classes_by_id = {int(v): k for k, v in mapping.items()}
    if sorted(classes_by_id) != list(range(len(classes_by_id))):
        raise UsageError(f"{labels_file}: label ids are not 0..{len(classes_by_id) - 1}")
    classes = [classes_by_id[i] for i in range(len(classes_by_id))]
    split_file = _need(root / f"something-something-v2-{s}.json", f"SSv2 {s} list")
    videos_dir = _media_dir(root, "20bn-something-something-v2")
    items = []
    for entry in _load_json(split_file):
        name = normalise_template(entry["template"])
        if name not in mapping:
            raise UsageError(f"{split_file}: video {entry['id']}: template {entry['template']!r} is not in {labels_file.name}")
        items.append(VideoItem(str(entry["id"]), str(_find_video(videos_dir, str(entry["id"]))), "video", int(mapping[name])))
    return VideoDataset("ssv2", split, str(root), classes, items, label_order="labels.json",
                        annotation_files=[str(labels_file), str(split_file)])


def _find_video(directory: Path, stem: str) -> Path:
    for ext in VIDEO_EXTS:
        p = directory / f"{stem}{ext}"
        if p.is_file():
            return p
    return directory / f"{stem}.webm"


def _load_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


# ------------------------------------------------------------------------------------------------
# Kinetics-400
# ------------------------------------------------------------------------------------------------

def kinetics_clip_name(youtube_id: str, start, end) -> str:
    """``<id>_<start:06d>_<end:06d>`` as the download scripts and mmaction name the clips."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}"


def _read_kinetics_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if rows and "youtube_id" not in rows[0]:
        raise UsageError(f"{path}: expected a header with label,youtube_id,time_start,time_end,split")
    return rows


def read_k400(root: Path, split: str = "val") -> VideoDataset:
    s = {"validation": "val"}.get(_split(split, "k400", ("train", "validation", "test")), split)
    csv_files = {k: root / f"kinetics_{k}.csv" for k in ("train", "val")}
    split_file = _need(root / f"kinetics_{s}.csv", f"Kinetics {s} CSV")
    names = set()
    for p in csv_files.values():
        if p.is_file():
            names.update(r["label"].strip().strip('"') for r in _read_kinetics_csv(p) if r.get("label"))
    classes = sorted(names, key=lambda n: n.replace(" ", "_"))
    index = {n: i for i, n in enumerate(classes)}
    found = {}
    for dirpath, _, files in os.walk(root):
        for fn in files:
            stem, ext = os.path.splitext(fn)
            if ext.lower() in VIDEO_EXTS:
                found.setdefault(stem, os.path.join(dirpath, fn))
    items = []
    for r in _read_kinetics_csv(split_file):
        stem = kinetics_clip_name(r["youtube_id"], r["time_start"], r["time_end"])
        label = r.get("label", "").strip().strip('"')
        if label not in index:
            raise UsageError(f"{split_file}: video {stem}: label {label!r} unknown")
        items.append(VideoItem(stem, found.get(stem, str(root / s / f"{stem}.mp4")), "video", index[label]))
    return VideoDataset("k400", split, str(root), classes, items, label_order="sorted names",
                        annotation_files=[str(p) for p in csv_files.values() if p.is_file()])


# ------------------------------------------------------------------------------------------------
# Diving48 (V2 annotations)
# ------------------------------------------------------------------------------------------------

def read_diving48(root: Path, split: str = "val") -> VideoDataset:
    s = _split(split, "diving48", ("train", "validation", "test"))
    s = "test" if s == "validation" else s
    vocab_file = _need(root / "Diving48_vocab.json", "Diving48 vocabulary")
    classes = ["+".join(v) for v in _load_json(vocab_file)]
    split_file = _need(root / f"Diving48_V2_{s}.json", f"Diving48 V2 {s} list")
    videos_dir = _media_dir(root, "rgb")
    items = []
    for e in _load_json(split_file):
        label = int(e["label"])
        if not 0 <= label < len(classes):
            raise UsageError(f"{split_file}: video {e['vid_name']}: label {label} outside the vocabulary")
        items.append(VideoItem(e["vid_name"], str(videos_dir / f"{e['vid_name']}.mp4"), "video", label))
    return VideoDataset("diving48", split, str(root), classes, items, label_order="vocabulary index",
                        annotation_files=[str(vocab_file), str(split_file)])


# ------------------------------------------------------------------------------------------------
# Charades v1 (multi-label)
# ------------------------------------------------------------------------------------------------

_ACTION = re.compile(r"^c(\d{3})\s+[-\d.]+\s+[-\d.]+$")


def read_charades(root: Path, split: str = "val") -> VideoDataset:
    s = _split(split, "charades", ("train", "validation", "test"))
    s = "test" if s == "validation" else s
    classes_file = _need(root / "Charades_v1_classes.txt", "Charades class list")
    classes = []
    for n, line in enumerate(classes_file.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            code, _, name = line.strip().partition(" ")
            if code != f"c{len(classes):03d}":
                raise UsageError(f"{classes_file}:{n}: expected class c{len(classes):03d}, got {code!r}")
            classes.append(name)
    split_file = _need(root / f"Charades_v1_{s}.csv", f"Charades {s} CSV")
    frames_dir = _media_dir(root, "Charades_v1_rgb")
    items = []
    with split_file.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            labels = set()
            for a in filter(None, (x.strip() for x in (row.get("actions") or "").split(";"))):
                m = _ACTION.match(a)
                if not m:
                    raise UsageError(f"{split_file}: video {row['id']}: bad action {a!r} (expected 'cNNN start end')")
                labels.add(int(m.group(1)))
            vid = row["id"]
            items.append(VideoItem(vid, str(frames_dir / vid), "frames", tuple(sorted(labels)),
                                   template=vid + "-{:06d}.jpg", start_index=1))
    return VideoDataset("charades", split, str(root), classes, items, multilabel=True, label_order="cNNN",
                        annotation_files=[str(classes_file), str(split_file)])


# ------------------------------------------------------------------------------------------------
# Generic lists
# ------------------------------------------------------------------------------------------------

def read_list(root: Path, list_file: Path, classes_file: Path | None = None, multilabel: bool = False) -> VideoDataset:
    """``path num_frames label [label ...]`` (frame folders) or ``path label`` (videos), space or comma
    separated; paths relative to ``root``. Class names from ``classes_file`` (one a line, or ``id,name``
    / ``id name``), else ``category.txt`` beside the list, else the label numbers."""
    list_file = _need(list_file if list_file.is_absolute() or list_file.is_file() else root / list_file, "video list")
    items = []
    max_label = -1
    for n, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(",") if "," in line and " " not in line else line.split()
        try:
            if len(parts) == 2:
                path, labels, frames = parts[0], [int(parts[1])], None
            elif len(parts) >= 3:
                path, frames, labels = parts[0], int(parts[1]), [int(x) for x in parts[2:]]
            else:
                raise ValueError
        except ValueError:
            raise UsageError(f"{list_file}:{n}: expected 'path num_frames label' or 'path label', got {line!r}") from None
        full = root / path
        is_video = frames is None or full.suffix.lower() in VIDEO_EXTS
        kind = "video" if is_video else "frames"
        label = tuple(sorted(set(labels))) if multilabel else labels[0]
        max_label = max(max_label, *labels)
        items.append(VideoItem(path, str(full), kind, label, num_frames=None if is_video else frames))
    classes_file = classes_file or (list_file.parent / "category.txt")
    if classes_file.is_file():
        classes = []
        for line in classes_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            m = re.match(r"^(\d+)[, ](.+)$", line.strip())
            classes.append(m.group(2).strip() if m and not line.strip().isdigit() else line.strip())
        if classes and classes[0] in ("name", "id,name"):
            classes = classes[1:]
    else:
        classes = [str(i) for i in range(max_label + 1)]
    if max_label >= len(classes):
        raise UsageError(f"{list_file}: label {max_label} but only {len(classes)} classes")
    files = [str(list_file)] + ([str(classes_file)] if classes_file.is_file() else [])
    short = sum(1 for it in items if it.num_frames is not None and it.num_frames < 3)
    notes = [f"{short} videos have fewer than 3 frames; kept (TSM's single-model test drops them)"] if short else []
    return VideoDataset("list", list_file.stem, str(root), classes, items, multilabel=multilabel,
                        label_order="list", annotation_files=files, notes=notes)


# ------------------------------------------------------------------------------------------------
# Detection and entry point
# ------------------------------------------------------------------------------------------------

MARKERS = {
    "ssv1": ("something-something-v1-labels.csv",),
    "ssv2": ("something-something-v2-labels.json",),
    "k400": ("kinetics_val.csv", "kinetics_train.csv", "kinetics_test.csv"),
    "diving48": ("Diving48_vocab.json",),
    "charades": ("Charades_v1_classes.txt",),
}


def detect_format(root: Path) -> str:
    found = [fmt for fmt, files in MARKERS.items() if any((root / f).is_file() for f in files)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"cannot tell the dataset format of {root}: none of "
                         f"{', '.join(f for fs in MARKERS.values() for f in fs)} is there; "
                         "pass --dataset-format, or --list FILE for a generic list")
    raise UsageError(f"{root} holds annotation files of several datasets ({', '.join(found)}); pass --dataset-format")


def read_dataset(root: str | Path, split: str = "val", fmt: str | None = None, list_file: str | Path | None = None,
                 label_order: str | None = None, classes_file: str | Path | None = None) -> VideoDataset:
    """Read one split of a dataset; ``fmt`` None or 'auto' detects it from the annotation files."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"data root {root} does not exist or is not a directory")
    if list_file is not None:
        return read_list(root, Path(list_file), Path(classes_file) if classes_file else None,
                         multilabel=fmt == "charades")
    if fmt in (None, "auto"):
        fmt = detect_format(root)
    if fmt == "ssv1":
        return read_ssv1(root, split, label_order or "file")
    if label_order not in (None, "file", "sorted") or (label_order and fmt != "ssv1"):
        raise UsageError(f"--label-order applies to ssv1 only (its label ids are file order or sorted names); {fmt} has one convention")
    readers = {"ssv2": read_ssv2, "k400": read_k400, "diving48": read_diving48, "charades": read_charades}
    if fmt not in readers:
        raise UsageError(f"unknown dataset format {fmt!r}; one of {', '.join(FORMATS)} (list needs --list FILE)")
    return readers[fmt](root, split)
