"""Dataset fingerprint: what an accuracy number was measured on, so that two numbers are only compared
when they were measured on the same thing.

It holds the dataset format and split, the video count, a hash of the canonical annotation list (ids,
labels, class names), the label-id convention, the decoder and its version, and the protocol (name and
a hash of all its fields). The data root's path is *not* part of it: the same split copied elsewhere
has the same fingerprint.
"""
from __future__ import annotations

from tembench.data.decode import decoder_info
from tembench.data.formats import VideoDataset
from tembench.data.protocols import Protocol
from tembench.errors import UsageError

COMPARED = ("format", "split", "videos", "classes", "annotation_sha256", "label_order", "multilabel", "decoder",
            "protocol", "protocol_sha256")


def dataset_fingerprint(ds: VideoDataset, protocol: Protocol, frames: int) -> dict:
    return {
        "format": ds.format,
        "split": ds.split,
        "videos": len(ds.items),
        "classes": ds.num_classes,
        "annotation_sha256": ds.annotation_hash(),
        "label_order": ds.label_order,
        "multilabel": ds.multilabel,
        "decoder": dict(decoder_info()),
        "protocol": protocol.name,
        "protocol_sha256": protocol.digest(),
        "views": protocol.views(frames),
    }


def differences(a: dict, b: dict) -> list[str]:
    """Fields of two fingerprints that differ, as 'field: a != b'."""
    out = []
    for k in COMPARED:
        if a.get(k) != b.get(k):
            va, vb = a.get(k), b.get(k)
            if isinstance(va, str) and len(va) > 16:
                va, vb = str(va)[:12] + "...", str(vb)[:12] + "..."
            out.append(f"{k}: {va} != {vb}")
    return out


def require_same(a: dict, b: dict, what: tuple[str, str] = ("first", "second")) -> None:
    """Raise :class:`UsageError` when two dataset fingerprints differ."""
    diff = differences(a or {}, b or {})
    if diff:
        raise UsageError(f"refusing to compare accuracy of {what[0]} and {what[1]}: dataset fingerprints differ "
                         f"({'; '.join(diff)}); pass --allow-mismatch to compare anyway")
