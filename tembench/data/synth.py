"""Synthetic datasets in the real on-disk formats, with labels that only motion can tell apart.

``write_synthetic("ssv1", "data/ssv1-synth")`` writes a small dataset exactly as the reader of that
format expects it (annotation files, file naming, media container): SSv1 JPEG folders, SSv2 VP9 WebM,
Kinetics-400 H.264 MP4 clips with the official CSV, Diving48 V2 JSON + MP4, Charades CSV + JPEG folders.

What the videos show: two squares, red and blue. Each is visible only while it moves, one after the
other (the first in the first half of the video, the second in the second half), along a horizontal
path between two random x positions at a random height. The label is

* single-label formats (8 classes): which square moves first x the direction of the first x the
  direction of the second (``Moving red [something] left to right, then blue [something] right to left``);
* Charades (multi-label, 4 classes): the direction of each square (``c000`` red left-to-right, ...).

Every class is a time re-ordering of the same frames: the random draws do not depend on the label, and
reversing a path or swapping the two halves only reorders frames, so for a given seed the videos of all
classes are the same multiset of frames (:func:`render`; tested). A model that sees the frames without
their order therefore cannot beat chance; TSN, which averages per-frame logits over a few sampled frames,
is at chance in expectation. A temporal model can learn the task.
"""
from __future__ import annotations

import csv
import json
import os
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tembench.data.formats import kinetics_clip_name
from tembench.errors import UsageError

SYNTH_FORMATS = ("ssv1", "ssv2", "k400", "diving48", "charades")
COLOURS = {"red": (220, 40, 40), "blue": (40, 90, 230)}
DIRECTIONS = ("left to right", "right to left")
GENERATOR_VERSION = 1
MARKER = "tembench-synth.json"  # in the root of every dataset written here: what wrote it, and how


@dataclass(frozen=True)
class Motion:
    first: str  # colour of the square that moves first
    d1: int  # 0 left to right, 1 right to left
    d2: int

    @property
    def second(self) -> str:
        return "blue" if self.first == "red" else "red"

    def class_id(self) -> int:
        return (0 if self.first == "red" else 4) + 2 * self.d1 + self.d2

    def template(self) -> str:
        return f"Moving {self.first} [something] {DIRECTIONS[self.d1]}, then {self.second} [something] {DIRECTIONS[self.d2]}"

    def name(self) -> str:
        return self.template().replace("[", "").replace("]", "")

    def charades_labels(self) -> tuple[int, int]:
        """c000 red l->r, c001 red r->l, c002 blue l->r, c003 blue r->l."""
        red = self.d1 if self.first == "red" else self.d2
        blue = self.d2 if self.first == "red" else self.d1
        return 0 + red, 2 + blue


MOTIONS = [Motion(first, d1, d2) for first in ("red", "blue") for d1 in (0, 1) for d2 in (0, 1)]
CLASS_NAMES = [m.name() for m in MOTIONS]
CHARADES_CLASSES = ["Red square moving left to right", "Red square moving right to left",
                    "Blue square moving left to right", "Blue square moving right to left"]


