"""Checkpoint loading: the official key layouts of seed-code digest §10 map onto tembench models; the
report; --strict; weights_only and --trust-checkpoint; wrong files."""
import argparse
import re

import pytest
import torch

from tembench.errors import UsageError
from tembench.evaluate.checkpoint import detect_source, load_checkpoint, map_keys, read_checkpoint
from tembench.models.build import build_model


def meta_state(variant, frames=None, classes=8):
    with torch.device("meta"):
        model = build_model(variant, frames, num_classes=classes)
    return {k: v for k, v in model.state_dict().items()}


def check_maps_back(fake, own, expect_missing=()):
    mapped, ignored, source = map_keys(fake)
    missing = {k for k in own if k not in mapped and not k.endswith("num_batches_tracked")}
    assert missing == set(expect_missing)
    assert all(k in own and tuple(v.shape) == tuple(own[k].shape) for k, v in mapped.items()), \
        [k for k in mapped if k not in own][:5]
    return source, ignored


def _block(k):
    return re.match(r"^(layer\d+\.\d+)\.(.*)$", k)


def test_tsm_official_layout():
    own = meta_state("tsm/tsm-r18")
    fake = {}
    for k, v in own.items():
        if k.startswith("fc."):
            fake["module.new_fc." + k[3:]] = v
        else:
            m = _block(k)
            if m and m.group(2).startswith("conv1."):
                k = f"{m.group(1)}.conv1.net.{m.group(2)[6:]}"
            fake["module.base_model." + k] = v
    assert "module.base_model.layer1.0.conv1.net.weight" in fake
    assert check_maps_back(fake, own)[0] == "tsn-official"


def test_tam_official_layout_including_old_names():
    from official import tam_official_names

    own = meta_state("tam/tanet-r50")
    fake = tam_official_names(own)
    assert "module.new_fc.weight" in fake and "module.base_model.layer1.0.net.conv1.weight" in fake and "module.base_model.layer1.0.tam.G.0.weight" in fake
    check_maps_back(fake, own)
    old = {k.replace(".tam.G.", ".self_conv.conv_f.").replace(".tam.L.", ".self_conv.conv_g."): v for k, v in fake.items()}
    check_maps_back(old, own)


def test_mmaction_tanet_layout_without_local_bn():
    own = meta_state("tam/tanet-r50")
    fake = {}
    for k, v in own.items():
        m = _block(k)
        if k.startswith("fc."):
            k = "cls_head.fc_cls." + k[3:]
        elif k.startswith("conv1."):
            k = "conv1.conv." + k[6:]
        elif k.startswith("bn1."):
            k = "conv1.bn." + k[4:]
        elif m:
            rest = m.group(2)
            if rest.startswith("temporal."):
                if ".L.1." in rest:  # mmaction's local branch has no BatchNorm
                    continue
                rest = "tam." + rest[9:].replace(".L.3.", ".L.2.")
                k = f"{m.group(1)}.{rest}"
            else:
                rest = re.sub(r"^conv(\d)\.", r"conv\1.conv.", rest)
                rest = re.sub(r"^bn(\d)\.", r"conv\1.bn.", rest)
                rest = rest.replace("downsample.0.", "downsample.conv.").replace("downsample.1.", "downsample.bn.")
                k = f"{m.group(1)}.block.{rest}"
        fake["backbone." + k if not k.startswith("cls_head") else k] = v
    assert "backbone.layer1.0.block.conv1.conv.weight" in fake and "backbone.layer2.0.block.downsample.bn.weight" in fake
    missing = {k for k in own if ".temporal.L.1." in k and not k.endswith("num_batches_tracked")}
    assert missing  # the official TAM (tembench default) has a BN there: reported missing
    assert check_maps_back(fake, own, missing)[0] == "mmaction"


def test_clip_layouts_atm_and_ila():
    own = meta_state("atm/atm-vit-b16", frames=8)
    atm = {"module." + k: v for k, v in own.items()}
    assert check_maps_back(atm, own)[0] == "clip"
    text = {"transformer.resblocks.0.attn.in_proj_weight": torch.empty(3, 3), "logit_scale": torch.empty(()),
            "token_embedding.weight": torch.empty(2, 2)}
    ila = {**own, **text, "visual.transformer.resblocks.0.message_fc.weight": torch.empty(768, 768)}
    mapped, ignored, source = map_keys(ila)
    assert source == "clip" and sorted(ignored) == sorted(text)
    assert "visual.transformer.resblocks.0.message_fc.weight" in mapped  # ILA modules: unexpected for VideoCLIP


