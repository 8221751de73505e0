"""`tembench eval` / `metrics` / `data synth` end to end on tiny synthetic datasets: records, stored
logits, unreadable videos, resuming, and one-line errors."""
import json
import os
import shutil

import numpy as np
import pytest

from conftest import run_cli as run

from tembench.cli import main
from tembench.data.synth import write_synthetic
from tembench.api import evaluate

SMALL = dict(train_per_class=0, val_per_class=1, size=(32, 24), frames=(10, 14))
FORMATS = ("ssv1", "ssv2", "k400", "diving48", "charades")






@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for f in FORMATS:
        write_synthetic(f, root / f, **SMALL)
    return root


def load_record(out):
    rec = json.loads(out)[0]
    run_file = rec["run_file"]
    saved = json.loads(open(run_file).read())
    return rec, saved, np.load(os.path.join(os.path.dirname(run_file), rec["logits_file"]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_eval_each_format_writes_a_record(capsys, runs_dir, data, fmt):
    code, out, err = run(capsys, "eval", "tsn/tsn-r18", "--data", data / fmt, "--size", 32, "--views", "1x1",
                         "--format", "json")
    assert code == 0, err
    rec, saved, z = load_record(out)
    assert "randomly initialised" in err and rec["randomly_initialised"] and rec["weights"] == "random init (seed 0)"
    assert saved["status"] == "complete" and saved["kind"] == "accuracy"
    assert rec["dataset"] == fmt and rec["videos"] == rec["evaluated"] == 8 and rec["failed"] == 0
    metric = "map" if fmt == "charades" else "top1"
    assert 0 <= rec[metric] <= 100
    fp = rec["dataset_fingerprint"]
    assert fp["videos"] == 8 and len(fp["annotation_sha256"]) == 64 and fp["decoder"]["video"] == "pyav"
    assert fp["protocol"] == rec["protocol"]
    assert z["logits"].shape == (8, 1, 4 if fmt == "charades" else 8)


def test_views_override_protocol_and_metrics_recompute(capsys, runs_dir, data):
    code, out, err = run(capsys, "eval", "tsm/tsm-r18", "--data", data / "ssv1", "--size", 32,
                         "--protocol", "tsm-2x3", "--views", "4x3x2", "--fusion", "score", "--format", "json")
    assert code == 0, err
    rec, saved, z = load_record(out)
    assert rec["views"] == "4x3x2" and rec["frames"] == 4 and rec["protocol"] == "tsm-2x3@4x3x2@32px"
    assert rec["protocol_spec"]["crop"] == "three-fullres" and rec["protocol_spec"]["crop_size"] == 32
    assert z["logits"].shape == (8, 6, 8)
    code, out2, _ = run(capsys, "metrics", rec["run_file"], "--format", "json")
    again = json.loads(out2)[0]
    assert code == 0 and again["top1"] == rec["top1"] and again["mean_class_acc"] == rec["mean_class_acc"]
    code, out3, _ = run(capsys, "metrics", rec["run_id"] if "run_id" in rec else saved["run_id"], "--fusion", "prob",
                        "--format", "json")
    prob = json.loads(out3)[0]
    assert code == 0 and prob["fusion"] == "prob" and len(prob["confusion"]) == 8


def test_unreadable_videos_are_counted_and_listed(capsys, runs_dir, data, tmp_path):
    k400 = tmp_path / "k400"
    shutil.copytree(data / "k400", k400)
    videos = sorted(k400.rglob("*.mp4"))
    head = videos[0]
    head.write_bytes(head.read_bytes()[: head.stat().st_size // 2])  # truncated: moov atom lost
    # a truncated "fast-start" mp4 (index first): the header promises frames the file no longer holds
    import av

    faststart = videos[1]
    frames = [f.to_ndarray(format="rgb24") for f in av.open(str(faststart)).decode(video=0)]
    with av.open(str(faststart), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 32, 24, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    faststart.write_bytes(faststart.read_bytes()[: int(faststart.stat().st_size * 0.6)])
    code, out, err = run(capsys, "eval", "tsn/tsn-r18", "--data", k400, "--size", 32, "--views", "1x1",
                         "--format", "json")
    assert code == 1, err  # failed cases make the exit code non-zero; the record is complete
    rec = json.loads(out)[0]
    assert rec["failed"] == 2 and rec["evaluated"] == 6 and rec["videos"] == 8
    assert "6 of 8 videos evaluated, 2 failed" in err
    by_id = {f["id"]: f["error"] for f in rec["failed_videos"]}
    assert set(by_id) == {head.stem, faststart.stem}
    assert "cannot open" in by_id[head.stem] and "decod" in by_id[faststart.stem]
    assert "could not be read" in err

    ssv1 = tmp_path / "ssv1"
    shutil.copytree(data / "ssv1", ssv1)
    gone = sorted((ssv1 / "20bn-something-something-v1").iterdir())[0]
    shutil.rmtree(gone)
    code, out, err = run(capsys, "eval", "tsn/tsn-r18", "--data", ssv1, "--size", 32, "--views", "1x1",
                         "--format", "json")
    rec = json.loads(out)[0]
    assert code == 1 and rec["failed"] == 1 and rec["failed_videos"][0]["id"] == gone.name
    assert "missing frame folder" in rec["failed_videos"][0]["error"]


def test_interrupted_run_keeps_logits_and_resumes(tmp_path, data):
    out_dir = tmp_path / "runs"
    kw = dict(size=32, views="1x1", out=out_dir, save_every=1)
    full = evaluate("tsn/tsn-r18", data / "ssv1", **kw)

    def stop_after_three(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate("tsn/tsn-r18", data / "ssv1", on_progress=stop_after_three, **kw)
    partial = list((out_dir / "partial").glob("*.npz"))
    assert len(partial) == 1 and len(np.load(partial[0])["indices"]) == 3
    stopped = [json.loads(p.read_text()) for p in out_dir.glob("*.json")]
    assert sorted(r["status"] for r in stopped) == ["complete", "interrupted"]
    resumed = evaluate("tsn/tsn-r18", data / "ssv1", **kw)
    assert resumed["resumed_videos"] == 3 and resumed["evaluated"] == 8
    assert not list((out_dir / "partial").glob("*.npz"))  # removed once complete
    a = np.load(out_dir / full["logits_file"])["logits"]
    b = np.load(out_dir / resumed["logits_file"])["logits"]
    assert np.array_equal(a, b) and resumed["top1"] == full["top1"]


def test_checkpoint_is_reported_in_the_record(capsys, runs_dir, data, tmp_path):
    import torch

    from tembench.models.build import build_model

    torch.manual_seed(3)
    path = tmp_path / "tsn.pth"
    torch.save({"state_dict": build_model("tsn/tsn-r18", 8, num_classes=8).state_dict()}, path)
    code, out, err = run(capsys, "eval", "tsn/tsn-r18", "--data", data / "ssv1", "--size", 32, "--views", "1x1",
                         "--checkpoint", path, "--strict", "--format", "json")
    assert code == 0, err
    rec = json.loads(out)[0]
    assert not rec["randomly_initialised"] and rec["weights"] == "tsn.pth"
    assert rec["checkpoint"]["n_loaded"] > 0 and rec["checkpoint"]["n_missing"] == 0
    assert "0 missing" in err


@pytest.mark.parametrize("args, needle", [
    (["eval", "tsn/tsn-r18", "--data", "/nonexistent/root"], "does not exist"),
    (["eval", "tsn/tsn-r18", "--data", "{ssv1}", "--protocol", "tsm-1x"], "unknown protocol 'tsm-1x'; closest: tsm-1x1"),
    (["eval", "tsn/tsn-r18", "--data", "{ssv1}", "--views", "8x5x1"], "crops must be 1"),
    (["eval", "tsn/tsn-r18", "--data", "{ssv1}", "--checkpoint", "{junk}"], "is not a readable PyTorch checkpoint"),
    (["eval", "tsn/tsn-r1", "--data", "{ssv1}"], "unknown variant"),
    (["eval", "tsn/tsn-r18", "--data", "{ssv1}", "--split", "holdout"], "splits"),
    (["metrics", "no-such-run"], "match 'no-such-run'"),
    (["data", "synth", "--format", "ssv1", "--out", "{ssv1}"], "not an empty directory"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, runs_dir, data, tmp_path, args, needle):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint" * 20)
    args = [a.format(ssv1=data / "ssv1", junk=junk) for a in args]
    code, out, err = run(capsys, *args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and needle in err and lines[-1].startswith("error:")
    assert "Traceback" not in err and not [ln for ln in lines if ln.startswith("error:")][1:]
    assert not list(runs_dir.glob("*.json")) if runs_dir.exists() else True  # nothing half-written


def test_data_synth_and_protocols_commands(capsys, tmp_path):
    code, _, err = run(capsys, "data", "synth", "--format", "diving48", "--out", tmp_path / "d48", "--train", 0,
                       "--val", 1, "--size", "32x24", "--frames", "8")
    assert code == 0 and "8 classes" in err
    assert json.loads((tmp_path / "d48" / "tembench-synth.json").read_text())["videos"] == {"train": 0, "val": 8}
    code, out, _ = run(capsys, "data", "protocols", "--format", "json")
    names = [p["protocol"] for p in json.loads(out)]
    assert code == 0 and {"tsm-1x1", "atm-ss-2x3", "emim-ss-1x3", "ila-4x3", "tam-k400-10x3"} <= set(names)


def test_a_video_the_model_fails_on_is_recorded_and_the_run_goes_on(capsys, runs_dir, data, monkeypatch):
    import tembench.evaluate.runner as runner

    real, calls = runner.run_model, {"n": 0}

    def fails_on_the_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(*a, **k)

    monkeypatch.setattr(runner, "run_model", fails_on_the_second)
    code, out, err = run(capsys, "eval", "tsn/tsn-r18", "--data", data / "ssv1", "--size", 32, "--views", "1x1",
                         "--format", "json")
    rec = json.loads(out)[0]
    assert code == 1 and rec["evaluated"] == 7 and rec["failed"] == 1
    assert rec["failed_videos"][0]["error"].startswith("model forward failed: RuntimeError: CUDA error")
    assert "7 of 8 videos evaluated, 1 failed" in err
