"""ILA (ICCV 2023): the alignment's parts, the official K400 checkpoint layout, CPU forwards of every
registered ILA-paper variant, fvcore cross-checks and the registry's ILA cost claims."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn as nn

from claim_statuses import EXPECTED
from tembench.cost import count_spec
from tembench.report.claims import judge
from tembench.report.measure import count_claim
from tembench.cost.conventions import CONVENTIONS
from tembench.cost.counter import count_ops, meta_build
from tembench.models import clip_video
from tembench.models.build import build_from_spec, build_model
from tembench.models.temporal.ila import JITTER_OFFSETS, ILA, ILABlock, aligned_mask, alignment_loss, merge_pairs
from tembench.models.temporal.spacetime import TokenShift, hungarian_alignment
from tembench.registry import registry

ILA_VARIANTS = registry().select(["ila"])
ILA_MODELS = [v for v in ILA_VARIANTS if not v.is_ensemble]


# ----------------------------------------------------------------------------------------------
# The alignment
# ----------------------------------------------------------------------------------------------

def test_mask_is_flat_near_the_point_and_falls_off_linearly():
    grid = 7  # cell centres at -1, -2/3, ..., 1
    m = aligned_mask(torch.tensor([[0.0, 0.0]]), grid)[0]
    g = torch.linspace(-1, 1, grid)
    w = torch.where(g.abs() <= 0.25, torch.ones(grid), (1 - (g.abs() - 0.25) * 1.5).clamp(min=0))
    torch.testing.assert_close(m, w[:, None] * w[None, :])
    assert m[3, 3] == 1 and m[0, 0] == 0  # |g| = 1 -> 1 - 0.75 * 1.5 < 0
    # (x, y) = (1, -1): the top-right corner; rows follow y, columns follow x
    m = aligned_mask(torch.tensor([[1.0, -1.0]]), grid)[0]
    assert m[0, grid - 1] == 1 and m[grid - 1, 0] == 0 and m[0, grid - 2] == pytest.approx(1 - (1 / 3 - 0.25) * 1.5)


def test_merge_pairs_averages_the_two_copies_of_a_frame():
    pre = torch.tensor([[1.0, 2.0, 3.0]]).view(1, 3, 1)  # pairs (0,1), (1,2), (2,3): frames 0, 1, 2
    cur = torch.tensor([[10.0, 20.0, 30.0]]).view(1, 3, 1)  # frames 1, 2, 3
    assert merge_pairs(pre, cur).flatten().tolist() == [1.0, (2 + 10) / 2, (3 + 20) / 2, 30.0]


def test_points_start_at_the_centre_and_jitter_only_in_training():
    torch.manual_seed(0)
    ila = ILA(16, frames=3)
    x = torch.randn(2, 3, 1 + 16, 16)  # N=2, T=3, a 4x4 grid
    pre, cur = x[:, :-1, 1:], x[:, 1:, 1:]
    ila.eval()
    with torch.no_grad():
        a_pre, a_cur, inter = ila(pre, cur)
        points = ila.predict_points(inter)
    assert points.shape == (2, 2, 4) and torch.all(points == 0)  # zero-initialised last Conv1d
    centre = aligned_mask(torch.zeros(2), 4).reshape(16, 1)
    torch.testing.assert_close(a_pre, pre * centre)
    ila.train()
    with torch.no_grad():
        t_pre, _, _ = ila(pre, cur)
    jittered = aligned_mask(0.2 * torch.tensor(JITTER_OFFSETS, dtype=torch.float), 4).mean(0).reshape(16, 1)
    torch.testing.assert_close(t_pre, pre * jittered)
    ila.align_decay()
    assert ila.jitter == pytest.approx(0.1)


@pytest.mark.parametrize("fusion", ["released", "token", "add", "concat"])
def test_ist_block_keeps_the_shape(fusion):
    from tembench.models.backbones.clip_vit import ResidualAttentionBlock

    torch.manual_seed(0)
    block = ILABlock(ResidualAttentionBlock(64, 1), 64, frames=3, fusion=fusion).eval()
    for p in block.parameters():
        nn.init.normal_(p, std=0.05)
    x = torch.randn(1 + 9, 2 * 3, 64)
    with torch.no_grad():
        y = block(x)
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_released_block_starts_as_the_clip_block():
    """Zero-initialised skip projections: the released IST block is the CLIP block at initialisation."""
    from tembench.models.backbones.clip_vit import ResidualAttentionBlock

    torch.manual_seed(0)
    base = ResidualAttentionBlock(64, 1).eval()
    x = torch.randn(1 + 16, 2 * 4, 64)
    with torch.no_grad():
        want = base(x)
        got = ILABlock(base, 64, frames=4).eval()(x)
    torch.testing.assert_close(got, want)


def test_alignment_loss_reads_every_ist_block_in_training():
    torch.manual_seed(0)
    model = clip_video.build("vit-tiny", "ila", {}, 2, 5).train()
    model(torch.randn(2, 3, 2, 32, 32)).sum()
    loss = alignment_loss(model)
    assert loss.shape == () and 0 <= loss.item() <= 2 * 4 and loss.requires_grad


def test_hungarian_alignment_follows_a_moving_patch():
    hw, d, t = 4, 8, 3
    base = torch.eye(hw, d)  # patch i has feature e_i
    frames = [base, base[[1, 0, 2, 3]], base[[1, 2, 0, 3]]]  # patch 0's content moves 0 -> 1 -> 2
    patches = torch.stack(frames, dim=1)  # (hw, T, D), N = 1
    index = hungarian_alignment(patches, t)[0]  # (T, hw): tube s is at index[t, s] in frame t
    assert index[:, 0].tolist() == [0, 1, 2] and index[:, 3].tolist() == [3, 3, 3]


def test_ata_trains_with_gradients():
    """The Hungarian matching runs on a detached similarity; the temporal attention gets gradients."""
    torch.manual_seed(0)
    model = clip_video.build("vit-tiny", "ata", {}, 3, 5).train()
    model(torch.randn(2, 3, 3, 32, 32)).sum().backward()
    grad = model.visual.transformer.resblocks[0].temporal.temporal_fc.weight.grad
    assert grad is not None and torch.isfinite(grad).all()


def test_token_shift_moves_an_eighth_each_way():
    x = torch.arange(3.0).view(1, 3, 1).expand(2, 3, 16).contiguous()  # frame t holds t
    y = TokenShift(3)(x)
    assert y[0, :, :2].tolist() == [[1, 1], [2, 2], [0, 0]] and y[0, :, 2:4].tolist() == [[0, 0], [0, 0], [1, 1]]
    assert torch.equal(y[:, :, 4:], x[:, :, 4:])


# ----------------------------------------------------------------------------------------------
# Checkpoint layout (seed-code digest §3.5: container "model", no "module." prefix)
# ----------------------------------------------------------------------------------------------

def _bn(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def _lin(prefix: str, cout: int, cin: int, bias: bool = True) -> dict[str, tuple]:
    return {f"{prefix}.weight": (cout, cin), **({f"{prefix}.bias": (cout,)} if bias else {})}


def _ln(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def _mha(prefix: str, c: int) -> dict[str, tuple]:
    return {f"{prefix}.in_proj_weight": (3 * c, c), f"{prefix}.in_proj_bias": (3 * c,), **_lin(f"{prefix}.out_proj", c, c)}


def official_ila_k400_b32_keys(classes: int = 400) -> dict[str, tuple]:
    """The visual, MIT and prompt keys of the released K400 ViT-B/32 checkpoint (Francis-Rings/ILA master,
    models/xclip.py + mat.py + align.py), written from the digest and the released module layout."""
    d, layers, grid, e, pairs = 768, 12, 7, 512, 7
    keys = {"visual.conv1.weight": (d, 3, 32, 32), "visual.class_embedding": (d,),
            "visual.positional_embedding": (grid * grid + 1, d), **_ln("visual.ln_pre", d),
            **_ln("visual.ln_post", d), "visual.proj": (d, e)}
    for i in range(layers):
        p = f"visual.transformer.resblocks.{i}"
        keys.update({**_mha(f"{p}.attn", d), **_ln(f"{p}.ln_1", d), **_ln(f"{p}.ln_2", d),
                     **_lin(f"{p}.mlp.c_fc", 4 * d, d), **_lin(f"{p}.mlp.c_proj", d, 4 * d),
                     **_lin(f"{p}.message_fc", d, d), **_ln(f"{p}.message_ln", d),
                     **_lin(f"{p}.temporal_skip_fc", d, d), **_lin(f"{p}.temporal_skip_align_fc", d, d)})
        a = f"{p}.message_attn"
        keys.update({f"{a}.interactive_block.0.depthwise_conv.0.weight": (2 * d, 1, 3, 3),
                     f"{a}.interactive_block.0.depthwise_conv.0.bias": (2 * d,),
                     **_bn(f"{a}.interactive_block.0.depthwise_conv.1", 2 * d),
                     f"{a}.interactive_block.0.pointwise_conv.0.weight": (256, 2 * d, 1, 1),
                     f"{a}.interactive_block.0.pointwise_conv.0.bias": (256,),
                     **_bn(f"{a}.interactive_block.0.pointwise_conv.1", 256),
                     f"{a}.interactive_block.1.weight": (256, 256, 3, 3), f"{a}.interactive_block.1.bias": (256,),
                     **_bn(f"{a}.interactive_block.2", 256),
                     **_lin(f"{a}.fc", d, 128), f"{a}.conv.weight": (128, 128, 3, 1, 1), f"{a}.conv.bias": (128,),
                     f"{a}.prediction_block.0.weight": (128, 256, 3, 3), f"{a}.prediction_block.0.bias": (128,),
                     **_bn(f"{a}.prediction_block.1", 128),
                     f"{a}.prediction_block.4.weight": (128, 128, 3, 3), f"{a}.prediction_block.4.bias": (128,),
                     **_bn(f"{a}.prediction_block.5", 128),
                     f"{a}.prediction_block.10.weight": (64, 64, 1), f"{a}.prediction_block.10.bias": (64,),
                     f"{a}.prediction_block.12.weight": (4, 32, 1), f"{a}.prediction_block.12.bias": (4,)})
    keys["mit.positional_embedding"] = (1, 8, e)
    keys.update({**_mha("mit.resblocks.0.attn", e), **_ln("mit.resblocks.0.ln_1", e), **_ln("mit.resblocks.0.ln_2", e),
                 **_lin("mit.resblocks.0.mlp.c_fc", 4 * e, e), **_lin("mit.resblocks.0.mlp.c_proj", e, 4 * e)})
    keys.update({**_ln("prompts_visual_ln", d), "prompts_visual_proj": (d, e), **_ln("prompts_generator.norm", e),
                 "prompts_generator.alpha": (e,), "logit_scale": ()})
    for j in range(2):
        q = f"prompts_generator.decoder.{j}"
        keys.update({**_lin(f"{q}.cross_attn.q_proj", e, e, False), **_lin(f"{q}.cross_attn.k_proj", e, e, False),
                     **_lin(f"{q}.cross_attn.v_proj", e, e, False), **_lin(f"{q}.cross_attn.proj", e, e),
                     **_ln(f"{q}.norm1", e), **_ln(f"{q}.norm3", e),
                     **_lin(f"{q}.mlp.0", 4 * e, e), **_lin(f"{q}.mlp.3", e, 4 * e)})
    return keys


TEXT_TOWER = {"token_embedding.weight": (49408, 512), "positional_embedding": (77, 512), "text_projection": (512, 512),
              **_ln("ln_final", 512), "transformer.resblocks.0.attn.in_proj_weight": (1536, 512)}


def test_official_ila_k400_b32_checkpoint_layout_loads():
    keys = official_ila_k400_b32_keys()
    checkpoint = {"model": {k: torch.zeros(()).expand(s) if s else torch.tensor(0.0)
                            for k, s in {**keys, **TEXT_TOWER}.items()}, "epoch": 29, "max_accuracy": 81.3}
    with meta_build():
        model = build_model("ila/ila-vit-b32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copying into meta parameters is a no-op: keys and shapes are checked
        result = model.load_state_dict(checkpoint["model"], strict=False)
    assert [k for k in result.missing_keys if k.startswith("visual.")] == []
    assert [k for k in result.unexpected_keys if k.startswith("visual.")] == []
    assert result.missing_keys == ["text_features"]  # the class text features come with the checkpoint's classes
    assert sorted(result.unexpected_keys) == sorted(TEXT_TOWER)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == {**keys, "text_features": (400, 512)}


def test_ssv2_variant_has_the_linear_head_keys():
    with meta_build():
        model = build_model("ila/ila-ssv2-vit-b16")
    keys = set(model.state_dict())
    assert {"mit.classify_head.0.weight", "mit.classify_head.2.weight", "mit.classify_head.2.bias"} <= keys
    p = "visual.transformer.resblocks.0.message_attn.interactive_block"
    assert model.state_dict()[f"{p}.0.weight"].shape == (256, 2 * 768, 3, 3) and f"{p}.3.weight" in keys
    assert not any(k.startswith(("prompts_", "logit_scale", "text_features")) for k in keys)


# ----------------------------------------------------------------------------------------------
# Forwards: ILA-ViT-B/32 at 8 x 224 x 224; every other registered model at 2 frames, small input
# ----------------------------------------------------------------------------------------------

_POOL = torch.rand(1 << 23, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _materialize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Meta model -> CPU with cheap pseudo-random weights: slices of one pool of uniform numbers scaled
    by 1/sqrt(fan-in) (drawing ViT-L's 400M numbers one by one would take seconds); LayerNorm and BN
    weights 1, biases 0, BN statistics 0/1, class text features random."""
    model = model.to_empty(device="cpu")
    pool = _POOL.roll(seed)
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            if p.dim() == 1 and name.endswith("weight"):
                p.fill_(1.0)
            elif p.dim() <= 1:
                p.zero_()
            else:
                flat, n = p.view(-1), p.numel()
                start = (7919 * i) % (pool.numel() - min(n, pool.numel()) + 1)
                for k in range(0, n, pool.numel()):
                    m = min(pool.numel() - start, n - k)
                    flat[k:k + m].copy_(pool[start:start + m])
                flat.mul_(p[0].numel() ** -0.5)
        for name, b in model.named_buffers():
            if name.endswith("text_features"):
                b.copy_(pool[: b.numel()].view_as(b))
            else:
                b.fill_(1.0 if name.endswith("running_var") else 0.0)
    return model.eval()


