"""Sharding an evaluation over processes started by ``torchrun`` (CPU: gloo; GPU: nccl is not needed,
only Python objects are gathered, so gloo is used everywhere).

Videos are dealt round-robin (``remaining[rank::world]``): every video is evaluated by exactly one
process, none is padded or repeated (unlike ``DistributedSampler``). Each video's views go through the
model as one batch in every process, so a video's logits do not depend on how the split was sharded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    created: bool = False  # whether this module initialised the process group

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init() -> DistInfo:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); otherwise rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), False)
    dist.init_process_group("gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), True)


def shard(indices: list[int], info: DistInfo) -> list[int]:
    return list(indices)[info.rank::info.world]


def gather(obj, info: DistInfo) -> list:
    """Every process's ``obj``, in rank order (a one-element list when not distributed)."""
    if info.world <= 1:
        return [obj]
    out = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def finish(info: DistInfo) -> None:
    if info.created and dist.is_initialized():
        dist.destroy_process_group()