def render(motion: Motion, num_frames: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(num_frames, height, width, 3) uint8 frames of one video; ``num_frames`` must be even.

    The random draws (background, each square's path and height) are made per colour in a fixed order,
    whatever the label; the label only decides which half of the video each square moves in and which
    way. So for one seed, the videos of all classes hold exactly the same frames, in different orders."""
    if num_frames % 2:
        raise ValueError(f"synthetic videos have an even number of frames, got {num_frames}")
    size = max(4, min(width, height) // 5)
    background = int(rng.integers(16, 72))
    span = width - size
    paths = {}
    for colour in ("red", "blue"):
        a, b = sorted(float(v) for v in rng.uniform(0, span, size=2))
        if b - a < span / 3:  # paths of at least a third of the width
            mid = min(max((a + b) / 2, span / 6), span - span / 6)
            a, b = mid - span / 6, mid + span / 6
        paths[colour] = (a, b, int(rng.integers(0, height - size + 1)))
    frames = np.full((num_frames, height, width, 3), background, dtype=np.uint8)
    half = num_frames // 2
    for start, colour, direction in ((0, motion.first, motion.d1), (half, motion.second, motion.d2)):
        a, b, y = paths[colour]
        for k in range(half):
            j = k if direction == 0 else half - 1 - k  # right to left = the same positions, reversed
            x = int(round(a + (b - a) * (j / max(half - 1, 1))))
            frames[start + k, y:y + size, x:x + size] = COLOURS[colour]
    return frames


def _write_jpegs(frames: np.ndarray, folder: Path, name_of) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / name_of(i + 1), quality=95)


def _write_video(frames: np.ndarray, path: Path, fps: int) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    webm = path.suffix == ".webm"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libvpx-vp9" if webm else "libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "10", "b": "0"} if webm else {"crf": "10"}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _videos(rng: np.random.Generator, per_class: int) -> list[Motion]:
    motions = [m for m in MOTIONS for _ in range(per_class)]
    rng.shuffle(motions)
    return motions


def _youtube_id(rng) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    return "".join(alphabet[i] for i in rng.integers(0, len(alphabet), size=11))


def write_synthetic(fmt: str, out: str | Path, train_per_class: int = 12, val_per_class: int = 4,
                    size: tuple[int, int] = (96, 72), frames: tuple[int, int] = (24, 40), seed: int = 0) -> dict:
    """Write a synthetic dataset of format ``fmt`` into the empty (or new) directory ``out``.

    ``size`` is (width, height), even numbers (H.264/VP9 4:2:0); ``frames`` the (min, max) video length
    (lengths are even, so that both squares move for the same number of frames).
    Returns a summary (also written to :data:`MARKER`, ``tembench-synth.json``, in ``out``)."""
    if fmt not in SYNTH_FORMATS:
        raise UsageError(f"unknown synthetic format {fmt!r}; one of {', '.join(SYNTH_FORMATS)}")
    width, height = size
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise UsageError(f"frame size must be even and at least 16x16, got {width}x{height}")
    lo, hi = frames
    if lo < 4 or hi < lo or (lo == hi and lo % 2):
        raise UsageError(f"video length range must be 4 <= min <= max and hold an even number "
                         f"(videos have even lengths), got {lo}..{hi}")
    if train_per_class < 0 or val_per_class < 1:
        raise UsageError("need at least one validation video per class (and a non-negative train count)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists and is not an empty directory; choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {"train": _videos(rng, train_per_class), "val": _videos(rng, val_per_class)}
    writer = {"ssv1": _ssv1, "ssv2": _ssv2, "k400": _k400, "diving48": _diving48, "charades": _charades}[fmt]
    counter = iter(range(100000, 10**7))

    def clip(motion: Motion) -> np.ndarray:  # even lengths in [lo, hi]
        return render(motion, 2 * int(rng.integers((lo + 1) // 2, hi // 2 + 1)), width, height, rng)

    writer(out, splits, clip, counter, rng)
    summary = {
        "format": fmt, "generator": "tembench data synth", "generator_version": GENERATOR_VERSION, "seed": seed,
        "frame_size": [width, height], "frames": [lo, hi],
        "videos": {s: len(v) for s, v in splits.items()},
        "classes": CHARADES_CLASSES if fmt == "charades" else CLASS_NAMES,
        "task": "two squares move one after the other; the label is the order and the directions "
                "(Charades: each square's direction). Frame-order-blind models are at chance.",
    }
    (out / MARKER).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def synthetic_summary(root: str | Path) -> dict | None:
    """The summary of the synthetic dataset at ``root`` (its :data:`MARKER` file), or None for any other
    data. An accuracy record carries it, so that a report can tell synthetic data after the folder is gone."""
    path = Path(root) / MARKER
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    return summary if isinstance(summary, dict) else {"generator": "tembench data synth", "marker": str(path)}


def _ssv1(out, splits, clip, counter, rng):
    file_order = list(CLASS_NAMES)
    rng.shuffle(file_order)  # not sorted: mmaction (file order) and TSM (sorted) ids differ, as for the real list
    (out / "something-something-v1-labels.csv").write_text("\n".join(file_order) + "\n", encoding="utf-8")
    sorted_names = sorted(CLASS_NAMES)
    (out / "category.txt").write_text("\n".join(sorted_names) + "\n", encoding="utf-8")
    media = out / "20bn-something-something-v1"
    for split, motions in splits.items():
        rows, tsm = [], []
        for m in motions:
            vid = str(next(counter))
            video = clip(m)
            _write_jpegs(video, media / vid, "{:05d}.jpg".format)
            rows.append(f"{vid};{m.name()}")
            tsm.append(f"{vid} {len(video)} {sorted_names.index(m.name())}")
        name = "validation" if split == "val" else split
        (out / f"something-something-v1-{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (out / f"{split}_videofolder.txt").write_text("\n".join(tsm) + "\n", encoding="utf-8")


def _ssv2(out, splits, clip, counter, rng):
    labels = {n: str(i) for i, n in enumerate(sorted(CLASS_NAMES))}
    (out / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=1), encoding="utf-8")
    media = out / "20bn-something-something-v2"
    for split, motions in splits.items():
        entries = []
        for m in motions:
            vid = str(next(counter))
            _write_video(clip(m), media / f"{vid}.webm", fps=12)
            entries.append({"id": vid, "label": m.name().replace("something", "square"), "template": m.template(),
                            "placeholders": ["square", "square"]})
        name = "validation" if split == "val" else split
        (out / f"something-something-v2-{name}.json").write_text(json.dumps(entries, indent=1), encoding="utf-8")


def _k400(out, splits, clip, counter, rng):
    classes = sorted(m.name().lower().replace(",", "") for m in MOTIONS)
    for split, motions in splits.items():
        rows, listing = [], []
        for m in motions:
            label = m.name().lower().replace(",", "")
            ytid, start = _youtube_id(rng), int(rng.integers(0, 300))
            stem = kinetics_clip_name(ytid, start, start + 10)
            rel = f"{label.replace(' ', '_')}/{stem}.mp4"
            _write_video(clip(m), out / split / rel, fps=30)
            rows.append([label, ytid, start, start + 10, split, 0])
            listing.append(f"{rel} {classes.index(label)}")
        with (out / f"kinetics_{split}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            w.writerow(["label", "youtube_id", "time_start", "time_end", "split", "is_cc"])
            for r in rows:  # labels with spaces quoted, as in the published CSVs
                f.write(f'"{r[0]}",' if " " in r[0] else f"{r[0]},")
                w.writerow(r[1:])
        (out / f"kinetics400_{split}_list_videos.txt").write_text("\n".join(listing) + "\n", encoding="utf-8")


def _diving48(out, splits, clip, counter, rng):
    vocab = [[m.first.capitalize(), DIRECTIONS[m.d1].title().replace(" ", ""), m.second.capitalize(),
              DIRECTIONS[m.d2].title().replace(" ", "")] for m in MOTIONS]
    (out / "Diving48_vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    for split, motions in splits.items():
        entries = []
        for m in motions:
            name = f"{_youtube_id(rng)}_{next(counter) % 100000:05d}"
            video = clip(m)
            _write_video(video, out / "rgb" / f"{name}.mp4", fps=30)
            entries.append({"vid_name": name, "label": m.class_id(), "start_frame": 0, "end_frame": len(video)})
        (out / f"Diving48_V2_{'test' if split == 'val' else split}.json").write_text(json.dumps(entries), encoding="utf-8")


def _charades(out, splits, clip, counter, rng):
    (out / "Charades_v1_classes.txt").write_text(
        "".join(f"c{i:03d} {n}\n" for i, n in enumerate(CHARADES_CLASSES)), encoding="utf-8")
    media = out / "Charades_v1_rgb"
    fps = 24
    for split, motions in splits.items():
        rows = []
        for m in motions:
            vid = "".join(string.ascii_uppercase[i] if i < 26 else str(i - 26) for i in rng.integers(0, 36, size=5))
            video = clip(m)
            _write_jpegs(video, media / vid, lambda i, vid=vid: f"{vid}-{i:06d}.jpg")
            n, half = len(video), len(video) // 2
            first, second = m.charades_labels() if m.first == "red" else m.charades_labels()[::-1]
            actions = f"c{first:03d} 0.00 {half / fps:.2f};c{second:03d} {half / fps:.2f} {n / fps:.2f}"
            rows.append([vid, "SYN1", "Synthetic", 7, 7, "Yes", "Two squares move, one after the other.",
                         "square", "A red and a blue square move.", actions, f"{n / fps:.2f}"])
        with (out / f"Charades_v1_{'test' if split == 'val' else split}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects",
                        "descriptions", "actions", "length"])
            w.writerows(rows)