def _build(spec, **kw) -> nn.Module:
    with meta_build():  # no weight initialisers on meta (fast)
        return build_from_spec(spec, **kw)


def test_ila_vit_b32_forward_8x224_is_finite():
    model = _materialize(_build(registry().get("ila/ila-vit-b32")))
    x = torch.randn(1, 3, 8, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, 400) and torch.isfinite(logits).all()


def _model_key(v):
    return (v.arch, v.backbone, v.temporal, json.dumps(v.options, sort_keys=True))


def _unique_models():
    seen = {}
    for v in ILA_MODELS:
        seen.setdefault(_model_key(v), v)
    return list(seen.values())


SMALL = {"vit-b32": 128, "vit-b16": 64, "vit-l14": 56, "vit-l14-336": 56}  # a 4x4 patch grid


@pytest.mark.parametrize("spec", _unique_models(), ids=lambda v: v.id)
def test_every_ila_paper_variant_forwards_on_cpu(spec):
    frames, classes = 2, 7
    model = _materialize(_build(spec, frames=frames, num_classes=classes))
    size = SMALL.get(spec.backbone, 64)
    x = torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (1, classes) and torch.isfinite(logits).all()


def test_every_ila_paper_variant_is_covered():
    covered = {_model_key(v) for v in _unique_models()}
    assert all(_model_key(v) in covered for v in ILA_MODELS) and len(ILA_MODELS) >= 25


