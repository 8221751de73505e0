"""Reading frames: videos with PyAV, frame folders with Pillow.

A :class:`VideoSource` knows its frame count and returns the frames at given 0-based indices as
Pillow RGB images. Videos are decoded sequentially from the start up to the last index needed
("accurate" mode: frame i is the i-th decoded frame, no keyframe-seek approximation). The frame count
comes from the container header (``stream.frames``) when it gives one; WebM/Matroska headers give 0
(Something-Something V2), so the video is then decoded once, completely, and counted.

Problems (missing file, unreadable container, fewer decodable frames than the header says, missing
JPEG) raise :class:`MediaError` with a one-line reason; the evaluation records it and goes on.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from PIL import Image


class MediaError(Exception):
    """A video or frame folder that cannot be read; the message says why, in one line."""


@lru_cache(maxsize=1)
def decoder_info() -> dict:
    """Decoder and image library versions, part of the dataset fingerprint."""
    import av
    import PIL

    codec = av.library_versions.get("libavcodec")
    return {
        "video": "pyav",
        "pyav": av.__version__,
        "libavcodec": ".".join(map(str, codec)) if codec else None,
        "pillow": PIL.__version__,
        "mode": "sequential decode from frame 0 (accurate)",
    }


class VideoFile:
    """A video file decoded with PyAV."""

    def __init__(self, path: str | Path, num_frames: int | None = None):
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise MediaError(f"missing video file {self.path}")
        self._frames: list[Image.Image] | None = None
        header = self._probe()
        if num_frames:
            self.num_frames = num_frames
        elif header > 0:
            self.num_frames = header
            self.frame_count_source = "header"
        else:  # WebM/Matroska and other containers that do not store a count: decode and count
            self._frames = self._decode(None)
            self.num_frames = len(self._frames)
            self.frame_count_source = "decoded"
        if num_frames:
            self.frame_count_source = "list"
        if self.num_frames <= 0:
            raise MediaError(f"no decodable frame in {self.path}")

    def _open(self):
        import av

        try:
            container = av.open(self.path)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise MediaError(f"cannot open {self.path}: {_reason(e)}") from None
        if not container.streams.video:
            container.close()
            raise MediaError(f"no video stream in {self.path}")
        return container

    def _probe(self) -> int:
        container = self._open()
        try:
            return int(container.streams.video[0].frames or 0)
        finally:
            container.close()

    def _decode(self, last: int | None, wanted: set[int] | None = None) -> list:
        """Decode frames 0..last (all when None); keep those in ``wanted`` (all when None)."""
        import av

        container = self._open()
        out: dict[int, Image.Image] | list = {} if wanted is not None else []
        i = -1
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if wanted is None:
                    out.append(frame.to_image())
                elif i in wanted:
                    out[i] = frame.to_image()
                if last is not None and i >= last:
                    break
        except (av.FFmpegError, OSError, ValueError) as e:
            raise MediaError(f"decoding {self.path} failed after {i + 1} frames: {_reason(e)}") from None
        finally:
            container.close()
        return out

    def get(self, indices: list[int]) -> dict[int, Image.Image]:
        wanted = sorted(set(indices))
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.num_frames):
            raise MediaError(f"frame index {wanted[-1]} out of range for {self.path} ({self.num_frames} frames)")
        if self._frames is not None:
            return {i: self._frames[i] for i in wanted}
        got = self._decode(wanted[-1], set(wanted))
        if len(got) < len(wanted):
            missing = [i for i in wanted if i not in got]
            raise MediaError(f"{self.path}: only {max(got, default=-1) + 1 if got else 0} of {self.num_frames} frames "
                             f"decodable (header says {self.num_frames}); frame {missing[0]} missing -- truncated or corrupt file")
        return got


_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


def detect_template(folder: str | Path) -> tuple[str, int, int]:
    """(template, start index, frame count) of a folder of numbered images, e.g. ('{:05d}.jpg', 1, 48)
    for ``00001.jpg ...``, ('img_{:05d}.jpg', 1, n), ('<id>-{:06d}.jpg', 1, n) for Charades."""
    names = os.listdir(folder)
    groups: dict[tuple[str, int, str], list[int]] = {}
    for n in names:
        m = _NUMBERED.match(n)
        if m:
            groups.setdefault((m.group(1), len(m.group(2)), m.group(3)), []).append(int(m.group(2)))
    if not groups:
        raise MediaError(f"no numbered image in frame folder {folder}")
    (prefix, width, ext), numbers = max(groups.items(), key=lambda kv: len(kv[1]))
    template = prefix.replace("{", "{{").replace("}", "}}") + "{:0%dd}" % width + ext
    return template, min(numbers), len(numbers)


class FrameFolder:
    """A folder of numbered JPEG/PNG frames. Frame i (0-based) is ``template.format(start + i)``."""

    def __init__(self, path: str | Path, template: str | None = None, start_index: int = 1,
                 num_frames: int | None = None):
        self.path = str(path)
        if not os.path.isdir(self.path):
            raise MediaError(f"missing frame folder {self.path}")
        self.frame_count_source = "list" if num_frames else "files"
        if template is None:
            template, start_index, count = detect_template(self.path)
        else:
            count = None
        self.template, self.start_index = template, start_index
        if not num_frames:
            if count is None:
                count = sum(1 for n in os.listdir(self.path) if _matches(n, template))
            num_frames = count
        if num_frames <= 0:
            raise MediaError(f"no frame matching {template!r} in {self.path}")
        self.num_frames = num_frames

    def get(self, indices: list[int]) -> dict[int, Image.Image]:
        out = {}
        for i in sorted(set(indices)):
            f = os.path.join(self.path, self.template.format(self.start_index + i))
            try:
                with Image.open(f) as img:
                    out[i] = img.convert("RGB")
            except FileNotFoundError:
                raise MediaError(f"missing frame {f} (frame {i} of {self.num_frames})") from None
            except OSError as e:
                raise MediaError(f"cannot read frame {f}: {e}") from None
        return out


def _matches(name: str, template: str) -> bool:
    m = _NUMBERED.match(name)
    if not m:
        return False
    try:
        return template.format(int(m.group(2))) == name
    except (ValueError, IndexError):
        return False


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def open_source(kind: str, path: str | Path, num_frames: int | None = None, template: str | None = None,
                start_index: int = 1):
    """A :class:`VideoFile` (``kind='video'``) or :class:`FrameFolder` (``kind='frames'``)."""
    if kind == "video":
        return VideoFile(path, num_frames)
    if kind == "frames":
        return FrameFolder(path, template, start_index, num_frames)
    raise ValueError(f"unknown media kind {kind!r}")
