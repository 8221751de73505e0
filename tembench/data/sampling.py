"""Test-time temporal sampling: which frames of an N-frame video each temporal view (clip) uses.

Every sampler has the signature ``sampler(num_frames, frames, clips, **params) -> list[list[int]]`` and
returns one list of ``frames`` **0-based** frame indices per clip. (Frame folders are 1-indexed on disk;
the readers add their start index, so ``00001.jpg`` is frame 0 here.) The arithmetic follows the
reference code named in each docstring (see ``research/datasets-and-eval-protocols.md`` §2), including
its rounding: ``int()`` truncation, NumPy's round-half-to-even, PyTorch float32 ``linspace``.

``SAMPLERS`` maps the names used by protocol presets to the functions.
"""
from __future__ import annotations

import math
import zlib
from typing import Callable

import numpy as np

from tembench.errors import UsageError

Views = list[list[int]]


def _check(num_frames: int, frames: int, clips: int) -> None:
    if num_frames <= 0:
        raise ValueError(f"a video with {num_frames} frames cannot be sampled")
    if frames <= 0 or clips <= 0:
        raise ValueError(f"frames and clips must be positive, got {frames} and {clips}")


def tsn(num_frames: int, frames: int, clips: int = 1) -> Views:
    """TSN segment centres (mmaction ``SampleFrames(clip_len=1, num_clips=S, test_mode=True)``; TSM
    ``_get_test_indices``): ``avg = N / S``, frame ``int(k*avg + avg/2)``. ``clips=2`` is TSM's and
    mmaction's ``twice_sample``: the second view takes the segment starts ``int(k*avg)``."""
    _check(num_frames, frames, clips)
    if clips > 2:
        raise UsageError(f"TSN segment sampling has 1 view (centres) or 2 (twice-sample: centres, starts); got {clips} clips")
    avg = num_frames / frames
    views = [[int(k * avg + avg / 2.0) for k in range(frames)]]
    if clips == 2:
        views.append([int(k * avg) for k in range(frames)])
    return views