# ----------------------------------------------------------------------------------------------
# Counting
# ----------------------------------------------------------------------------------------------

def _fvcore_total(model, x):
    fvcore_nn = pytest.importorskip("fvcore.nn")
    analysis = fvcore_nn.FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis.total()


@pytest.mark.parametrize("temporal,options", [
    ("ila", {"head": "xclip"}), ("ila", {"fusion": "token", "message": False, "interactive": "ssv2"}),
    ("xclip", {"head": "xclip"}), ("divided", {}), ("joint", {"mode": "add"}),
])
def test_fvcore_real_forward_agrees(temporal, options):
    def make():
        return clip_video.build("vit-b32", temporal, options, 3, 10)

    x = torch.randn(1, 3, 3, 128, 128)
    with meta_build():
        real, meta = make(), make()
    real = _materialize(real)
    counts = count_ops(meta, torch.empty(*x.shape, device="meta"))
    assert sum(n for *_, n in counts.items()) == _fvcore_total(real, x)


def test_ila_conventions_leave_out_the_released_extras():
    spec = registry().get("ila/ila-vit-b32")
    r = count_spec(spec)
    conv = r.all_conventions
    full, paper, k400 = conv["fvcore"], conv["ila-paper"], conv["ila-paper-k400"]
    by = r.by_module
    def total(pattern):
        return sum(n for m, n in by.items() if pattern in m)
    assert full - paper == sum(total(f".{k}") for k in ("message_fc", "message_ln", "temporal_skip_fc",
                                                          "temporal_skip_align_fc", "message_attn.fc", "message_attn.conv"))
    assert paper - k400 == total(".message_attn.interactive_block")
    assert CONVENTIONS["ila-paper"].counts("visual.transformer.resblocks.0.message_attn.prediction_block", "conv")


