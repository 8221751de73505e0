"""One dataset item = all views of one video, ready for the model.

:class:`ViewDataset` opens an item's media, samples each temporal clip with the protocol's sampler,
decodes the frames once (shared between clips), resizes each once, and returns a tensor
(clips * crops, 3, T, c, c) in **clip-major** order (view ``k * crops + j`` = clip k, crop j). A video
that cannot be read returns its error instead of raising, so a data loader with workers keeps going
and the evaluation lists it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from tembench.data.decode import MediaError, open_source
from tembench.data.formats import VideoItem
from tembench.data.protocols import Protocol
from tembench.data.sampling import sample


@dataclass
class Sample:
    index: int  # position in the dataset's item list
    views: torch.Tensor | None  # (V, 3, T, c, c) or None when the video failed
    frame_indices: list[list[int]] | None = None
    num_frames: int | None = None
    error: str | None = None


class ViewDataset(Dataset):
    def __init__(self, items: list[VideoItem], protocol: Protocol, frames: int, indices: list[int] | None = None):
        self.items = items
        self.protocol = protocol
        self.frames = frames
        self.transform = protocol.transform()
        self.indices = list(range(len(items))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Sample:
        index = self.indices[i]
        item = self.items[index]
        try:
            return self.load(index, item)
        except MediaError as e:
            return Sample(index, None, error=str(e))
        except Exception as e:  # noqa: BLE001 -- a bad file must not stop the evaluation
            return Sample(index, None, error=f"{type(e).__name__}: {e}")

    def load(self, index: int, item: VideoItem) -> Sample:
        src = open_source(item.kind, item.path, item.num_frames, item.template, item.start_index)
        p = self.protocol
        clips = sample(p.sampler, src.num_frames, self.frames, p.clips, key=item.id, **p.sampler_params)
        frames = src.get([i for clip in clips for i in clip])
        resized = {i: self.transform.resize_frame(img) for i, img in frames.items()}
        views = torch.cat([self.transform([resized[i] for i in clip]) for clip in clips])
        return Sample(index, views, clips, src.num_frames)


def collate_one(batch: list[Sample]) -> Sample:
    return batch[0]
