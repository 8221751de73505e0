"""Hugging Face's TimeSformer and X-CLIP beside tembench's own implementations of the same architectures.

For each pair (a ``transformers/*`` variant and the tembench variant of the same model, at the same frames,
input size and classes) it prints both totals -- multiply-adds (fvcore convention) and parameters -- and
where they differ, per module group: the modules of both networks are mapped to the same groups (patch
embedding, each kind of sub-block summed over the blocks, head, ...), and every group whose counts differ
carries the reason, read from the two implementations. Needs ``pip install 'tembench[hf]'``.

    python benchmarks/hf_side_by_side.py                       # every pair
    python benchmarks/hf_side_by_side.py --pairs timesformer-b,xclip-b32 --format json

TimeSformer: ``transformers/timesformer-{b,hr,l}`` (TimesformerForVideoClassification) vs
``ila/timesformer-vit-b16`` (TimeSformer's divided space-time attention in tembench's CLIP ViT-B/16 host).
X-CLIP: ``transformers/xclip-*`` (XCLIPModel behind tembench.models.hf.XCLIPClassifier) vs ``ila/xclip-vit-*``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass

# (label, HF pattern, tembench pattern, why the two differ when they do). A module path (for multiply-adds)
# or a parameter name goes to the first group whose pattern matches it (re.search); None: no such part.
TIMESFORMER = (
    ("patch embedding ([CLS], positions, time)", r"^timesformer\.embeddings(\.|$)",
     r"^visual\.(conv1|class_embedding|positional_embedding)(\.|$)",
     "HF's patch projection has a bias (tembench's, CLIP's conv1, has none); HF learns a time embedding "
     "(frames x 768, added: no multiply-adds) that tembench's divided attention does not have; HF's position "
     "table is built for the config's input size, tembench keeps CLIP's 224 table and resizes it in the forward"),
    ("norm before the blocks (CLIP's ln_pre)", None, r"^visual\.ln_pre(\.|$)",
     "CLIP's layout normalises the tokens before the first block; TimeSformer's does not"),
    ("blocks: temporal attention (LN, QKV, attention, out)",
     r"\.layer\.\d+\.(temporal_layernorm|temporal_attention)(\.|$)",
     r"\.resblocks\.\d+\.temporal\.(temporal_ln|temporal_attn)(\.|$)", ""),
    ("blocks: temporal FC (temporal_dense / temporal_fc)", r"\.layer\.\d+\.temporal_dense(\.|$)",
     r"\.resblocks\.\d+\.temporal\.temporal_fc(\.|$)", ""),
    ("blocks: spatial attention (LN, QKV, attention, out)", r"\.layer\.\d+\.(layernorm_before|attention)(\.|$)",
     r"\.resblocks\.\d+\.(ln_1|attn)(\.|$)", ""),
    ("blocks: MLP (LN, fc1, fc2)", r"\.layer\.\d+\.(layernorm_after|intermediate|output)(\.|$)",
     r"\.resblocks\.\d+\.(ln_2|mlp)(\.|$)",
     "TimeSformer averages the frames' [CLS] tokens after the spatial attention, so its MLPs see "
     "1 + T x patches tokens; tembench's CLIP host keeps one [CLS] per frame (T x (1 + patches)): T - 1 more "
     "tokens in every block's LayerNorm and MLP"),
    ("final norm", r"^timesformer\.layernorm(\.|$)", r"^visual\.ln_post(\.|$)",
     "HF normalises every token before taking [CLS]; tembench (CLIP's ln_post) only the T [CLS] tokens"),
    ("projection 768 -> 512 (CLIP's visual.proj)", None, r"^visual(\.proj)?$",
     "CLIP's projection of [CLS] to its 512-wide embedding, which TimeSformer does not have"),
    ("classifier", r"^classifier(\.|$)", r"^fc(\.|$)",
     "a linear head from 768 (HF) or from CLIP's 512-wide embedding, averaged over the frames (tembench)"),
)

XCLIP = (
    ("vision embedding (patch conv, [CLS], positions)", r"^xclip\.vision_model\.embeddings(\.|$)",
     r"^visual\.(conv1|class_embedding|positional_embedding)(\.|$)", ""),
    ("norm before the blocks (ln_pre)", r"^xclip\.vision_model\.pre_layernorm(\.|$)", r"^visual\.ln_pre(\.|$)", ""),
    ("blocks: message tokens (message_fc, _ln, _attn)", r"\.layers\.\d+\.message_",
     r"\.resblocks\.\d+\.message_", ""),
    ("blocks: spatial attention (LN, QKV, attention, out)",
     r"^xclip\.vision_model\.encoder\.layers\.\d+\.(layer_norm1|self_attn)(\.|$)",
     r"^visual\.transformer\.resblocks\.\d+\.(ln_1|attn)(\.|$)", ""),
    ("blocks: MLP (LN, fc1, fc2)", r"^xclip\.vision_model\.encoder\.layers\.\d+\.(layer_norm2|mlp)(\.|$)",
     r"^visual\.transformer\.resblocks\.\d+\.(ln_2|mlp)(\.|$)", ""),
    ("norm after the blocks (ln_post)", r"^xclip\.vision_model\.post_layernorm(\.|$)", r"^visual\.ln_post(\.|$)", ""),
    ("visual projection", r"^xclip\.visual_projection(\.|$)", r"^visual\.proj$",
     "the same matmul: a module in HF (visual_projection), a parameter multiplied in the top-level forward in "
     "tembench (counted under 'top-level forward')"),
    ("MIT (multi-frame integration transformer)", r"^xclip\.mit(\.|$)", r"^mit(\.|$)", ""),
    ("prompt generator (+ prompts' visual LN, projection)",
     r"^xclip\.(prompts_generator|prompts_visual_layernorm|prompts_visual_projection)(\.|$)",
     r"^(prompts_generator|prompts_visual_ln|prompts_visual_proj)(\.|$)", ""),
    ("top-level forward (matmuls outside any sub-module)", r"^$", r"^$",
     "both multiply the patch tokens by the prompts' visual projection and score video against class features "
     "here; tembench also applies CLIP's visual projection here (HF: in visual_projection)"),
    ("logit scale", r"^xclip\.logit_scale$", r"^logit_scale$", ""),
    ("text tower (+ text projection)", r"^xclip\.(text_model|text_projection)(\.|$)", None,
     "XCLIPModel carries CLIP's text tower and text projection (not run: the class text features are a "
     "buffer in both); tembench's X-CLIP has no text tower"),
)


@dataclass(frozen=True)
class Pair:
    name: str
    hf: str
    own: str
    frames: int
    size: int
    classes: int
    groups: tuple


PAIRS = (
    Pair("timesformer-b", "transformers/timesformer-b", "ila/timesformer-vit-b16", 8, 224, 400, TIMESFORMER),
    Pair("timesformer-hr", "transformers/timesformer-hr", "ila/timesformer-vit-b16", 16, 448, 400, TIMESFORMER),
    Pair("timesformer-l", "transformers/timesformer-l", "ila/timesformer-vit-b16", 96, 224, 400, TIMESFORMER),
    Pair("xclip-b32", "transformers/xclip-b32", "ila/xclip-vit-b32", 8, 224, 400, XCLIP),
    Pair("xclip-b16", "transformers/xclip-b16", "ila/xclip-vit-b16", 8, 224, 400, XCLIP),
    Pair("xclip-b16-16f", "transformers/xclip-b16", "ila/xclip-vit-b16", 16, 224, 400, XCLIP),
    Pair("xclip-l14-336", "transformers/xclip-l14-336", "ila/xclip-vit-l14-336", 16, 336, 400, XCLIP),
)
OTHER = "(not mapped to a group)"


def _group(name: str, groups: tuple, side: int) -> str:
    for g in groups:
        pattern = g[side]
        if pattern is not None and re.search(pattern, name):
            return g[0]
    return OTHER


def _params(variant: str, frames: int, classes: int) -> dict[str, int]:
    """Parameter name -> numel of the variant built on the meta device (shared parameters once)."""
    from tembench.models.build import build_model
    from tembench.models.meta import meta_build

    with meta_build():
        model = build_model(variant, frames=frames, num_classes=classes)
    return {name: p.numel() for name, p in model.named_parameters()}


def side_by_side(pair: Pair) -> dict:
    """Both totals and every group's multiply-adds and params on both sides, with the reason where they differ."""
    from tembench.cost import count_spec
    from tembench.registry import get_variant

    sides = {}
    for side, variant in ((1, pair.hf), (2, pair.own)):
        r = count_spec(get_variant(variant), frames=pair.frames, size=pair.size, num_classes=pair.classes,
                       temporal_baseline=False)
        macs: dict[str, int] = {}
        for module, n in r.by_module.items():
            g = _group(module, pair.groups, side)
            macs[g] = macs.get(g, 0) + n
        params: dict[str, int] = {}
        for name, n in _params(variant, pair.frames, pair.classes).items():
            g = _group(name, pair.groups, side)
            params[g] = params.get(g, 0) + n
        sides[side] = dict(variant=variant, macs=r.macs, params=r.params, group_macs=macs, group_params=params)
    hf, own = sides[1], sides[2]
    rows = []
    for label, *_, why in pair.groups + ((OTHER, None, None, "modules the groups above do not name"),):
        m1, m2 = hf["group_macs"].get(label, 0), own["group_macs"].get(label, 0)
        p1, p2 = hf["group_params"].get(label, 0), own["group_params"].get(label, 0)
        if label == OTHER and not (m1 or m2 or p1 or p2):
            continue
        rows.append(dict(group=label, hf_macs=m1, own_macs=m2, hf_params=p1, own_params=p2,
                         why=why if (m1, p1) != (m2, p2) else ""))
    return dict(pair=pair.name, hf=pair.hf, own=pair.own, frames=pair.frames, size=pair.size, classes=pair.classes,
                hf_macs=hf["macs"], own_macs=own["macs"], hf_params=hf["params"], own_params=own["params"],
                groups=rows)


