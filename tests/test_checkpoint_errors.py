"""Every checkpoint failure names the file and the kind of problem, in one line; --trust-checkpoint
works for every pickle that torch's weights_only reader refuses."""
import argparse
import os
import random

import pytest
import torch

from conftest import run_cli

from tembench.errors import UsageError
from tembench.evaluate.checkpoint import load_checkpoint, read_checkpoint
from tembench.models.build import build_model


@pytest.fixture(scope="module")
def model():
    return build_model("tsn/tsn-r18", 2, num_classes=8)


@pytest.fixture(scope="module")
def good(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("ck") / "good.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


# random bytes, fixed: what torch's unpickler raises on them depends on the bytes (most seeds an
# UnpicklingError; seed 2 an IndexError, 20 a KeyError, 195 a UnicodeDecodeError): every one is the same one line
JUNK_SEEDS = (0, 2, 20, 195)
JUNK = random.Random(2).randbytes(2048)


def _bad(tmp_path, name, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


@pytest.mark.parametrize("seed", JUNK_SEEDS)
def test_random_bytes_are_one_line_whatever_the_unpickler_raises(tmp_path, model, seed):
    path = _bad(tmp_path, "random.pth", random.Random(seed).randbytes(2048))
    with pytest.raises(UsageError) as e:
        load_checkpoint(model, path)
    text = str(e.value)
    assert text.startswith(f"checkpoint {path} is not a readable PyTorch checkpoint (") and "\n" not in text
    assert not any(name in text for name in ("IndexError", "KeyError", "UnicodeDecodeError", "pop from empty"))


@pytest.mark.parametrize("name, content, needle", [
    ("random.pth", JUNK, "not a readable PyTorch checkpoint"),
    ("empty.pth", b"", "is empty"),
    ("notes.pth", b"hello, not a checkpoint\n", "not a readable PyTorch checkpoint"),
])
def test_a_file_that_is_no_checkpoint_names_the_file(tmp_path, model, name, content, needle):
    path = _bad(tmp_path, name, content)
    with pytest.raises(UsageError, match=needle) as e:
        load_checkpoint(model, path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_truncated_archive_is_named(tmp_path, model, good):
    path = _bad(tmp_path, "cut.pth", good.read_bytes()[:5000])
    with pytest.raises(UsageError, match="not a readable PyTorch checkpoint .*corrupt, truncated") as e:
        load_checkpoint(model, path)
    assert str(path) in str(e.value)


def test_wrong_keys_list_a_few_of_each(tmp_path, model):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3), "decoder.bias": torch.zeros(2)}}, path)
    with pytest.raises(UsageError, match="no tensor name matches the model") as e:
        load_checkpoint(model, path)
    assert "encoder.weight" in str(e.value) and "conv1.weight" in str(e.value) and str(path) in str(e.value)


def test_wrong_shapes_list_name_expected_and_found(tmp_path, model):
    path = tmp_path / "wide.pth"
    torch.save({k: torch.zeros(*(d + 1 for d in v.shape)) for k, v in model.state_dict().items() if v.dim()}, path)
    with pytest.raises(UsageError, match="wrong shape") as e:
        load_checkpoint(model, path)
    assert "conv1.weight expected (64, 3, 7, 7), found (65, 4, 8, 8)" in str(e.value)


def test_pickled_code_is_refused_naming_trust_and_its_risk(tmp_path, model):
    path = tmp_path / "args.pth"
    torch.save({"state_dict": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(UsageError) as e:
        read_checkpoint(path)
    text = str(e.value)
    assert str(path) in text and "GLOBAL argparse.Namespace" in text and "--trust-checkpoint" in text
    assert "runs any code" in text and "\n" not in text and "PyTorch 2.6" not in text
    assert read_checkpoint(path, trust=True)[2] is True


def test_trust_works_for_a_pickle_torch_blocks(tmp_path, model):
    """torch refuses globals of blocked modules (os, sys, ...) with another message ('... is blocked')."""
    path = tmp_path / "blocked.pth"
    torch.save({"state_dict": model.state_dict(), "cwd": os.getcwd}, path)
    with pytest.raises(UsageError, match="--trust-checkpoint"):
        read_checkpoint(path)
    state, container, trusted = read_checkpoint(path, trust=True)
    assert trusted and container == "state_dict" and state


def test_the_cli_says_it_in_one_line(capsys, tmp_path, runs_dir):
    from tembench.data.synth import write_synthetic

    data = tmp_path / "data"
    write_synthetic("ssv1", data, train_per_class=0, val_per_class=1, size=(32, 24), frames=(10, 14))
    junk = _bad(tmp_path, "junk.pth", JUNK)
    code, _, err = run_cli(capsys, "eval", "tsn/tsn-r18", "--data", data, "--checkpoint", junk, "--size", "32")
    assert code == 2 and str(junk) in err and len(err.strip().splitlines()) == 1 and "IndexError" not in err