def _cost_claims():
    for v in ILA_VARIANTS:
        for c in v.claims:
            if c.metric == "gflops":
                yield v, c


@pytest.mark.parametrize("spec,claim", [pytest.param(v, c, id=f"{v.id}:{c.source}:{c.row}") for v, c in _cost_claims()])
def test_ila_cost_claims_have_their_recorded_verdict(spec, claim):
    """The one judge (report.claims.judge): a plain match, or the verdict tests/claim_statuses.py records
    (the ILA conventions are fitted by us, and say so)."""
    v = judge(claim, count_claim(spec, claim))
    assert v.status == EXPECTED.get((spec.id, claim.source, claim.row, claim.metric), "match"), (v.diff, claim.value)


def _ranks_agree(pairs) -> bool:
    """Measured ordering consistent with the published one (ties in the paper may go either way)."""
    return all(not (p1 < p2 and m1 > m2) for p1, m1 in pairs for p2, m2 in pairs)


@pytest.mark.parametrize("table", ["ILA Table 4", "ILA Table 7", "ILA Table 15"])
def test_measured_gflops_order_the_rows_as_the_paper(table):
    pairs = [(c.value, count_claim(v, c)) for v, c in _cost_claims() if c.source == table]
    assert len(pairs) == len(registry().tables[table].rows)
    assert _ranks_agree(pairs), sorted(pairs)


