"""Named counting conventions.

A convention turns the raw per-operator multiply-adds of :mod:`tembench.cost.counter` into one
number: it leaves out some categories of operator (or whole sub-modules) and scales the sum.
Papers rarely say which counter they used; each claim in the registry names the convention that
reproduces it, and ``tembench claims`` shows the ``fvcore`` count beside it.

Each convention carries its provenance: ``origin`` is ``"counter"`` when it is what a counting tool
reports (named in ``provenance``), ``"fitted"`` when we built it to reproduce a paper's published
numbers (the tables named in ``provenance``); a match under a fitted convention is a finding about how
that paper counted, not a plain match. :data:`COUNTING_SLACK` is the one allowance for the differences
between counters that no convention models.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from tembench.errors import UsageError

COUNTING_SLACK = 0.006
"""How far outside a published number's printed-digits interval a count may lie and still match: 0.6%,
the spread between the common counters' totals for the same model (ResNet-50 at 224: thop and ptflops
+0.5%, FlopCounterMode and calflops -0.5% from fvcore, as they count or drop norms, activations and
biases; research/flop-counting.md, Part B2). One constant for every paper."""

ORIGINS = {"counter": "a counter's behaviour: ", "fitted": "fitted by us to "}  # origin -> how `source` reads


@dataclass(frozen=True)
class Convention:
    name: str
    description: str
    factor: int = 1  # 1: one multiply-add = 1 (fvcore, papers' "FLOPs"); 2: true FLOPs
    exclude_categories: frozenset[str] = frozenset()
    exclude_modules: tuple[str, ...] = ()  # fnmatch patterns on the module path
    origin: str = "counter"  # counter: what a counting tool reports; fitted: built to reproduce a paper's tables
    provenance: str = ""  # which counter, or which paper's tables it was fitted to

    @property
    def source(self) -> str:
        """Where it comes from: "a counter's behaviour: thop, ..." or "fitted by us to ATM (ICCV 2023) ..."."""
        return f"{ORIGINS.get(self.origin, self.origin + ': ')}{self.provenance}"

    def counts(self, module: str, category: str) -> bool:
        if category in self.exclude_categories:
            return False
        return not any(fnmatchcase(module, pattern) for pattern in self.exclude_modules)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention(
            "fvcore",
            "fvcore's per-operator rules, 1 multiply-add = 1 FLOP, attention matmuls counted "
            "(scaled_dot_product_attention and its fused kernels as their two matmuls).",
            provenance="fvcore 0.1.5's per-operator handles (fvcore/nn/jit_handles.py), with attention counted "
                       "as fvcore counted it when attention ran as explicit matmuls (PyTorch 1.x)",
        ),
        Convention(
            "fvcore-legacy",
            "What fvcore 0.1.5 reports on PyTorch 2.x: scaled_dot_product_attention (and its fused "
            "kernels) and baddbmm are not counted.",
            exclude_categories=frozenset({"sdpa", "baddbmm"}),
            provenance="fvcore 0.1.5 on PyTorch 2.x (research/flop-counting.md, Part B3)",
        ),
        Convention(
            "flops",
            "True FLOPs: 2 x the fvcore multiply-add count (torch FlopCounterMode, DeepSpeed, "
            "calflops, open_clip profiles).",
            factor=2,
            provenance="torch.utils.flop_counter.FlopCounterMode, DeepSpeed, calflops, open_clip's profiles",
        ),
        Convention(
            "no-bmm",
            "fvcore's rules without batched activation-activation matmuls (bmm, baddbmm, attention, "
            "einsum): what module-hook counters (thop, mmcv) report, and fvcore before bmm support.",
            exclude_categories=frozenset({"bmm", "baddbmm", "sdpa", "einsum"}),
            provenance="module-hook counters (thop, mmcv's get_model_complexity_info), fvcore before bmm support",
        ),
        Convention(
            "no-attention",
            "fvcore's rules without the attention sub-block of every transformer block (modules "
            "'*.attn' and below: QKV projection, attention matmuls, output projection); patch "
            "embedding, LayerNorms, MLPs, heads and temporal modules counted. Reproduces ATM's "
            "published ViT GFLOPs (ICCV 2023, Tables 3, 4, A.6, A.7).",
            exclude_modules=("*.attn", "*.attn.*"),
            origin="fitted",
            provenance="ATM (ICCV 2023) Tables 3, 4, A.6 and A.7, the ViT rows; no counter we know leaves out "
                       "whole attention sub-blocks",
        ),
        Convention(
            "ila-paper",
            "fvcore's rules counting the IST block as the ILA paper describes it (ICCV 2023, §3.1-3.2: "
            "the convolution module predicting the interactive points, masks, pooling, spatial "
            "attention): the released code's additions -- message_fc/message_ln in front of the "
            "alignment, the interactive tokens (message_attn.conv, message_attn.fc) and the two zero-"
            "initialised skip projections -- are left out. Reproduces ILA's SSv2 GFLOPs (Table 2, "
            "ViT-B/16, ViT-L/14) and TimeSformer + ILA (Table 3).",
            exclude_modules=("*.message_fc", "*.message_ln", "*.temporal_skip_fc", "*.temporal_skip_align_fc",
                             "*.message_attn.fc", "*.message_attn.conv"),
            origin="fitted",
            provenance="ILA (ICCV 2023) Table 2 (SSv2: ViT-B/16, ViT-L/14) and Table 3 (TimeSformer + ILA), "
                       "from the paper's description of the block",
        ),
        Convention(
            "ila-paper-k400",
            "ila-paper without the Kinetics-400 interactive block (message_attn.interactive_block: the "
            "released depthwise-separable convolution and 3x3 convolution, 2D -> 256 channels): the "
            "paper's Kinetics convolution module counted as the point-prediction convolutions only "
            "(its SSv2 module adds 'two 3x3 convolution layers', Appendix A). Reproduces ILA's "
            "Kinetics-400 GFLOPs (Tables 1, 4, 7, 8, 15) within 2.5%.",
            exclude_modules=("*.message_fc", "*.message_ln", "*.temporal_skip_fc", "*.temporal_skip_align_fc",
                             "*.message_attn.fc", "*.message_attn.conv", "*.message_attn.interactive_block",
                             "*.message_attn.interactive_block.*"),
            origin="fitted",
            provenance="ILA (ICCV 2023) Kinetics-400 Tables 1, 4, 7, 8, 9 and 15, from the paper's description "
                       "of the Kinetics block",
        ),
    )
}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise UsageError(
            f"unknown counting convention {name!r}; choose one of: {', '.join(CONVENTIONS)}"
        ) from None


def register_convention(convention: Convention) -> None:
    """Add a convention (used by model families whose papers count in their own way)."""
    if convention.name in CONVENTIONS and CONVENTIONS[convention.name] != convention:
        raise ValueError(f"convention {convention.name!r} is already defined differently")
    CONVENTIONS[convention.name] = convention


def check_claims(spec, fail) -> None:
    """The registry check of the claims' counting conventions (``fail(key, problem)`` on an unknown one).
    Install it with ``registry().check([check_claims])``."""
    for j, claim in enumerate(spec.claims):
        if claim.convention not in CONVENTIONS:
            fail(f"claim[{j}].convention", f"unknown convention {claim.convention!r}; one of {', '.join(CONVENTIONS)}")