def test_a_key_the_model_has_is_never_ignored():
    """ILA/X-CLIP checkpoints: ``logit_scale`` is a text-tower name for CLIP but a parameter of the
    video head; it must load (issue 21), while the rest of the text tower stays ignored."""
    own = meta_state("ila/ila-vit-b32", frames=8, classes=400)
    text = {"transformer.resblocks.0.attn.in_proj_weight": torch.empty(3, 3), "token_embedding.weight": torch.empty(2, 2),
            "positional_embedding": torch.empty(77, 512), "ln_final.weight": torch.empty(512)}
    ila = {**{k: v for k, v in own.items() if k != "text_features"}, **text}
    mapped, ignored, source = map_keys(ila, keep=own.keys())
    assert source == "clip" and sorted(ignored) == sorted(text)
    assert "logit_scale" in mapped and not set(ignored) & set(own)


def test_uniformer_and_emim_layouts():
    for variant in ("uniformer/uniformer-s", "emim/emim-s16"):
        own = meta_state(variant, frames=16)
        assert check_maps_back(dict(own), own)[0] == "uniformer"
    assert detect_source(["module.base_model.conv1.weight"]) == "tsn-official"
    assert detect_source(["conv1.weight", "fc.weight"]) == "plain"


def _tsm_official(model):
    out = {}
    for k, v in model.state_dict().items():
        m = _block(k)
        if k.startswith("fc."):
            k = "new_fc." + k[3:]
        elif m and m.group(2).startswith("conv1."):
            k = f"{m.group(1)}.conv1.net.{m.group(2)[6:]}"
        out["module.base_model." + k] = v
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tsm-r18 (8 classes) with non-default weights, saved in the TSM official container."""
    torch.manual_seed(1)
    model = build_model("tsm/tsm-r18", 8, num_classes=8).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("ckpt") / "TSM_something_resnet18_shift8_blockres_avg_segment8_e45.pth"
    torch.save({"epoch": 45, "arch": "resnet18", "best_prec1": 12.5, "state_dict": _tsm_official(model)}, path)
    return model, path


def test_load_official_tsm_checkpoint_end_to_end(trained):
    ref, path = trained
    torch.manual_seed(0)
    model = build_model("tsm/tsm-r18", 8, num_classes=8).eval()
    report = load_checkpoint(model, path, strict=True)
    assert report.clean and report.container == "state_dict" and report.source == "tsn-official"
    assert len(report.loaded) == len([k for k in ref.state_dict() if not k.endswith("num_batches_tracked")])
    assert not report.trusted_pickle and len(report.sha256) == 64
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_head_mismatch_is_reported_and_strict_refuses(trained):
    _, path = trained
    model = build_model("tsm/tsm-r18", 8, num_classes=5)
    report = load_checkpoint(model, path)
    assert report.shape_mismatch and report.shape_mismatch[0].startswith("fc.weight: file (8, 512) vs model (5, 512)")
    assert not report.missing and not report.unexpected
    d = report.as_dict()
    assert d["n_shape_mismatch"] == 2 and d["n_loaded"] == len(report.loaded)
    with pytest.raises(UsageError, match="--strict.*2 shape-mismatched"):
        load_checkpoint(model, path, strict=True)


def test_pickled_objects_need_trust(tmp_path, trained):
    _, path = trained
    sd = torch.load(path, weights_only=True)["state_dict"]
    risky = tmp_path / "with_args.pth"
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=0.01)}, risky)
    with pytest.raises(UsageError, match="--trust-checkpoint"):
        read_checkpoint(risky)
    state, container, trusted = read_checkpoint(risky, trust=True)
    assert trusted and container == "state_dict" and len(state) == len(sd)


def test_wrong_files_are_usage_errors(tmp_path):
    model = build_model("tsm/tsm-r18", 8, num_classes=8)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(UsageError, match="not a (readable )?PyTorch checkpoint"):
        load_checkpoint(model, junk)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(3)}}, other)
    with pytest.raises(UsageError, match="no tensor name matches the model"):
        load_checkpoint(model, other)
    with pytest.raises(UsageError, match="does not exist"):
        load_checkpoint(model, tmp_path / "missing.pth")
    empty = tmp_path / "meta.pth"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(UsageError, match="no state dict found"):
        read_checkpoint(empty)