# ----------------------------------------------------------------------------------------------
# `tembench eval --class-features`: the class text features of an X-CLIP/ILA head (issue 21)
# ----------------------------------------------------------------------------------------------

TINY_XCLIP_REGISTRY = """
[paper]
key = "tiny"
title = "a tiny X-CLIP head for the class-features tests"

[[variant]]
id = "tiny/xclip-tiny"
arch = "clip_vit"
backbone = "vit-tiny"
options = { head = "xclip" }
classes = 8
frames = 2
input_size = 32
description = "vit-tiny with X-CLIP's video head (MIT, video prompts, text features)"
"""


@pytest.fixture(scope="module")
def k400_data(tmp_path_factory):
    from tembench.data.synth import write_synthetic

    root = tmp_path_factory.mktemp("k400")
    write_synthetic("k400", root, train_per_class=0, val_per_class=1, size=(32, 24), frames=(10, 14))
    return root


@pytest.fixture
def tiny_registry(tmp_path, monkeypatch, runs_dir):
    d = tmp_path / "registry"
    d.mkdir()
    (d / "tiny.toml").write_text(TINY_XCLIP_REGISTRY)
    monkeypatch.setenv("TEMBENCH_REGISTRY", str(d))
    return d


def _eval(capsys, data, *extra):
    from conftest import run_cli

    return run_cli(capsys, "eval", "tiny/xclip-tiny", "--data", data, "--views", "2x1x1", "--size", 32,
                   "--format", "json", *extra)