def _text(result: dict) -> str:
    g = 1e9
    head = (f"{result['hf']} vs {result['own']}: {result['frames']} frames x {result['size']}, "
            f"{result['classes']} classes (multiply-adds per view, fvcore; diff in millions, own - HF; params)")
    lines = [head, "-" * len(head),
             f"{'group':<58} {'GMACs HF':>10} {'GMACs own':>10} {'diff (M)':>10} {'params HF':>12} "
             f"{'params own':>12} {'diff':>11}"]
    notes = []
    for r in result["groups"]:
        mark = ""
        if r["why"]:
            notes.append(r["why"])
            mark = f" [{len(notes)}]"
        lines.append(f"{(r['group'] + mark)[:58]:<58} {r['hf_macs'] / g:>10.3f} {r['own_macs'] / g:>10.3f} "
                     f"{(r['own_macs'] - r['hf_macs']) / 1e6:>+10.1f} {r['hf_params']:>12,} {r['own_params']:>12,} "
                     f"{r['own_params'] - r['hf_params']:>+11,}")
    lines.append(f"{'total':<58} {result['hf_macs'] / g:>10.3f} {result['own_macs'] / g:>10.3f} "
                 f"{(result['own_macs'] - result['hf_macs']) / 1e6:>+10.1f} {result['hf_params']:>12,} "
                 f"{result['own_params']:>12,} {result['own_params'] - result['hf_params']:>+11,}")
    lines += [f"  [{i}] {why}" for i, why in enumerate(notes, 1)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=",".join(p.name for p in PAIRS),
                    help="comma-separated pair names: " + ", ".join(p.name for p in PAIRS))
    ap.add_argument("--format", choices=("text", "json"), default="text")
    args = ap.parse_args(argv)
    try:
        import transformers  # noqa: F401
    except ImportError:
        print("needs transformers: pip install 'tembench[hf]'", file=sys.stderr)
        return 2
    by_name = {p.name: p for p in PAIRS}
    names = [n.strip() for n in args.pairs.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        print(f"unknown pair(s) {', '.join(unknown)}; one of {', '.join(by_name)}", file=sys.stderr)
        return 2
    results = [side_by_side(by_name[n]) for n in names]
    if args.format == "json":
        print(json.dumps(results, indent=1))
    else:
        print("\n\n".join(_text(r) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
