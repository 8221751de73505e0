"""`tembench.count` takes any nn.Module: for every registered variant, counting the built module gives what
counting the variant id gives (macs, params, per-module keys), and the module itself is left untouched."""
import pytest
import torch

import tembench
from tembench.cost.crosscheck import small_size
from tembench.models.meta import meta_build
from tembench.registry import registry

VARIANTS = [v for v in registry().select() if not v.is_ensemble]


def real_module(spec):
    """The variant as a real CPU module (built on meta, then given uninitialised CPU storage: its values
    are never read, and building takes no initialisation time)."""
    with meta_build():
        model = tembench.build_model(spec.id)
    return model.to_empty(device="cpu")


@pytest.mark.parametrize("spec", VARIANTS, ids=lambda v: v.id)
def test_counting_the_module_equals_counting_the_variant(spec):
    if spec.missing:
        pytest.skip(f"{spec.id} needs {', '.join(spec.missing)}: {spec.install_hint}")
    # a Hugging Face model's input size is part of its config, and it takes pixel_values (B, T, C, H, W)
    size = spec.input_size if spec.extra == "hf" else small_size(spec)
    model = real_module(spec)
    example = None
    if spec.example_input:  # the variant's own inputs, as (args, kwargs)
        from tembench.models.factory import example_inputs

        example = lambda b, t, s: example_inputs(spec, b, t, s)  # noqa: E731
    by_module = tembench.count(model, frames=spec.frames, size=size, num_classes=spec.classes,
                               layout=spec.layout, example_input=example)
    by_id = tembench.count(spec.id, frames=spec.frames, size=size)
    assert (by_module.macs, by_module.params) == (by_id.macs, by_id.params)
    assert by_module.by_module == by_id.by_module and by_module.all_conventions == by_id.all_conventions


def test_the_module_is_not_touched():
    model = tembench.build_model("tsm/tsm-r18", frames=2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = tembench.count(model, frames=2, size=64, temporal=["*.shift"])
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(model.parameters()).device.type == "cpu" and r.temporal_macs == 0 and r.temporal_params == 0


def test_a_callable_that_builds_a_module_and_a_btchw_layout():
    class TimeFirst(torch.nn.Module):  # takes pixel_values (B, T, C, H, W), as Hugging Face video models do
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Conv2d(3, 8, 4, 4)
            self.temporal = torch.nn.Conv1d(8, 8, 3, padding=1)

        def forward(self, pixel_values):
            b, t, c, h, w = pixel_values.shape
            x = self.proj(pixel_values.reshape(b * t, c, h, w)).mean((2, 3)).view(b, t, 8).transpose(1, 2)
            return self.temporal(x).mean(-1)

    r = tembench.count(TimeFirst, frames=4, size=32, layout="BTCHW", temporal=["temporal"])
    conv = 4 * (8 * 8 * 8) * (3 * 4 * 4)  # 4 frames x 8x8x8 outputs x 3x4x4 taps
    assert r.temporal_macs == (8 * 4) * (8 * 3) and r.by_module["proj"] == conv  # 8 channels x 4 steps x 8x3 taps
    assert r.macs == conv + r.temporal_macs and r.temporal_params == 8 * 8 * 3 + 8  # means are free
    kw = tembench.count(TimeFirst(), frames=4, size=32,
                        example_input=lambda b, t, s: ((), {"pixel_values": torch.randn(b, t, 3, s, s)}))
    assert kw.macs == r.macs


def test_bad_models_are_one_line_errors():
    from tembench.errors import UsageError

    with pytest.raises(UsageError, match="returned a int, not a torch.nn.Module"):
        tembench.count(lambda: 3)
    with pytest.raises(UsageError, match="forward failed on the meta device .*layout"):
        tembench.count(tembench.build_model("tsn/tsn-r18", frames=2), frames=2, size=32, layout="BTCHW")
    with pytest.raises(UsageError, match="cannot import 'no_such_pkg.models'"):
        tembench.count("no_such_pkg.models:build")


def tiny_net(frames=4, num_classes=5, width=8):
    """A factory defined in this test file, profiled through the CLI by its import path."""
    return torch.nn.Sequential(torch.nn.Conv3d(3, width, (3, 3, 3), padding=1), torch.nn.AdaptiveAvgPool3d(1),
                               torch.nn.Flatten(), torch.nn.Linear(width, num_classes))


def test_profile_a_factory_defined_in_a_test_file(capsys, runs_dir):
    import json

    from conftest import run_cli

    code, out, err = run_cli(capsys, "profile", "test_count_module:tiny_net", "--frames", "4,8", "--size", "32",
                             "--kwargs", '{"width": 4}', "--format", "json")
    rows = json.loads(out)
    assert code == 0, err
    assert [r["frames"] for r in rows] == [4, 8] and rows[0]["variant"] == "test_count_module:tiny_net"
    conv = 4 * 32 * 32 * 4 * (3 * 27)  # T*H*W*C_out x C_in*27
    assert rows[0]["macs"] == tembench.count(lambda: tiny_net(4, 400, 4), frames=4, size=32).macs > conv