def test_class_features_from_a_file_are_used_and_recorded(capsys, tiny_registry, k400_data, tmp_path):
    from tembench.evaluate.checkpoint import file_sha256

    code, out, err = _eval(capsys, k400_data)
    assert code == 0, err
    zeros = json.loads(out)[0]
    assert zeros["text_features"]["source"] == "none" and "warning: class text features are zeros" in err

    features = tmp_path / "k400_text_features.pt"
    torch.save(torch.randn(8, 64), features)
    code, out, err = _eval(capsys, k400_data, "--class-features", features)
    assert code == 0, err
    rec = json.loads(out)[0]
    assert rec["text_features"] == {"source": "file", "path": str(features), "sha256": file_sha256(features),
                                    "shape": [8, 64]}
    assert "class text features from the file k400_text_features.pt" in err and "warning" not in err
    saved = json.loads(open(rec["run_file"]).read())
    assert saved["params"]["class_features"] == str(features)
    assert saved["records"][0]["text_features"]["source"] == "file"


def test_class_features_from_the_checkpoint(capsys, tiny_registry, k400_data, tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny/xclip-tiny", 2, num_classes=8)
    model.set_class_features(torch.randn(8, 64))
    ckpt = tmp_path / "tiny.pth"
    torch.save(model.state_dict(), ckpt)
    code, out, err = _eval(capsys, k400_data, "--checkpoint", ckpt)
    assert code == 0, err
    rec = json.loads(out)[0]
    assert rec["text_features"]["source"] == "checkpoint" and rec["text_features"]["path"] == str(ckpt)
    assert "class text features from the checkpoint tiny.pth" in err


@pytest.mark.parametrize("content, needle", [
    (lambda: torch.randn(7, 64), "have shape (7, 64); expected (classes, E) = (8, 64)"),
    (lambda: {"text_features": torch.randn(8, 64)}, "holds a dict; expected a float tensor of shape (classes, E) = (8, 64)"),
    (lambda: torch.zeros(8, 64, dtype=torch.long), "holds a torch.int64 tensor"),
    (lambda: torch.full((8, 64), float("nan")), "contain NaN or infinite values"),
    (None, "is not a tensor saved with torch.save"),
])
def test_bad_class_features_are_one_line_errors(capsys, tiny_registry, k400_data, tmp_path, content, needle):
    path = tmp_path / "features.pt"
    if content is None:
        path.write_text("not a tensor")
    else:
        torch.save(content(), path)
    code, out, err = _eval(capsys, k400_data, "--class-features", path)
    assert code == 2 and needle in err and str(path) in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_class_features_for_a_model_without_text_head(capsys, runs_dir, k400_data, tmp_path):
    from conftest import run_cli

    path = tmp_path / "features.pt"
    torch.save(torch.randn(8, 64), path)
    code, out, err = run_cli(capsys, "eval", "tsn/tsn-r18", "--data", k400_data, "--views", "1x1x1", "--size", 32,
                             "--class-features", path)
    assert code == 2 and "has no class text features" in err, err