def tsm_dense(num_frames: int, frames: int, clips: int = 10, window: int = 64) -> Views:
    """TSM/TAM ``--dense_sample`` (and mmaction ``DenseSampleFrames``): each clip covers a ``window``-frame
    span with stride ``window // frames``; ``clips`` starts spread by ``np.linspace(0, max(1, 1+N-window)-1)``
    (TAM's single clip starts at the middle position); indices wrap modulo N."""
    _check(num_frames, frames, clips)
    sample_pos = max(1, 1 + num_frames - window)
    t_stride = window // frames
    if t_stride < 1:
        raise UsageError(f"dense sampling needs frames <= {window}, got {frames}")
    starts = [sample_pos // 2] if clips == 1 else np.linspace(0, sample_pos - 1, num=clips, dtype=int).tolist()
    return [[(k * t_stride + int(s)) % num_frames for k in range(frames)] for s in starts]


def tsm_uniform(num_frames: int, frames: int, clips: int = 1) -> Views:
    """TAM official / ATM Kinetics "uniform-K" (``ops/dataset.py``): ``tick = N / T``; one clip takes
    ``int(tick/2 + tick*i)``; K clips start at ``np.linspace(0, tick-1, K, dtype=int)`` and take
    ``int(start + tick*i) % N``."""
    _check(num_frames, frames, clips)
    tick = num_frames / frames
    if clips == 1:
        return [[int(tick / 2.0 + tick * i) for i in range(frames)]]
    starts = np.linspace(0, tick - 1, num=clips, dtype=int).tolist()
    return [[int(s + tick * i) % num_frames for i in range(frames)] for s in starts]


def mmaction_clips(num_frames: int, frames: int, clips: int = 1, interval: int = 1,
                   out_of_bound: str = "loop") -> Views:
    """mmaction ``SampleFrames(clip_len=T, frame_interval=tau, num_clips=C, test_mode=True)`` for T > 1:
    span ``(T-1)*tau + 1``; C > 1 clips start at ``np.round(arange(C) * max_offset / (C-1))`` (half to
    even), one clip at ``max_offset // 2``; indices past the end loop (``idx mod N``) or repeat the last."""
    _check(num_frames, frames, clips)
    span = (frames - 1) * interval + 1
    max_offset = max(num_frames - span, 0)
    if clips > 1:
        offsets = np.round(np.arange(clips) * (max_offset / float(clips - 1))).astype(int).tolist()
    else:
        offsets = [max_offset // 2]
    views = []
    for o in offsets:
        idx = [o + k * interval for k in range(frames)]
        if out_of_bound == "loop":
            idx = [i % num_frames for i in idx]
        elif out_of_bound == "repeat_last":
            idx = [min(i, num_frames - 1) for i in idx]
        else:
            raise UsageError(f"out_of_bound must be 'loop' or 'repeat_last', got {out_of_bound!r}")
        views.append(idx)
    return views


def uniform(num_frames: int, frames: int, clips: int = 1) -> Views:
    """Uniform segment sampling with C shifted clips (UniFormer/EMIM ``sth.py``, ATM SSv1/SSv2, mmaction
    ``UniformSample(test_mode=True)``): ``seg = (N-1)/T``; clip k, frame i: ``round(seg*i) + int(seg/(C+1)*(k+1))``."""
    _check(num_frames, frames, clips)
    seg = (num_frames - 1) / frames
    duration = seg / (clips + 1)
    return [[int(round(seg * i)) + int(duration * (k + 1)) for i in range(frames)] for k in range(clips)]


def segment_midpoints(num_frames: int, frames: int, clips: int = 1) -> Views:
    """PySlowFast ``ssv2.py::get_seq_frames`` at test (ILA's single view): ``seg = (N-1)/T``, frame
    ``(round(seg*i) + round(seg*(i+1))) // 2``. Every temporal view is the same (PySlowFast repeats it)."""
    _check(num_frames, frames, clips)
    seg = (num_frames - 1) / frames
    view = [(int(np.round(seg * i)) + int(np.round(seg * (i + 1)))) // 2 for i in range(frames)]
    return [list(view) for _ in range(clips)]


def pyslowfast(num_frames: int, frames: int, clips: int = 1, rate: int = 2, fps: float = 30.0,
               target_fps: float = 30.0, offset_sampling: bool = False) -> Views:
    """PySlowFast Kinetics decoding (``decoder.py``; UniFormer/EMIM): ``clip_size = rate*T/target_fps*fps``
    source frames, ``delta = max(N - clip_size, 0)``, clip k starts at ``delta*k/C`` (the last clip does
    not reach the end) or, with offset sampling, ``k*floor(delta/(C-1))``; indices
    ``torch.linspace(start, start+clip_size-1, T)`` clamped to [0, N-1], truncated."""
    import torch

    _check(num_frames, frames, clips)
    clip_size = rate * frames / target_fps * fps
    delta = max(num_frames - clip_size, 0)
    views = []
    for k in range(clips):
        if offset_sampling:
            start = math.floor(delta / 2) if clips == 1 else k * math.floor(delta / (clips - 1))
        else:
            start = delta * k / clips
        end = start + clip_size - 1
        idx = torch.clamp(torch.linspace(start, end, frames), 0, num_frames - 1).long()
        views.append(idx.tolist())
    return views


def pyslowfast_charades(num_frames: int, frames: int, clips: int = 1, rate: int = 8) -> Views:
    """PySlowFast Charades (``charades.py``, frame lists): span ``(T-1)*rate + 1``,
    ``gap = max(L - span, 0)/(C-1)``, clip k starts at ``int(round(gap*k))`` (Python round); indices
    ``start + i*rate`` clamped to [0, L-1]. With one clip (undefined in the source) it starts at ``max_offset // 2``."""
    _check(num_frames, frames, clips)
    span = (frames - 1) * rate + 1
    max_offset = max(num_frames - span, 0)
    starts = [max_offset // 2] if clips == 1 else [int(round(max_offset / (clips - 1) * k)) for k in range(clips)]
    return [[min(max(s + i * rate, 0), num_frames - 1) for i in range(frames)] for s in starts]


def tsn_random(num_frames: int, frames: int, clips: int = 1, seed: int = 0, key: str = "") -> Views:
    """ILA's multi-view test (``SampleFrames(clip_len=1, num_clips=T, multiview=C)`` *without* test mode):
    C independent random TSN samplings, a random frame inside each of T segments. The original is not
    reproducible; here each video draws from a generator seeded with ``seed`` and the video's key, so
    every run (and every rank of a distributed run) samples the same frames."""
    _check(num_frames, frames, clips)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    views = []
    avg = num_frames // frames
    for _ in range(clips):
        if avg > 0:
            idx = np.arange(frames) * avg + rng.integers(0, avg, size=frames)
        elif num_frames > frames:
            idx = np.sort(rng.integers(0, num_frames, size=frames))
        else:
            idx = np.round(np.arange(frames) * (num_frames / frames))
        views.append([int(i) % num_frames for i in idx])  # mmaction wraps indices modulo N
    return views


SAMPLERS: dict[str, Callable[..., Views]] = {
    "tsn": tsn,
    "tsm-dense": tsm_dense,
    "tsm-uniform": tsm_uniform,
    "mmaction-clips": mmaction_clips,
    "uniform": uniform,
    "segment-midpoints": segment_midpoints,
    "pyslowfast": pyslowfast,
    "pyslowfast-charades": pyslowfast_charades,
    "tsn-random": tsn_random,
}


def sample(name: str, num_frames: int, frames: int, clips: int, key: str = "", **params) -> Views:
    """Run the named sampler; ``key`` (the video id) only matters to the seeded random sampler."""
    if name not in SAMPLERS:
        raise UsageError(f"unknown temporal sampler {name!r}; one of {', '.join(SAMPLERS)}")
    if name == "tsn-random":
        params = {**params, "key": key}
    return SAMPLERS[name](num_frames, frames, clips, **params)
