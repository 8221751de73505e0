"""Test protocols as named presets: temporal sampling, resize, crops, normalisation and view fusion.

A :class:`Protocol` fixes everything that moves top-1 between papers (see
``research/datasets-and-eval-protocols.md`` §6-8 and seed-code digest §1.8, §2.4, §3.6, §4.4, §8). Views
are ``frames x crops x clips`` (``8x3x2`` = 8 frames, 3 spatial crops, 2 temporal clips); a preset with
``frames=None`` uses the variant's own frame count. ``--views`` and ``--size`` override a preset and the
record keeps the result (name + every field).

Fusion (:mod:`tembench.evaluate.fusion`): ``prob`` mean of softmax (sigmoid for multi-label), ``score``
mean of logits, ``sum`` sum of softmax/sigmoid, ``max`` per-class maximum of softmax/sigmoid.
Summing or averaging raw logits rank classes identically, so EMIM's "sum of logits" is ``score``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
import hashlib
import json

from tembench.data.sampling import SAMPLERS
from tembench.data.transforms import CROP_MODES, NORMALISATIONS, ClipTransform
from tembench.errors import UsageError

FUSIONS = ("prob", "score", "sum", "max")


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    source: str
    sampler: str
    clips: int
    crop: str  # crop mode, see tembench.data.transforms
    crop_size: int
    resize: int | tuple[int, int]  # short side, or fixed (H, W)
    norm: str
    fusion: str
    frames: int | None = None  # None: the variant's default
    sampler_params: dict = field(default_factory=dict)
    resize_rounding: str = "half-up"
    center_rounding: str = "floor"
    interpolation: str = "bilinear"
    three_crop: str = "three-fullres"  # the preset's 3-crop flavour when --views asks for 3 crops

    @property
    def crops(self) -> int:
        return CROP_MODES[self.crop]

    def views(self, frames: int | None = None) -> str:
        return f"{frames or self.frames or 'T'}x{self.crops}x{self.clips}"

    def transform(self) -> ClipTransform:
        return ClipTransform(self.resize, self.crop, self.crop_size, self.norm, self.resize_rounding,
                             self.center_rounding, self.interpolation)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["resize"] = list(self.resize) if isinstance(self.resize, tuple) else self.resize
        d["crops"] = self.crops
        return d

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def with_views(self, frames: int | None, crops: int | None, clips: int | None) -> "Protocol":
        """Override frames / crops / clips (``--views TxCxK``). 1 crop = centre, 3 = the preset's
        3-crop flavour, 10 = ten-crop."""
        p = self
        if frames is not None:
            p = replace(p, frames=frames)
        if clips is not None and clips != p.clips:
            if p.sampler == "tsn" and clips > 2:
                raise UsageError(f"protocol {p.name}: TSN segment sampling has 1 clip (centres) or 2 (twice-sample), "
                                 f"not {clips}; use a multi-clip protocol (e.g. tsm-dense-10x3, uniformer-k400-4x1)")
            p = replace(p, clips=clips)
        if crops is not None and crops != p.crops:
            modes = {1: "center", 3: p.three_crop, 10: "ten"}
            if crops not in modes:
                raise UsageError(f"crops must be 1 (centre), 3 or 10 (ten-crop), got {crops}")
            p = replace(p, crop=modes[crops])
        if p != self:
            p = replace(p, name=f"{self.name}@{p.views()}" if "@" not in self.name else p.name)
        return p

    def with_size(self, size: int | None) -> "Protocol":
        """Crop size ``size``, resize scaled by the same factor (256/224 of it for a 224 preset)."""
        if size is None or size == self.crop_size:
            return self
        if size <= 0:
            raise UsageError(f"--size must be positive, got {size}")
        f = size / self.crop_size
        resize = (tuple(int(round(x * f)) for x in self.resize) if isinstance(self.resize, tuple)
                  else int(round(self.resize * f)))
        return replace(self, crop_size=size, resize=resize, name=f"{self.name}@{size}px")


def _p(name, description, source, **kw) -> Protocol:
    return Protocol(name=name, description=description, source=source, **kw)


_TSM = dict(resize=256, resize_rounding="floor", center_rounding="round", norm="imagenet", fusion="score",
            three_crop="three-fullres")
_SLOWFAST = dict(resize_rounding="floor", center_rounding="ceil", norm="slowfast", three_crop="three-slowfast")
_MMACTION = dict(resize=256, resize_rounding="half-up", center_rounding="floor", norm="imagenet", fusion="prob",
                 three_crop="three-mmaction")

PRESETS: dict[str, Protocol] = {p.name: p for p in [
    _p("tsn-1x1", "TSN segment centres, 1 clip, short side 256, centre crop 224, mean of softmax (generic default)",
       "mmaction SampleFrames(1,1,T,test_mode) + Resize(-1,256) + CenterCrop(224)",
       sampler="tsn", clips=1, crop="center", crop_size=224, **_MMACTION),
    _p("tsn-25x10", "TSN: 25 segments x 10 crops (ten-crop 224 @256); per-frame logits averaged",
       "mmaction tsn configs '25 clips x 10 crop'; TSN head averages all 250 inputs",
       sampler="tsn", frames=25, clips=1, crop="ten", crop_size=224, **{**_MMACTION, "fusion": "score"}),
    _p("tsm-1x1", "TSM/TAM efficient test: segment centres, 1 clip, short 256, centre 224, mean of logits",
       "TSM test_models.py --test_crops=1 (README 'center crop * 1clip'); TAM SSv1 8x1x1 script",
       sampler="tsn", clips=1, crop="center", crop_size=224, **_TSM),
    _p("tsm-2x3", "TSM accurate test: twice-sample (centres + starts) x 3 full-res-style crops 224 @256, mean of logits",
       "TSM README SSv1 '--test_crops=3 --twice_sample' (GroupFullResSample(224, 256))",
       sampler="tsn", clips=2, crop="three-fullres", crop_size=224, **_TSM),
    _p("tsm-dense-10x3", "TSM/TAM Kinetics 'Non-local protocol': dense 64-frame windows x 10 clips x 3 crops 256 @256",
       "TSM --dense_sample --full_res --test_crops=3; TAM scripts/test_tam_kinetics_rgb_8f.sh",
       sampler="tsm-dense", clips=10, crop="three-fullres", crop_size=256, **_TSM),
    _p("tam-ssv1-1x1", "TAM SSv1: uniform-1 (segment centres) x centre 224 @256, mean of logits",
       "TAM official scripts: SSv1 8f 1 crop 224, uniform-1",
       sampler="tsm-uniform", clips=1, crop="center", crop_size=224, **_TSM),
    _p("tam-ssv2-2x3", "TAM SSv2: uniform-2 (linspace starts) x 3 full-res crops 256 @256, mean of logits",
       "TAM official scripts: SSv2 8f 3 crops full_res, uniform-2",
       sampler="tsm-uniform", clips=2, crop="three-fullres", crop_size=256, **_TSM),
    _p("tam-k400-10x3", "TAM Kinetics: dense-10 x 3 full-res crops 256 @256, mean of logits",
       "TAM official scripts: K400 8f 3 crops full_res, dense-10",
       sampler="tsm-dense", clips=10, crop="three-fullres", crop_size=256, **_TSM),
    _p("atm-ss-2x3", "ATM Something-Something: uniform 2 clips x 3 crops 224 after a fixed 256x320 bicubic resize, "
       "CLIP normalisation, softmax then mean",
       "ATM test_for_frame.py + datasets.py, scripts test_num_segment 2 test_num_crop 3",
       sampler="uniform", clips=2, crop="three-fullres", crop_size=224, resize=(256, 320), norm="clip",
       fusion="prob", interpolation="bicubic", three_crop="three-fullres"),
    _p("atm-k400-2x3", "ATM Kinetics: tick/linspace clips x 3 crops 224 @ short 256, CLIP normalisation, softmax "
       "then mean (views: the SS scripts' 2x3; Kinetics test scripts not read)",
       "ATM datasets.py Kinetics branch (seed digest §1.8)",
       sampler="tsm-uniform", clips=2, crop="three-fullres", crop_size=224, resize=256, norm="clip", fusion="prob",
       resize_rounding="floor", three_crop="three-fullres"),
    _p("ila-4x3", "ILA: 4 random TSN samplings (seeded here) x 3 crops S @ short S, softmax summed over views. "
       "Model state differs from the paper's runs: the official validate() leaves BatchNorm in train mode "
       "(batch statistics) after the first view, since XCLIP.cache_text() ends with self.train(); the "
       "published accuracy was measured that way, tembench evaluates in eval mode (running statistics)",
       "ILA main.py forces TEST.NUM_CLIP=4, NUM_CROP=3; pipeline SampleFrames(multiview=4) without test_mode; "
       "models/xclip.py cache_text (Francis-Rings/ILA @ 1a912d93)",
       sampler="tsn-random", clips=4, crop="three-mmaction", crop_size=224, resize=224, norm="imagenet",
       fusion="sum", sampler_params={"seed": 0}, three_crop="three-mmaction"),
    _p("ila-1x1", "ILA single view: segment midpoints, short int(256/224*S), centre crop S, softmax "
       "(BatchNorm: see ila-4x3)",
       "ILA datasets/pipeline.py single-view branch",
       sampler="segment-midpoints", clips=1, crop="center", crop_size=224, resize=256, norm="imagenet",
       fusion="sum", three_crop="three-mmaction"),
    _p("emim-ss-1x3", "EMIM/UniFormer Something-Something: uniform 1 clip x 3 crops 224 @ short 224, "
       "mean 0.45 std 0.225, sum of logits",
       "EMIM test.sh (TEST.NUM_ENSEMBLE_VIEWS 1, NUM_SPATIAL_CROPS 3, TEST_CROP_SIZE 224), sth.py",
       sampler="uniform", clips=1, crop="three-slowfast", crop_size=224, resize=224, fusion="score", **_SLOWFAST),
    _p("emim-k400-4x3", "EMIM Kinetics: PySlowFast dense clips (rate 4) x 4 clips x 3 crops 224 @224, sum of logits",
       "EMIM test.sh K400 4 x 3; PySlowFast decoder.py",
       sampler="pyslowfast", clips=4, crop="three-slowfast", crop_size=224, resize=224, fusion="score",
       sampler_params={"rate": 4}, **_SLOWFAST),
    _p("uniformer-ss-1x3", "UniFormer Something-Something '16x3x1': uniform 1 clip x 3 crops 224 @224, sum of logits",
       "UniFormer scripts TEST.NUM_ENSEMBLE_VIEWS 1, NUM_SPATIAL_CROPS 3",
       sampler="uniform", clips=1, crop="three-slowfast", crop_size=224, resize=224, fusion="score", **_SLOWFAST),
    _p("uniformer-k400-4x1", "UniFormer Kinetics '16x1x4': PySlowFast dense clips (rate 4) x 4 clips x centre 224",
       "UniFormer README / mmaction uniformer configs (num_clips=4, CenterCrop(224))",
       sampler="pyslowfast", clips=4, crop="center", crop_size=224, resize=224, fusion="score",
       sampler_params={"rate": 4}, **_SLOWFAST),
    _p("mmaction-3d-10x3", "mmaction 3-D: SampleFrames(T, interval 2, 10 clips) x ThreeCrop 256 @256, mean of softmax",
       "mmaction I3D/SlowOnly configs '10 clips x 3 crop'",
       sampler="mmaction-clips", clips=10, crop="three-mmaction", crop_size=256, sampler_params={"interval": 2},
       **_MMACTION),
    _p("slowfast-10x3", "PySlowFast Kinetics: 10 clips (rate 2) x 3 crops 256 @256, sum of softmax",
       "PySlowFast defaults NUM_ENSEMBLE_VIEWS 10, NUM_SPATIAL_CROPS 3, TEST_CROP_SIZE 256",
       sampler="pyslowfast", clips=10, crop="three-slowfast", crop_size=256, resize=256, fusion="sum",
       sampler_params={"rate": 2}, **_SLOWFAST),
    _p("charades-10x3-max", "PySlowFast Charades: 10 clips (rate 8) x 3 crops 256 @256, max of sigmoid over views, mAP",
       "PySlowFast configs/Charades (ENSEMBLE_METHOD max, HEAD_ACT sigmoid); sampling rate is a preset choice",
       sampler="pyslowfast-charades", clips=10, crop="three-slowfast", crop_size=256, resize=256, fusion="max",
       sampler_params={"rate": 8}, **_SLOWFAST),
]}

for _p_ in PRESETS.values():  # presets are data; fail early if one is mistyped
    assert _p_.sampler in SAMPLERS and _p_.norm in NORMALISATIONS and _p_.fusion in FUSIONS, _p_.name
    assert _p_.crop in CROP_MODES and _p_.three_crop in CROP_MODES, _p_.name


def get_protocol(name: str) -> Protocol:
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, PRESETS, n=3, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise UsageError(f"unknown protocol {name!r}{hint} (see `tembench data protocols`)")
    return PRESETS[name]


def default_protocol(arch: str, family: str, dataset_format: str) -> str:
    """The preset of the paper a variant comes from, for a dataset format."""
    ss = dataset_format in ("ssv1", "ssv2")
    if dataset_format == "charades":
        return "charades-10x3-max"
    if arch == "clip_vit":
        if family == "ila":  # ILA's main.py tests every dataset with 4 clips x 3 crops
            return "ila-4x3"
        return "atm-ss-2x3" if ss else "atm-k400-2x3"
    if arch == "uniformer":
        if family == "emim":
            return "emim-ss-1x3" if ss else "emim-k400-4x3"
        return "uniformer-ss-1x3" if ss else "uniformer-k400-4x1"
    if family == "tam":
        return {"ssv1": "tam-ssv1-1x1", "ssv2": "tam-ssv2-2x3"}.get(dataset_format, "tam-k400-10x3")
    if family in ("tsm", "atm"):
        return "tsm-1x1" if ss else "tsm-dense-10x3"
    return "tsn-1x1"


def list_protocols() -> list[dict]:
    return [{"protocol": p.name, "views": p.views(), "sampler": p.sampler, "resize": p.as_dict()["resize"],
             "crop": f"{p.crop} {p.crop_size}", "norm": p.norm, "fusion": p.fusion, "description": p.description,
             "source": p.source} for p in PRESETS.values()]
