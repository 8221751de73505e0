"""The temporal-module protocol: a module defined here, outside tembench, plugs into the ResNet, CLIP ViT
and UniFormer hosts from a registry entry, is checked at registry load, builds, runs and is counted."""
import textwrap

import pytest
import torch
import torch.nn as nn

from tembench.cost import count_spec
from tembench.errors import RegistryError
from tembench.models import protocol
from tembench.models.build import baseline_spec, build_from_spec, check_variant
from tembench.models.protocol import Option, Site, TemporalModule
from tembench.registry import load_registry

NAME = "toy-mix"  # unique: the cost counter caches by (arch, backbone, temporal, options)


# ------------------------------------------------------------------------------------------
# The toy temporal module, written against the public protocol only
# ------------------------------------------------------------------------------------------

class ToyMix(nn.Module):
    """x_t + mix(x_{t+d}) with a 1x1 projection: features (N*T, C, ...) with frames on ``frame_axis``,
    channels on ``channel_axis``; d = +1 (next frame) or -1 (previous frame), zero beyond the clip."""

    def __init__(self, channels: int, frames: int, direction: str, frame_axis: int = 0, channel_axis: int = 1):
        super().__init__()
        self.frames, self.step = frames, 1 if direction == "next" else -1
        self.frame_axis, self.channel_axis = frame_axis, channel_axis
        self.mix = nn.Linear(channels, channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mix(x.movedim(self.channel_axis, -1)).movedim(-1, self.channel_axis)
        clips = y.unflatten(self.frame_axis, (-1, self.frames))
        t = self.frame_axis + 1
        zero = torch.zeros_like(clips.narrow(t, 0, 1))
        if self.step > 0:
            moved = torch.cat([clips.narrow(t, 1, self.frames - 1), zero], dim=t)
        else:
            moved = torch.cat([zero, clips.narrow(t, 0, self.frames - 1)], dim=t)
        return x + moved.flatten(self.frame_axis, t)


class ToyAttention(nn.Module):
    """A UniFormer attention replacement: (B, T*H*W, C), (T, H, W) -> (B, T*H*W, C), mixing time steps."""

    def __init__(self, dim: int, direction: str):
        super().__init__()
        self.step = 1 if direction == "next" else -1
        self.mix = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        t, h, w = size  # UniFormer's time steps: frames / stem_stride
        b, n, c = x.shape
        y = self.mix(x).view(b, t, h * w, c)
        zero = torch.zeros_like(y[:, :1])
        moved = torch.cat([y[:, 1:], zero], dim=1) if self.step > 0 else torch.cat([zero, y[:, :-1]], dim=1)
        return self.proj(x + moved.reshape(b, n, c))


def make_toy(site: Site, every: int, direction: str, stages: list[int]) -> nn.Module | None:
    if site.block % every:
        return None
    if site.host == "resnet":
        return ToyMix(site.channels, site.frames, direction) if site.stage in stages else None
    if site.host == "clip_vit":  # tokens (L, N*T, D)
        return ToyMix(site.channels, site.frames, direction, frame_axis=1, channel_axis=2)
    return ToyAttention(site.channels, direction) if site.stage in stages else None


TOY = TemporalModule(
    name=NAME,
    slots=("resnet.after_conv1", "clip_vit.before_attention", "uniformer.attention"),
    factory=make_toy,
    options={
        "every": Option(1, doc="in every every-th block"),
        "direction": Option("next", choices=("next", "previous"), doc="which neighbouring frame is mixed in"),
        "stages": Option([1, 2, 3, 4], choices=(1, 2, 3, 4), doc="ResNet / UniFormer stages"),
    },
    doc="a toy temporal module for the protocol test",
)

REGISTRY = f'''
[paper]
key = "toy"
title = "A toy temporal module on every host"

[[variant]]
id = "toy/r18"
arch = "resnet"
backbone = "resnet18"
temporal = "{NAME}"
options = {{ every = 2, stages = [2, 3] }}
classes = 10
frames = 4
input_size = 112

[[variant]]
id = "toy/vit-b32"
arch = "clip_vit"
backbone = "vit-b32"
temporal = "{NAME}"
options = {{ direction = "previous", head = "xclip" }}
classes = 10
frames = 4
input_size = 224

[[variant]]
id = "toy/uniformer-s"
arch = "uniformer"
backbone = "uniformer-s"
temporal = "{NAME}"
options = {{ stages = [4] }}
classes = 10
frames = 4
input_size = 64

[[variant]]
id = "toy/tiny-r10"
arch = "resnet"
backbone = "resnet10-w16"
temporal = "{NAME}"
classes = 3
frames = 4
input_size = 32

[[variant]]
id = "toy/tiny-vit"
arch = "clip_vit"
backbone = "vit-tiny"
temporal = "{NAME}"
classes = 3
frames = 4
input_size = 32

[[variant]]
id = "toy/tiny-uniformer"
arch = "uniformer"
backbone = "uniformer-tiny"
temporal = "{NAME}"
options = {{ direction = "previous" }}
classes = 3
frames = 4
input_size = 32
'''


@pytest.fixture
def toy():
    protocol.register(TOY)
    yield TOY
    protocol.unregister(NAME)


def load(tmp_path, text=REGISTRY):
    (tmp_path / "toy.toml").write_text(text)
    return load_registry(tmp_path).check([check_variant])


def test_a_module_from_outside_builds_into_every_host_from_a_registry_entry(toy, tmp_path):
    reg = load(tmp_path)
    expected = {  # where the toy lands, and how many times
        "toy/r18": ("layer2.0.temporal", 2),  # every 2nd block of res3 and res4 (2 blocks each): block 0
        "toy/vit-b32": ("visual.transformer.resblocks.0.control_point1", 12),
        "toy/uniformer-s": ("blocks4.0.attn", 3),
    }
    for vid, (path, count) in expected.items():
        spec = reg.get(vid)
        with torch.device("meta"):
            model = build_from_spec(spec)
        placed = {name for name, m in model.named_modules() if isinstance(m, (ToyMix, ToyAttention))}
        outer = {n for n in placed if not any(n.startswith(o + ".") for o in placed if o != n)}
        assert path in outer and len(outer) == count, (vid, sorted(outer))
        with torch.device("meta"):
            plain = build_from_spec(spec, temporal=False)
        extra = set(model.state_dict()) - set(plain.state_dict())
        assert extra and all(".mix." in k or k.startswith("blocks4.") for k in extra), (vid, sorted(extra)[:4])

        cost = count_spec(spec)
        assert cost.temporal_params == sum(p.numel() for p in model.parameters()) - \
            sum(p.numel() for p in plain.parameters())
        assert cost.temporal_macs != 0 and cost.macs == cost.all_conventions["fvcore"]
        if spec.arch != "uniformer":  # there the toy replaces an attention that costs more
            assert cost.temporal_macs > 0
        assert any(path in module for module in cost.by_module), (vid, path)


def test_the_uniformer_baseline_replaces_attention_with_uniformers_own(toy, tmp_path):
    spec = load(tmp_path).get("toy/uniformer-s")
    assert baseline_spec(spec).options == {"stem_stride": 2}
    with torch.device("meta"):
        model = build_from_spec(spec)
    assert isinstance(model.blocks4[0].attn, ToyAttention) and not isinstance(model.blocks3[0].attn, ToyAttention)
    assert "blocks3.0.attn.qkv.weight" in model.state_dict() and "blocks4.0.attn.qkv.weight" not in model.state_dict()


@pytest.mark.parametrize("vid", ["toy/tiny-r10", "toy/tiny-vit", "toy/tiny-uniformer"])
def test_small_models_with_the_module_run_and_see_the_frame_order(toy, tmp_path, vid):
    spec = load(tmp_path).get(vid)
    torch.manual_seed(0)
    model = build_from_spec(spec).eval()
    x = torch.randn(2, 3, spec.frames, spec.input_size, spec.input_size)
    with torch.no_grad():
        out, flipped = model(x), model(x.flip(2))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    if spec.arch != "uniformer":  # the plain host is order-blind; UniFormer's 3-D convolutions are not
        assert not torch.allclose(out, flipped, atol=1e-5)  # the toy mixes neighbouring frames


@pytest.mark.parametrize("options, key, needle", [
    ('{ direction = "sideways" }', "options.direction", "'sideways' is not one of 'next', 'previous'"),
    ('{ every = "two" }', "options.every", "expected an integer, got 'two'"),
    ('{ stages = [1, 7] }', "options.stages", "7 is not one of 1, 2, 3, 4"),
    ('{ fold_div = 4 }', "options.fold_div", "not an option of toy-mix; known: every, direction, stages"),
])
def test_the_registry_check_rejects_a_bad_option_of_the_module(toy, tmp_path, options, key, needle):
    text = REGISTRY.replace("options = { every = 2, stages = [2, 3] }", f"options = {options}")
    with pytest.raises(RegistryError) as e:
        load(tmp_path, text)
    msg = str(e.value)
    assert "toy.toml" in msg and "'toy/r18'" in msg and f"key '{key}'" in msg and needle in msg, msg


def test_an_unregistered_module_is_an_unknown_temporal_module(tmp_path):
    with pytest.raises(RegistryError, match=f"key 'temporal': unknown temporal module '{NAME}' for arch 'resnet'"):
        load(tmp_path)


def test_registration_is_checked(toy):
    with pytest.raises(ValueError, match="already registered for resnet"):
        protocol.register(TemporalModule(name=NAME, slots=("resnet.conv1",), factory=make_toy))
    with pytest.raises(ValueError, match="unknown slot 'resnet.after_conv2'"):
        TemporalModule(name="x", slots=("resnet.after_conv2",), factory=make_toy)
    with pytest.raises(ValueError, match="the default of option 'k'"):
        TemporalModule(name="x", slots=("resnet.conv1",), factory=make_toy, options={"k": Option(3, type=str)})
    assert protocol.lookup("clip_vit", NAME) is TOY and protocol.lookup("uniformer", NAME) is TOY
    with pytest.raises(KeyError, match="unknown temporal module 'tsm' for arch 'clip_vit'"):
        protocol.lookup("clip_vit", "tsm")


class _Spy:
    """A factory that records every site it is asked about and leaves every slot as it is."""

    def __init__(self):
        self.sites: list[Site] = []

    def __call__(self, site: Site) -> None:
        self.sites.append(site)
        return None


@pytest.mark.parametrize("host, backbone, slots", [
    ("resnet", "resnet18", {"resnet.before_conv1": 8, "resnet.after_conv1": 8, "resnet.conv1": 8,
                            "resnet.after_block": 8, "resnet.stage_end": 4}),
    ("clip_vit", "vit-b32", {"clip_vit.block": 12, "clip_vit.block_start": 12, "clip_vit.before_attention": 12,
                             "clip_vit.before_mlp": 12}),
    ("uniformer", "uniformer-s", {"uniformer.attention": 8 + 3}),
])
def test_every_slot_of_a_host_is_offered_at_every_site_and_an_empty_slot_changes_nothing(host, backbone, slots):
    from tembench.models.build import arch_module

    spy = _Spy()
    spec = protocol.register(TemporalModule(name="spy", slots=tuple(protocol.SLOTS[host]), factory=spy))
    try:
        assert set(slots) == set(protocol.SLOTS[host])
        with torch.device("meta"):
            model = arch_module(host).build(backbone, "spy", {}, 8, 10)
            plain = arch_module(host).build(backbone, None, {}, 8, 10)
    finally:
        protocol.unregister("spy")
    assert spec.hosts == (host,)
    seen = {slot: sum(s.slot == slot for s in spy.sites) for slot in slots}
    assert seen == slots
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    names = dict(model.named_modules())
    for site in spy.sites:
        assert site.host == host and site.backbone == backbone and site.frames == 8
        owner = site.path.rpartition(".")[0]
        assert owner in names, site.path  # the path is where the module would live
    if host == "resnet":
        conv1 = [s for s in spy.sites if s.slot == "resnet.conv1"]
        assert [(s.stage, s.block, s.in_channels, s.channels, s.stride, s.kernel) for s in conv1[2:4]] == \
            [(2, 0, 64, 128, 2, 3), (2, 1, 128, 128, 1, 3)]
    if host == "clip_vit":
        block = [s for s in spy.sites if s.slot == "clip_vit.block"]
        assert all(s.current is names[s.path] and s.heads == 12 and s.channels == 768 for s in block)
    if host == "uniformer":
        assert [(s.stage, s.block, s.channels, s.heads) for s in spy.sites][8:] == \
            [(4, 0, 512, 8), (4, 1, 512, 8), (4, 2, 512, 8)]


def test_the_protocol_docstring_example_runs():
    """The example in the protocol's docstring is complete: it registers, builds and runs."""
    doc = protocol.__doc__
    code = doc[doc.index("    import torch\n"):doc.index("After ``register``")]
    namespace: dict = {}
    exec(textwrap.dedent(code), namespace)  # noqa: S102  (our own docstring)
    try:
        from tembench.models.build import arch_module

        for host, backbone in (("resnet", "resnet10-w16"), ("clip_vit", "vit-tiny")):
            torch.manual_seed(0)
            model = arch_module(host).build(backbone, "prev", {}, 4, 3).eval()
            with torch.no_grad():
                out = model(torch.randn(1, 3, 4, 32, 32))
            assert out.shape == (1, 3)
            assert any(type(m).__name__.endswith("PreviousFrame") for m in model.modules())
    finally:
        protocol.unregister("prev")
