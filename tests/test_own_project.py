"""tembench in a project of one's own: a throwaway package (its own temporal module and network, its own
registry directory) that is not installed, only put on PYTHONPATH, driven through the CLI in subprocesses:
profile with temporal_gflops, claims, `check --accept`, and a check that fails naming the module that
grew a 1x1 convolution. No tembench source is touched."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SHIFT = '''
"""A temporal shift of one's own: a quarter of the channels moved one frame back."""
import torch
import torch.nn as nn

from tembench.models.protocol import Option, TemporalModule


class Shift(nn.Module):
    def __init__(self, channels, frames, fold=4):
        super().__init__()
        self.frames, self.fold = frames, fold
        # EXTRA

    def forward(self, x):  # (N*T, C, H, W)
        nt, c, h, w = x.shape
        y = x.view(nt // self.frames, self.frames, c, h, w)
        moved = torch.cat([y[:, 1:, : c // self.fold], torch.zeros_like(y[:, :1, : c // self.fold])], dim=1)
        out = torch.cat([moved, y[:, :, c // self.fold:]], dim=2).view(nt, c, h, w)
        return out  # RETURN


class TokenShift(nn.Module):
    """The same on a ViT's tokens (L, N*T, D)."""

    def __init__(self, frames, fold=4):
        super().__init__()
        self.frames, self.fold = frames, fold

    def forward(self, x):
        length, nt, d = x.shape
        y = x.view(length, nt // self.frames, self.frames, d)
        moved = torch.cat([y[:, :, 1:, : d // self.fold], torch.zeros_like(y[:, :, :1, : d // self.fold])], dim=2)
        return torch.cat([moved, y[..., d // self.fold:]], dim=-1).view(length, nt, d)


def _make(site, fold):
    if site.host == "clip_vit":
        return TokenShift(site.frames, fold)
    return Shift(site.in_channels, site.frames, fold)


SPEC = TemporalModule(name="ownshift", slots=("resnet.before_conv1", "clip_vit.before_attention"), factory=_make,
                      options={"fold": Option(4, doc="1/fold of the channels move")},
                      doc="a temporal shift of one's own: before conv1 of every ResNet block, before every ViT attention")
'''

NET = '''
"""A small video network of one's own: per-frame convolutions with a shift between them."""
import torch.nn as nn

from ownpkg.shift import Shift


class Net(nn.Module):
    def __init__(self, frames=8, num_classes=10, width=16, shift=True):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, 2, 1)
        self.blocks = nn.Sequential(*[Block(width, frames, shift) for _ in range(2)])
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):  # (B, C, T, H, W)
        b, c, t, h, w = x.shape
        y = self.blocks(self.stem(x.transpose(1, 2).reshape(b * t, c, h, w)))
        return self.fc(y.mean((2, 3)).view(b, t, -1).mean(1))


class Block(nn.Module):
    def __init__(self, width, frames, shift):
        super().__init__()
        self.shift = Shift(width, frames) if shift else nn.Identity()
        self.conv = nn.Conv2d(width, width, 3, 1, 1)

    def forward(self, x):
        return x + self.conv(self.shift(x))


def build(frames=8, num_classes=10, width=16, shift=True):
    return Net(frames, num_classes, width, shift)


def broken(**kwargs):
    raise RuntimeError("this factory is broken")


def not_a_model(**kwargs):
    return 42
'''

REGISTRY = '''
[paper]
key = "own"
title = "my project's models"

[[table]]
source = "Own Table 1"
rows = ["shift net"]

[[variant]]
id = "own/shiftnet"
arch = "python"
factory = "ownpkg.net:build"
kwargs = { width = 16 }
temporal = "*.shift"
classes = 10
frames = 8
input_size = 64
description = "my network; its temporal modules by name"
[[variant.claim]]
source = "Own Table 1"
row = "shift net"
metric = "params"
value = 0.005

[[variant]]
id = "own/plainnet"
arch = "python"
factory = "ownpkg.net:build"
kwargs = { width = 16, shift = false }
classes = 10
frames = 8
input_size = 64

[[variant]]
id = "own/shiftnet-vs-plain"
arch = "python"
factory = "ownpkg.net:build"
kwargs = { width = 16 }
baseline = "own/plainnet"
classes = 10
frames = 8
input_size = 64
description = "the same, its temporal share against a baseline variant"

[[variant]]
id = "own/ownshift-r18"
arch = "resnet"
backbone = "resnet18"
temporal = "ownpkg.shift:SPEC"
options = { fold = 8 }
classes = 10
frames = 8
input_size = 64
description = "my temporal module in tembench's ResNet-18 host"

[[variant]]
id = "own/ownshift-vitb16"
arch = "clip_vit"
backbone = "vit-b16"
temporal = "ownpkg.shift:SPEC"
classes = 10
frames = 4
input_size = 64
description = "my shift variant on CLIP ViT-B/16"
'''


@pytest.fixture
def project(tmp_path):
    src = tmp_path / "src" / "ownpkg"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "shift.py").write_text(SHIFT)
    (src / "net.py").write_text(NET)
    reg = tmp_path / "project" / "registry"
    reg.mkdir(parents=True)
    (reg / "own.toml").write_text(REGISTRY)
    return tmp_path


def tembench(project: Path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("TEMBENCH_REGISTRY", "TEMBENCH_RUNS")}
    env.update(PYTHONPATH=str(project / "src"), OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "tembench", *map(str, args)], cwd=project / "project", env=env,
                          capture_output=True, text=True, timeout=600)


def test_profile_claims_and_check_of_a_project_of_ones_own(project):
    own = ("--registry", "registry", "--no-builtin")
    done = tembench(project, "profile", *own, "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {r["variant"]: r for r in json.loads(done.stdout)}
    assert set(rows) == {"own/shiftnet", "own/plainnet", "own/shiftnet-vs-plain", "own/ownshift-r18",
                         "own/ownshift-vitb16"}
    assert rows["own/shiftnet"]["temporal_gflops"] == 0  # a shift has no multiply-adds, but it is found
    assert rows["own/shiftnet-vs-plain"]["temporal_gflops"] == 0 and rows["own/plainnet"]["temporal_gflops"] == 0
    assert rows["own/ownshift-r18"]["temporal_gflops"] == 0 and rows["own/ownshift-r18"]["params"] > 11e6
    assert rows["own/ownshift-vitb16"]["temporal_gflops"] == 0 and rows["own/ownshift-vitb16"]["params"] > 86e6

    done = tembench(project, "claims", *own, "--format", "json")
    (claim,) = json.loads(done.stdout)
    assert done.returncode == 0 and claim["variant"] == "own/shiftnet" and claim["measured"] is not None

    done = tembench(project, "check", *own, "--accept")
    assert done.returncode == 0, done.stderr
    saved = json.loads((project / "project/results/baselines/cost.json").read_text())
    assert {r["variant"] for r in saved["records"]} == set(rows)
    assert "latency: no case" in done.stderr and "accuracy: no case" in done.stderr
    done = tembench(project, "check", *own)
    assert done.returncode == 0, done.stderr

    shift = project / "src/ownpkg/shift.py"
    shift.write_text(shift.read_text().replace("# EXTRA", "self.mix = nn.Conv2d(channels, channels, 1)")
                     .replace("return out  # RETURN", "return self.mix(out)"))
    done = tembench(project, "check", *own, "--format", "markdown")
    assert done.returncode == 1, done.stderr
    assert "blocks.0.shift" in done.stdout and "layer1.0.shift" in done.stdout, done.stdout
    assert "ownshift-vitb16" not in done.stdout  # the token shift did not change


def test_an_installed_package_ships_its_registry_through_an_entry_point(project):
    dist = project / "src" / "ownpkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ownpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tembench.registries]\nown = ownpkg.registry:where\n")
    (project / "src/ownpkg/registry.py").write_text(
        f"def where():\n    return {str(project / 'project' / 'registry')!r}\n")
    done = tembench(project, "list", "own", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert {r["variant"] for r in json.loads(done.stdout)} >= {"own/shiftnet", "own/ownshift-r18"}
    done = tembench(project, "list", "tam/tanet-r50", "--format", "json")  # merged with the built-in one
    assert done.returncode == 0 and json.loads(done.stdout)[0]["variant"] == "tam/tanet-r50"


def test_a_factory_named_on_the_command_line(project):
    done = tembench(project, "profile", "ownpkg.net:build", "--frames", "4,8", "--size", "64",
                    "--kwargs", '{"width": 8}', "--format", "json", "--no-save")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["frames"] for r in rows] == [4, 8] and rows[1]["gflops"] == pytest.approx(2 * rows[0]["gflops"], rel=1e-3)
    done = tembench(project, "profile", "ownpkg.net:build", "--frames", "2", "--size", "32", "--latency",
                    "--budget", "0.2", "--warmup", "0", "--format", "json", "--no-save")
    assert done.returncode == 0 and json.loads(done.stdout)[0]["latency_ms"] > 0, done.stderr


@pytest.mark.parametrize("args, needle", [
    (("profile", "nopkg.models:build"), "cannot import 'nopkg.models'"),
    (("profile", "ownpkg.net:nothing"), "has no attribute 'nothing'"),
    (("profile", "ownpkg.net:broken"), "raised RuntimeError: this factory is broken"),
    (("profile", "ownpkg.net:not_a_model"), "returned a int, not a torch.nn.Module"),
    (("profile", "ownpkg.net:build", "--layout", "BTCHW"), "forward failed on the meta device"),
    (("profile", "ownpkg.net:build", "--kwargs", "{depth: 50"), "--kwargs must be a JSON object"),
    (("profile", "own/shiftnet", "--registry", "bad", "--no-builtin"), "bad.toml: variant[0] 'own/bad': key 'factory'"),
    (("profile", "own", "--registry", "registry", "--registry", "dup"), "duplicate id"),
])
def test_bad_input_is_one_line_naming_the_variant_and_what_to_try(project, args, needle):
    bad = project / "project" / "bad"
    bad.mkdir()
    (bad / "bad.toml").write_text(textwrap.dedent('''
        [paper]
        key = "bad"
        [[variant]]
        id = "own/bad"
        arch = "python"
        factory = "ownpkg.net"
        classes = 10
        frames = 8
        input_size = 64
    '''))
    dup = project / "project" / "dup"
    dup.mkdir()
    (dup / "dup.toml").write_text(REGISTRY.replace('key = "own"', 'key = "own2"').replace("Own Table 1", "Dup Table"))
    done = tembench(project, *args)
    assert done.returncode != 0 and needle in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    if "duplicate" in needle:  # both files are named
        assert "dup.toml" in done.stderr and "own.toml" in done.stderr
