"""The Hugging Face family (registry/transformers.toml, tembench/models/hf.py): HF video classifiers built from
their configs on the meta device, counted, judged against the seed papers' rows, and set beside tembench's own
TimeSformer and X-CLIP. Without transformers every test that needs it skips with the install hint; the
registry still lists the family and says how to enable it."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from tembench.registry import COST_METRICS, registry

HINT = "pip install 'tembench[hf]'"
ROOT = Path(__file__).resolve().parent.parent
VARIANTS = [v for v in registry().select() if v.family == "transformers"]

# the HF class each factory returns (X-CLIP: XCLIPModel inside tembench's classifier over cached text features)
HF_CLASS = {
    "transformers/videomae-b": "VideoMAEForVideoClassification",
    "transformers/videomae-l": "VideoMAEForVideoClassification",
    "transformers/timesformer-b": "TimesformerForVideoClassification",
    "transformers/timesformer-hr": "TimesformerForVideoClassification",
    "transformers/timesformer-l": "TimesformerForVideoClassification",
    "transformers/vivit-b": "VivitForVideoClassification",
    "transformers/vivit-h": "VivitForVideoClassification",
    "transformers/xclip-b32": "XCLIPModel",
    "transformers/xclip-b16": "XCLIPModel",
    "transformers/xclip-l14-336": "XCLIPModel",
    "transformers/videoprism-b": "VideoPrismForVideoClassification",
}

# every cost claim of the family and its verdict under the printed-digits rule (the papers' rows whose HF
# configuration is the model the row describes; registry/transformers.toml says which rows are left out)
VERDICTS = {
    ("transformers/timesformer-b", "ILA Table 3", "TimeSformer"): "match",
    ("transformers/timesformer-hr", "ILA Table 2", "TimeSformer-HR"): "match",
    ("transformers/timesformer-hr", "EMIM Table 1", "TimeSformer-HR"): "match",
    ("transformers/timesformer-l", "ILA Table 1", "TimeSformer-L"): "match",
    ("transformers/timesformer-l", "ILA Table 2", "TimeSformer-L"): "match",
    ("transformers/timesformer-l", "EMIM Table 3", "TimeSformer-L"): "mismatch, explained",  # 7140 = 3 views x 2380
    ("transformers/xclip-b32", "ILA Table 4", "X-CLIP"): "mismatch",
    ("transformers/xclip-b32", "ILA Table 15", "X-CLIP"): "mismatch",
    ("transformers/xclip-b16", "ILA Table 1", "X-CLIP-B/16"): "match",
    ("transformers/xclip-b16", "ILA Table 2", "X-CLIP-B/16"): "mismatch",  # 145 is X-CLIP's 400-class figure
    ("transformers/xclip-l14-336", "ILA Table 1", "X-CLIP-L/14 (@336px)"): "match",
    ("transformers/xclip-l14-336", "ATM Table 4", "X-CLIP ViT-L/14 (336) 16x4x3"): "match",
}


@pytest.fixture
def hf():
    return pytest.importorskip("transformers", reason=f"the transformers/* variants need transformers: {HINT}")


def _no_transformers(monkeypatch):
    """This process as if transformers were not installed: not found, not importable."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name.split(".")[0] == "transformers" else real(name, *a, **k))
    for name in [m for m in sys.modules if m == "transformers" or m.startswith("transformers.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "transformers", None)


def test_the_family_is_registered_behind_the_hf_extra():
    assert {v.id for v in VARIANTS} == set(HF_CLASS)
    for v in VARIANTS:
        assert v.is_python and v.factory.startswith("tembench.models.hf:") and v.layout == "BTCHW"
        assert v.requires == ("transformers",) and v.extra == "hf" and v.install_hint == HINT
    text = (ROOT / "pyproject.toml").read_text()
    assert 'hf = ["transformers>=' in text


def test_without_transformers_list_says_how_to_enable_the_family(capsys, monkeypatch):
    _no_transformers(monkeypatch)
    assert all(v.missing == ("transformers",) for v in VARIANTS)
    code, out, err = run_cli(capsys, "list", "transformers")
    assert code == 0 and "transformers/xclip-b32" in out
    assert HINT in err and f"{len(VARIANTS)} of these variants need packages that are not installed" in err
    code, out, err = run_cli(capsys, "profile", "transformers/xclip-b32")
    assert code == 2 and HINT in err and len(err.strip().splitlines()) == 1
    import tembench.models.hf  # noqa: F401 -- imports without transformers (the factories import it)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.id)
def test_every_variant_counts_at_its_default_input(hf, variant):
    """Counted on the meta device at its frames and size: params are HF's own sum(p.numel()), attention runs as
    explicit matmuls (eager), the logits come out per class, and the temporal modules have a share."""
    from tembench.cost import count_spec
    from tembench.models.build import build_model
    from tembench.models.hf import XCLIPClassifier
    from tembench.models.meta import meta_build

    r = count_spec(variant)
    assert (r.frames, r.input_size, r.classes) == (variant.frames, variant.input_size, variant.classes)
    assert r.macs > 10**10 and "sdpa" not in r.by_category
    with meta_build():
        model = build_model(variant.id)
        x = torch.empty(1, variant.frames, 3, variant.input_size, variant.input_size)
    own = model.xclip if isinstance(model, XCLIPClassifier) else model
    assert type(own).__name__ == HF_CLASS[variant.id] and isinstance(own, hf.PreTrainedModel)
    assert r.params == sum(p.numel() for p in own.parameters())
    with torch.no_grad():
        out = model(x)
    logits = out if isinstance(out, torch.Tensor) else out.logits
    assert logits.shape[0] == 1 and logits.shape[-1] == variant.classes
    if variant.temporal_globs:
        assert 0 < r.temporal_macs < r.macs and 0 < r.temporal_params < r.params
    else:
        assert r.temporal_macs == 0  # joint space-time attention: no separable temporal module


def test_xclip_classifier_is_xclip_with_the_text_features_cached(hf):
    """XCLIPClassifier's logits are XCLIPModel's logits_per_video when its buffer holds the text tower's output
    for the class prompts (a small random X-CLIP, real tensors)."""
    from tembench.models.hf import XCLIPClassifier

    torch.manual_seed(0)
    cfg = hf.XCLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                           image_size=32, patch_size=16, num_frames=3, mit_hidden_size=16, mit_intermediate_size=32,
                           mit_num_attention_heads=2),
        projection_dim=16, prompt_num_attention_heads=2)
    cfg._attn_implementation = "eager"
    model = hf.XCLIPModel(cfg).eval()
    ids = torch.randint(0, 100, (5, 7))
    video = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        want = model(input_ids=ids, pixel_values=video).logits_per_video
        clf = XCLIPClassifier(model, num_classes=5)
        clf.text_features.copy_(model.text_projection(model.text_model(input_ids=ids)[1]))
        got = clf(video)
    assert got.shape == (2, 5)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_every_claim_is_within_one_percent_or_a_mismatch_with_its_breakdown(hf):
    from tembench.report.claims import STATUS_EXPLAINED, STATUS_MISMATCH, evaluated, is_match

    reg = registry()
    claims = [c for v in VARIANTS for c in v.claims]
    assert claims and all(c.metric in COST_METRICS for c in claims)  # these models never load trained weights
    rows = evaluated(claims, reg)
    assert {(r.variant, r.source, r.row): r.status for r in rows} == VERDICTS
    for r in rows:
        assert r.measured is not None, (r.variant, r.source)
        if is_match(r.status):
            assert abs(r.rel_err) <= 0.01, (r.variant, r.source, r.rel_err)
        elif r.status == STATUS_EXPLAINED:
            assert r.explanation and r.supporting_value is not None
        else:
            assert r.status == STATUS_MISMATCH and r.breakdown and "goes:" in r.diagnosis, (r.variant, r.source)


