"""Models build, run at tiny sizes, and keep torchvision's state-dict names."""
import pytest
import torch

from tembench import build_model
from tembench.errors import UsageError

from conftest import resnet_variants


@pytest.mark.parametrize("spec", [v for v in resnet_variants() if not v.is_ensemble], ids=lambda v: v.id)
def test_forward_at_two_frames_gives_finite_logits(spec):
    torch.manual_seed(0)
    model = build_model(spec, frames=2, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 2, 32, 32))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_torchvision_state_dict_names_and_sizes():
    sd = build_model("tsn/tsn-r50", num_classes=1000).state_dict()
    assert len(sd) == 320  # torchvision resnet50: 320 entries incl. BN buffers
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd["layer4.2.bn3.running_var"].shape == (2048,)
    assert sd["fc.weight"].shape == (1000, 2048)
    tam = build_model("tam/tanet-r50").state_dict()
    assert tam["layer1.0.temporal.G.0.weight"].shape == (16, 8)
    assert tam["layer1.0.temporal.L.0.weight"].shape == (16, 64, 3)
    assert "layer1.0.temporal.L.1.running_mean" in tam  # BN kept in the local branch


def test_tsn_is_order_blind_and_tsm_is_not():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 4, 32, 32)
    rev = x.flip(2)
    for vid, blind in (("tsn/tsn-r18", True), ("tsm/tsm-r18", False)):
        model = build_model(vid, frames=4, num_classes=5).eval()
        with torch.no_grad():
            same = torch.allclose(model(x), model(rev), atol=1e-5)
        assert same == blind, vid


def test_tsm_shift_moves_one_eighth_each_way():
    from tembench.models.temporal.tsm import temporal_shift

    x = torch.arange(2 * 16, dtype=torch.float).view(2, 16, 1, 1)  # T=2, C=16
    y = temporal_shift(x, frames=2, fold_div=8)
    assert torch.equal(y[0, :2], x[1, :2]) and torch.equal(y[1, :2], torch.zeros(2, 1, 1))
    assert torch.equal(y[1, 2:4], x[0, 2:4]) and torch.equal(y[0, 2:4], torch.zeros(2, 1, 1))
    assert torch.equal(y[:, 4:], x[:, 4:])


def test_bad_frames_are_rejected():
    with pytest.raises(UsageError, match="positive integer"):
        build_model("tsn/tsn-r18", frames=0)
    with pytest.raises(ValueError, match="built for 4 frames"):
        build_model("tsn/tsn-r18", frames=4)(torch.randn(1, 3, 2, 32, 32))
