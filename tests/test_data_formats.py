"""Dataset readers on synthetic data written in each real on-disk format; decoding; synthetic labels."""
import json

import numpy as np
import pytest

from tembench.data.decode import FrameFolder, MediaError, VideoFile, detect_template
from tembench.data.formats import normalise_template, read_dataset
from tembench.data.synth import CHARADES_CLASSES, CLASS_NAMES, MOTIONS, render, write_synthetic
from tembench.errors import UsageError

SMALL = dict(train_per_class=1, val_per_class=1, size=(32, 24), frames=(8, 12))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return {f: (root / f, write_synthetic(f, root / f, **SMALL)) for f in ("ssv1", "ssv2", "k400", "diving48", "charades")}


def test_ssv1_label_orders_and_tsm_list(synth):
    root, _ = synth["ssv1"]
    file_order = (root / "something-something-v1-labels.csv").read_text().split("\n")[:8]
    assert file_order != sorted(file_order)  # so the two conventions give different ids
    mm = read_dataset(root, "val")
    tsm = read_dataset(root, "val", label_order="sorted")
    assert mm.format == "ssv1" and mm.classes == file_order and tsm.classes == sorted(CLASS_NAMES)
    assert [mm.classes[i.label] for i in mm.items] == [tsm.classes[i.label] for i in tsm.items]
    # TSM-style list (path num_frames label, sorted ids) gives the same labels as the official CSV read sorted
    lst = read_dataset(root / "20bn-something-something-v1", list_file=root / "val_videofolder.txt")
    assert lst.classes == tsm.classes and [i.label for i in lst.items] == [i.label for i in tsm.items]
    assert all(i.num_frames and i.kind == "frames" for i in lst.items)
    item = mm.items[0]
    src = FrameFolder(item.path, item.template, item.start_index)
    assert src.num_frames == lst.items[0].num_frames and src.frame_count_source == "files"
    assert detect_template(item.path) == ("{:05d}.jpg", 1, src.num_frames)
    assert len(read_dataset(root, "train").items) == 8


def test_ssv2_templates_and_webm_frame_count_fallback(synth):
    root, _ = synth["ssv2"]
    ds = read_dataset(root, "validation")
    assert ds.format == "ssv2" and ds.classes == sorted(CLASS_NAMES) and len(ds.items) == 8
    entry = json.loads((root / "something-something-v2-validation.json").read_text())[0]
    assert "[something]" in entry["template"] and entry["placeholders"]
    assert ds.classes[ds.items[0].label] == normalise_template(entry["template"])
    assert normalise_template("Putting [Something] into [something]") == "Putting Something into something"
    video = VideoFile(ds.items[0].path)
    assert video.frame_count_source == "decoded" and 8 <= video.num_frames <= 12  # webm header says 0
    frames = video.get([0, video.num_frames - 1])
    assert frames[0].size == (32, 24)


def test_k400_csv_quoted_labels_and_clip_names(synth):
    root, _ = synth["k400"]
    header, first = (root / "kinetics_val.csv").read_text().splitlines()[:2]
    assert header == "label,youtube_id,time_start,time_end,split,is_cc" and first.startswith('"')
    ds = read_dataset(root, "val")
    assert ds.format == "k400" and len(ds.classes) == 8 and ds.classes == sorted(ds.classes)
    for it in ds.items:
        ytid, start, end = it.id[:11], it.id[12:18], it.id[19:]
        assert len(start) == len(end) == 6 and int(end) - int(start) == 10
        assert it.path.endswith(f"{it.id}.mp4")
    v = VideoFile(ds.items[0].path)
    assert v.frame_count_source == "header"
    mm = read_dataset(root / "val", list_file=root / "kinetics400_val_list_videos.txt")
    assert [i.label for i in mm.items] == [i.label for i in ds.items] and all(i.kind == "video" for i in mm.items)


def test_diving48_and_charades(synth):
    ds = read_dataset(synth["diving48"][0], "val")
    assert ds.format == "diving48" and ds.split == "val" and len(ds.classes) == 8 and "+" in ds.classes[0]
    ch = read_dataset(synth["charades"][0], "test")
    assert ch.multilabel and ch.classes == CHARADES_CLASSES and len(ch.items) == 8
    for it in ch.items:  # one direction of each square: {0 or 1} and {2 or 3}
        assert len(it.label) == 2 and it.label[0] in (0, 1) and it.label[1] in (2, 3)
    folder = FrameFolder(ch.items[0].path, ch.items[0].template)
    assert folder.template == f"{ch.items[0].id}-{{:06d}}.jpg" and folder.num_frames >= 8


def test_labels_depend_only_on_frame_order():
    """For one seed, every class's video is the same multiset of frames (an order-blind model is at chance);
    and the classes do differ in frame order."""
    for seed in range(3):
        videos = [render(m, 10, 32, 24, np.random.default_rng(seed)) for m in MOTIONS]
        bags = [sorted(f.tobytes() for f in v) for v in videos]
        assert all(b == bags[0] for b in bags)
        assert len({v.tobytes() for v in videos}) == len(MOTIONS)


def test_decode_errors_are_media_errors(tmp_path):
    with pytest.raises(MediaError, match="missing video file"):
        VideoFile(tmp_path / "nope.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(MediaError, match="cannot open"):
        VideoFile(tmp_path / "junk.mp4")
    with pytest.raises(MediaError, match="missing frame folder"):
        FrameFolder(tmp_path / "no-such-folder")


def test_reader_usage_errors(tmp_path, synth):
    with pytest.raises(UsageError, match="does not exist"):
        read_dataset(tmp_path / "missing")
    with pytest.raises(UsageError, match="cannot tell the dataset format"):
        read_dataset(tmp_path)
    with pytest.raises(UsageError, match="splits"):
        read_dataset(synth["ssv1"][0], "holdout")
    with pytest.raises(UsageError, match="label-order applies to ssv1"):
        read_dataset(synth["k400"][0], label_order="sorted")


def test_synth_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(UsageError, match="not an empty directory"):
        write_synthetic("ssv1", tmp_path / "x")
    with pytest.raises(UsageError, match="even"):
        write_synthetic("k400", tmp_path / "y", size=(33, 24))