def test_the_claims_appear_in_tembench_claims(hf, capsys):
    code, out, _ = run_cli(capsys, "claims", "--table", "ILA Table 3", "--format", "json")
    assert code == 0
    import json

    rows = {(r["variant"], r["row"], r["metric"]): r for r in json.loads(out)}
    assert rows[("transformers/timesformer-b", "TimeSformer", "gflops")]["status"] == "match"
    assert rows[("ila/timesformer-vit-b16", "TimeSformer", "gflops")]["status"] == "match"
    code, out, _ = run_cli(capsys, "claims", "--table", "ILA Table 4")  # a mismatch: where its cost goes, per module
    assert code == 0 and "where the measured 38.21 G goes: xclip.vision_model.encoder.layers.mlp" in " ".join(out.split())


def _side_by_side():
    spec = importlib.util.spec_from_file_location("hf_side_by_side", ROOT / "benchmarks" / "hf_side_by_side.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_side_by_side_with_tembenchs_own_timesformer_and_xclip(hf, capsys):
    """benchmarks/hf_side_by_side.py maps every module of both networks to a group, and the groups add up to the
    totals. X-CLIP: the same multiply-adds, params apart by the text tower. TimeSformer: the temporal attention
    and temporal FC count the same; the difference is where the paper's layouts differ (MLP tokens, head)."""
    sbs = _side_by_side()
    by_name = {p.name: p for p in sbs.PAIRS}
    for name in ("timesformer-b", "xclip-b32"):
        res = sbs.side_by_side(by_name[name])
        groups = {g["group"]: g for g in res["groups"]}
        assert sbs.OTHER not in groups
        for side in ("hf", "own"):
            assert sum(g[f"{side}_macs"] for g in groups.values()) == res[f"{side}_macs"]
            assert sum(g[f"{side}_params"] for g in groups.values()) == res[f"{side}_params"]
        differing = [g for g in groups.values() if (g["hf_macs"], g["hf_params"]) != (g["own_macs"], g["own_params"])]
        assert differing and all(g["why"] for g in differing)
        if name == "xclip-b32":
            assert res["hf_macs"] == res["own_macs"]
            assert res["hf_params"] - res["own_params"] == groups["text tower (+ text projection)"]["hf_params"] > 6e7
        else:
            for label in ("blocks: temporal attention (LN, QKV, attention, out)",
                          "blocks: temporal FC (temporal_dense / temporal_fc)",
                          "blocks: spatial attention (LN, QKV, attention, out)"):
                g = groups[label]
                assert (g["hf_macs"], g["hf_params"]) == (g["own_macs"], g["own_params"]) and g["hf_macs"] > 0
            mlp = groups["blocks: MLP (LN, fc1, fc2)"]
            tokens, width = 7 * 12, 768  # 7 more [CLS] tokens through each of the 12 blocks' LayerNorm and MLP
            assert mlp["own_macs"] - mlp["hf_macs"] == tokens * (2 * width * 4 * width + 5 * width)
    assert sbs.main(["--pairs", "xclip-b32"]) == 0
    out = capsys.readouterr().out
    assert "transformers/xclip-b32 vs ila/xclip-vit-b32" in out and "text tower" in out
