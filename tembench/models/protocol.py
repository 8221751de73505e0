"""The temporal-module protocol: how a temporal module plugs into tembench's video networks.

A **host** is one of tembench's networks, named as the registry's ``arch``: ``resnet`` (2-D ResNets run
on every frame, TSN-style), ``clip_vit`` (OpenAI CLIP ViT visual towers) and ``uniformer`` (UniFormer
video backbones). A host has named **slots**, places where a temporal module may go; an empty slot is
the identity. A **temporal module** is a :class:`TemporalModule` spec: a name, the options it takes, the
slots it may occupy and a factory. :func:`register` puts a spec in the catalogue, looked up by
(host, name); a registry entry then uses it like a built-in one::

    [[variant]]
    id = "mine/prev-r50"
    arch = "resnet"            # the host
    backbone = "resnet50"
    temporal = "prev"          # the spec's name
    options = { stages = [3, 4] }

Loading the registry checks the options against the spec (unknown names, kinds of values, choices);
building calls the factory at every site of the slots it declared; cost counting (the temporal overhead
included) and latency need nothing more. Register before the registry that uses the module is loaded
(in Python: before the first ``tembench`` call that reads it). The hosts' slots are the same for every
module, built-in or not: TSM, TAM, ATM, ILA, EMIM and the rest are specs like any other
(``tembench/models/temporal/``, one file each).

What a spec declares
--------------------
``TemporalModule(name, slots, factory, options={}, host_defaults={}, doc="")``

* ``name``: the registry's ``temporal`` value, unique per host (two hosts may each have a ``tconv``);
* ``slots``: the slots it may occupy, each ``"<host>.<slot>"`` from the table below; its hosts are those
  named there;
* ``options``: option name -> :class:`Option` (default, type, choices, doc). A registry entry may give
  any of them; the factory receives all of them, given or defaulted;
* ``host_defaults``: new defaults for the host's own options while this module is in (EMIM keeps every
  frame: ``{"stem_stride": 1}`` on ``uniformer``). The module's baseline (the host without it, used for
  the temporal overhead) keeps these values;
* ``factory(site, **options) -> nn.Module | None``: called once at every site of every slot in
  ``slots``, in the host's order (below). ``site`` is a :class:`Site`: where the module would go and
  what the network looks like there. Return a module to put in the slot, or ``None`` to leave the slot
  as it is (a module that lives only in some stages or blocks decides that here);
* ``doc``: one line for listings.

A factory raises ``ValueError`` for an option value it cannot build (the registry's check already
rejected unknown options and values of the wrong kind or outside ``choices``).

The slots of each host
----------------------
Tensors carry the frames of a clip folded into a batch axis, clip-major: index ``n * T + t`` is frame
``t`` of clip ``n`` (``site.frames`` is T). A module keeps the shape of what it receives, except where
said otherwise.

``resnet``, per residual block ``layer{stage}.{block}`` (``site.stage`` 1-4 is torchvision's
``layer1``-``layer4``, the paper's res2-res5; ``site.block`` from 0; ``site.blocks`` blocks in the stage).
Features are (N*T, C, H, W).

=========================  ===========================================================================
``resnet.before_conv1``    attribute ``shift``: on the residual branch, before ``conv1`` (TSM's place);
                           ``channels`` = the block's input channels
``resnet.after_conv1``     attribute ``temporal``: after ``conv1 -> bn1 -> relu`` (TAM's place);
                           ``channels`` = the block's width (``planes``)
``resnet.conv1``           replaces ``conv1`` (same name; I3D's inflation): (N*T, in_channels, H, W) ->
                           (N*T, channels, H/stride, W/stride); ``in_channels``, ``channels``,
                           ``stride``, ``kernel`` (1 in a bottleneck, 3 in a basic block) describe the
                           convolution it replaces; ``current`` is None (the default is built only
                           when the slot is left)
``resnet.after_block``     runs after the whole block: the block becomes ``layer{s}.{i}.block`` and the
                           module ``layer{s}.{i}.nl`` (the non-local layout); ``channels`` = the block's
                           output channels; ``current`` = the block
``resnet.stage_end``       runs once after the last block of the stage, as the stage's child named after
                           the module (its name with characters other than letters, digits and ``_``
                           replaced by ``_``): ``layer{s}.<name>`` (ATM's ``layer2.atm``); ``channels`` =
                           the stage's output channels, ``block`` = its last block
=========================  ===========================================================================

``clip_vit``, per residual block ``visual.transformer.resblocks.{block}`` (``site.stage`` is None,
``site.blocks`` the tower's depth, ``channels`` its width D, ``heads`` its heads). Tokens are
(L, N*T, D), sequence-first as in CLIP, [CLS] first then the h x w patches row by row.

================================  ====================================================================
``clip_vit.block``                replaces the whole block; ``current`` = the CLIP block. The new block
                                  takes and returns (L, N*T, D) and must keep the CLIP block's
                                  sub-modules under their names (``attn``, ``ln_1``, ``mlp``, ``ln_2``,
                                  and the three control points below), so CLIP weights still load and
                                  the other slots still work (ILA, X-CLIP, TimeSformer's blocks)
``clip_vit.block_start``          attribute ``control_point_c``: at the start of the block (ATM)
``clip_vit.before_attention``     attribute ``control_point1``: before ``ln_1`` and the attention
``clip_vit.before_mlp``           attribute ``control_point2``: before ``ln_2`` and the MLP
================================  ====================================================================

``uniformer``, per global-attention block ``blocks{stage}.{block}`` of stages 3 and 4 (the SABlocks;
stages 1-2 are convolutional):

=========================  ===========================================================================
``uniformer.attention``    replaces the self-attention ``attn``: ``forward(x, size)`` takes tokens
                           (B, T*H*W, C) (after the block's LayerNorm) and ``size`` = (T, H, W), and
                           returns (B, T*H*W, C), added to the block's residual; ``channels`` = C,
                           ``heads``; ``current`` is None (UniFormer's own attention, ``qkv`` and
                           ``proj``, is built only when the slot is left). UniFormer's time axis is
                           T = frames / ``stem_stride``; the clip's batch axis is not folded here
=========================  ===========================================================================

Order and initialisation
------------------------
A real build runs the same initialisation every time, so a seed gives the same weights:

* ``resnet``: per block, in network order, the factory is called for ``before_conv1``, then
  ``after_conv1``, then ``conv1``; these modules are built inside the network's construction and go
  through its initialisation afterwards (Kaiming-normal for every ``nn.Conv2d``, ones and zeros for
  every ``nn.BatchNorm2d``). ``after_block`` (every block, in order), then ``stage_end`` (stages 1-4)
  are placed after it and keep their own initialisation;
* ``clip_vit``: after the tower is built and initialised, the slots are filled in the order
  ``block``, ``block_start``, ``before_attention``, ``before_mlp``, each over blocks 0 to depth-1;
* ``uniformer``: the factory is called while the network is built (stage 3, then 4, blocks in order);
  the network then applies UniFormer's initialisation to every ``nn.Linear`` and ``nn.LayerNorm``
  (truncated normal, std 0.02; zero biases; ones), after which any sub-module with an
  ``init_weights()`` method gets it called (so a module can keep its own).

On the meta device (cost counting, or a build under ``with torch.device("meta"):``) every host builds
inside :func:`tembench.models.meta.building`: weight initialisers are skipped, so a module initialises
its weights unconditionally and needs no ``is_meta`` test.

Example
-------
A frame-difference module, on ResNet blocks after ``conv1`` and on ViT blocks before the attention::

    import torch
    import torch.nn as nn

    from tembench.models.protocol import Option, TemporalModule, register


    class PreviousFrame(nn.Module):
        \"\"\"y_t = x_t + w * (x_t - x_{t-1}), one weight per channel, zero at first (the identity);
        frame 0 has no predecessor and is kept. x: (N*T, C, ...).\"\"\"

        def __init__(self, channels, frames):
            super().__init__()
            self.frames = frames
            self.weight = nn.Parameter(torch.zeros(channels))

        def forward(self, x):
            clips = x.unflatten(0, (-1, self.frames))  # (N, T, C, ...)
            previous = torch.cat([clips[:, :1], clips[:, :-1]], dim=1)
            w = self.weight.view(-1, *[1] * (x.dim() - 2))
            return (clips + w * (clips - previous)).flatten(0, 1)


    class TokenPreviousFrame(PreviousFrame):
        \"\"\"The same on ViT tokens (L, N*T, D).\"\"\"

        def forward(self, x):
            return super().forward(x.permute(1, 2, 0)).permute(2, 0, 1)


    def make(site, stages):
        if site.host == "clip_vit":
            return TokenPreviousFrame(site.channels, site.frames)
        return PreviousFrame(site.channels, site.frames) if site.stage in stages else None


    register(TemporalModule(
        name="prev",
        slots=("resnet.after_conv1", "clip_vit.before_attention"),
        factory=make,
        options={"stages": Option([1, 2, 3, 4], choices=(1, 2, 3, 4), doc="ResNet stages (1 = res2)")},
        doc="frame difference, scaled per channel",
    ))

After ``register``, ``arch = "resnet"`` or ``"clip_vit"`` with ``temporal = "prev"`` builds (e.g.
``tembench.models.build.build_from_spec(spec)``) and counts (``tembench.cost.count_spec(spec)``) like a
built-in variant: its ``temporal_macs`` and ``temporal_params`` are measured against the same host without
it. ``tests/test_protocol.py`` plugs one module into all three hosts from a registry directory.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch.nn as nn

__all__ = ["Option", "Site", "TemporalModule", "SLOTS", "HOSTS", "register", "unregister", "lookup", "names",
           "option_table", "option_defaults", "resolve_options", "Plan"]

# host -> slot -> what a factory is given there (the module docstring has the full table)
SLOTS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "resnet": MappingProxyType({
        "resnet.before_conv1": "residual branch before conv1 (attribute `shift`); channels = block input",
        "resnet.after_conv1": "after conv1-bn1-relu (attribute `temporal`); channels = block width",
        "resnet.conv1": "replaces conv1; in_channels, channels, stride, kernel of the convolution",
        "resnet.after_block": "after the block (`block` + `nl`); channels = block output",
        "resnet.stage_end": "after the stage's last block (child `<name>` of the stage); channels = stage output",
    }),
    "clip_vit": MappingProxyType({
        "clip_vit.block": "replaces the residual block (current = the CLIP block, whose parts it keeps)",
        "clip_vit.block_start": "attribute `control_point_c`: start of the block",
        "clip_vit.before_attention": "attribute `control_point1`: before ln_1 + attention",
        "clip_vit.before_mlp": "attribute `control_point2`: before ln_2 + MLP",
    }),
    "uniformer": MappingProxyType({
        "uniformer.attention": "replaces a stage-3/4 block's self-attention: forward(tokens, (T, H, W))",
    }),
})
HOSTS = tuple(SLOTS)

_ARTICLE_NAMES = {bool: "a bool", int: "an integer", float: "a number", str: "a string", list: "a list",
                  dict: "a dict"}


def _is_instance(value: Any, kind: type) -> bool:
    """``isinstance`` where a bool is not an integer and an integer is a number."""
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


@dataclass(frozen=True)
class Option:
    """One option of a temporal module (or of a host).

    * ``default``: the value when the registry entry does not give one;
    * ``type``: the type, or a tuple of types, a value must have; by default the default's type.
      A bool is not an integer; an integer is accepted where a ``float`` is (``"auto"`` or a number:
      ``type=(str, int)``). TOML gives bool, int, float, str, list and dict (inline table) values;
    * ``choices``: the allowed values, or for a list option the allowed elements (None: any);
    * ``doc``: what it does, in a few words.
    """

    default: Any
    type: type | tuple[type, ...] | None = None
    choices: tuple | None = None
    doc: str = ""

    @property
    def types(self) -> tuple[type, ...]:
        if self.type is None:
            return (type(self.default),)
        return self.type if isinstance(self.type, tuple) else (self.type,)

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be given to this option (None when it can)."""
        if not any(_is_instance(value, t) for t in self.types):
            wanted = " or ".join(_ARTICLE_NAMES.get(t, f"a {t.__name__}") for t in self.types)
            return f"expected {wanted}, got {value!r}"
        if self.choices is not None:
            items = value if isinstance(value, list) else [value]
            bad = [v for v in items if v not in self.choices or isinstance(v, bool) != any(
                isinstance(c, bool) and c == v for c in self.choices)]
            if bad:
                return f"{bad[0]!r} is not one of {', '.join(map(repr, self.choices))}"
        return None


@dataclass(frozen=True)
class Site:
    """Where a factory's module would go, and what the network looks like there.

    * ``host``, ``slot`` (``"<host>.<slot>"``), ``backbone`` (e.g. ``"resnet50"``, ``"vit-b16"``);
    * ``path``: the module name it gets in the built model (``"layer2.0.temporal"``,
      ``"visual.transformer.resblocks.7.control_point_c"``, ``"blocks3.0.attn"``);
    * ``frames``: T, the frames per clip the model is built for;
    * ``channels``: the feature width at the slot (for a replacement of a convolution: its output
      channels); ``in_channels``: the input width (equal to ``channels`` except at ``resnet.conv1``);
    * ``stage``: 1-based stage (ResNet ``layer1``-``layer4``; UniFormer 3 or 4), None on ``clip_vit``;
    * ``block``: 0-based block index within the stage (``clip_vit``: within the tower); ``blocks``: the
      number of blocks there;
    * ``heads``: attention heads (``clip_vit``, ``uniformer``), None on ``resnet``;
    * ``stride``, ``kernel``: of the convolution a ``resnet.conv1`` module replaces (else 1 and None);
    * ``current``: the module now in the slot (the CLIP block at ``clip_vit.block``, the identity
      control point at the other ``clip_vit`` slots, the block at ``resnet.after_block``); None where the
      slot is empty or its default is built only when the slot is left.
    """

    host: str
    slot: str
    path: str
    backbone: str
    frames: int
    channels: int
    in_channels: int
    stage: int | None
    block: int
    blocks: int
    heads: int | None = None
    stride: int = 1
    kernel: int | None = None
    current: nn.Module | None = field(default=None, compare=False, repr=False)


Factory = Callable[..., "nn.Module | None"]


@dataclass(frozen=True)
class TemporalModule:
    """A temporal module as the hosts see it; see the module docstring for every field."""

    name: str
    slots: tuple[str, ...]
    factory: Factory
    options: Mapping[str, Option] = field(default_factory=dict)
    host_defaults: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a temporal module's name must be a non-empty string, got {self.name!r}")
        slots = (self.slots,) if isinstance(self.slots, str) else tuple(self.slots)
        object.__setattr__(self, "slots", slots)
        if not slots:
            raise ValueError(f"temporal module {self.name!r} declares no slot")
        known = {s for table in SLOTS.values() for s in table}
        for slot in slots:
            if slot not in known:
                raise ValueError(f"temporal module {self.name!r}: unknown slot {slot!r}; "
                                 f"one of {', '.join(sorted(known))}")
        if not callable(self.factory):
            raise ValueError(f"temporal module {self.name!r}: factory must be callable, got {self.factory!r}")
        for key, option in self.options.items():
            if not isinstance(option, Option):
                raise ValueError(f"temporal module {self.name!r}: option {key!r} must be an Option, got {option!r}")
            problem = option.problem(option.default)
            if problem:
                raise ValueError(f"temporal module {self.name!r}: the default of option {key!r}: {problem}")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "host_defaults", MappingProxyType(dict(self.host_defaults)))

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(slot.split(".", 1)[0] for slot in self.slots))

    @property
    def child_name(self) -> str:
        """The name of a module it adds as a new child (``resnet.stage_end``)."""
        return re.sub(r"\W", "_", self.name)


RESNET_STAGES = Option([1, 2, 3, 4], choices=(1, 2, 3, 4), doc="ResNet stages it goes in (1 = res2, 4 = res5)")


def per_block(name: str, slot: str, make: Callable[..., "nn.Module | None"], doc: str = "",
              **options: Option) -> TemporalModule:
    """The common ResNet case: ``make(site, **options)`` in every block of the stages that the ``stages``
    option lists (added here, :data:`RESNET_STAGES`: all four by default), nothing elsewhere.

    >>> per_block("pool", "resnet.after_conv1", lambda site, kernel: TemporalPool(site.frames, kernel),
    ...           doc="K x 1 x 1 temporal average pooling", kernel=Option(3, doc="K"))
    """
    def factory(site: Site, stages: list[int], **chosen) -> "nn.Module | None":
        return make(site, **chosen) if site.stage in stages else None

    return TemporalModule(name=name, slots=(slot,), factory=factory, options={"stages": RESNET_STAGES, **options},
                          doc=doc)


# (host, name) -> spec, in registration order
_CATALOGUE: dict[tuple[str, str], TemporalModule] = {}


def register(spec: TemporalModule, replace_existing: bool = False) -> TemporalModule:
    """Add ``spec`` to the catalogue under (host, name) for each host it has a slot in, and return it.

    A name already taken on one of those hosts by another spec raises ``ValueError`` unless
    ``replace_existing``. Registering the same spec again is a no-op."""
    if not isinstance(spec, TemporalModule):
        raise TypeError(f"register() takes a TemporalModule, got {type(spec).__name__}")
    for host in spec.hosts:
        held = _CATALOGUE.get((host, spec.name))
        if held is not None and held is not spec and not replace_existing:
            raise ValueError(f"temporal module {spec.name!r} is already registered for {host}")
    for host in spec.hosts:
        _CATALOGUE[(host, spec.name)] = spec
    return spec


def unregister(name: str, host: str | None = None) -> None:
    """Remove ``name`` from the catalogue (on one host, or on every host it is on)."""
    for key in [k for k in _CATALOGUE if k[1] == name and (host is None or k[0] == host)]:
        del _CATALOGUE[key]


def names(host: str) -> tuple[str, ...]:
    """The temporal modules ``host`` can take, in registration order."""
    return tuple(name for h, name in _CATALOGUE if h == host)


def lookup(host: str, name: str) -> TemporalModule:
    """The spec registered as ``name`` on ``host``; ``KeyError`` naming the known ones otherwise.

    ``name`` may also be an import path ``package.module:ATTRIBUTE`` naming a :class:`TemporalModule` (or
    a sequence of them, one per host) in a package of one's own: a registry entry can then say
    ``temporal = "my_pkg.shift:SPEC"`` without any registration code; it is registered under that path."""
    if (host, name) in _CATALOGUE:
        return _CATALOGUE[(host, name)]
    if ":" in name:
        return _import_spec(host, name)
    raise KeyError(f"unknown temporal module {name!r} for arch {host!r}; one of "
                   f"{', '.join(names(host)) or 'none'} (or an import path 'package.module:SPEC' of your own)")


def _import_spec(host: str, path: str) -> TemporalModule:
    import importlib

    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001 -- a missing package, a typo, the module raising on import
        raise KeyError(f"temporal module {path!r}: cannot import it ({type(e).__name__}: {e}); is its package "
                       "installed or on PYTHONPATH?") from None
    specs = [obj] if isinstance(obj, TemporalModule) else list(obj) if isinstance(obj, (list, tuple)) else []
    if not specs or not all(isinstance(x, TemporalModule) for x in specs):
        raise KeyError(f"temporal module {path!r} is a {type(obj).__name__}, not a tembench.models.protocol."
                       "TemporalModule (or a sequence of them)")
    for spec in specs:
        if host in spec.hosts:
            _CATALOGUE[(host, path)] = spec
            return spec
    raise KeyError(f"temporal module {path!r} has no slot on arch {host!r}; its slots: "
                   f"{', '.join(s for x in specs for s in x.slots)}")


def option_table(host: str, host_options: Mapping[str, Option], temporal: str | None) -> dict[str, Option]:
    """Every option a variant of ``host`` with ``temporal`` takes: the host's own (with the module's
    ``host_defaults``), then the module's, in declaration order."""
    table = dict(host_options)
    if temporal is None:
        return table
    spec = lookup(host, temporal)
    for key, value in spec.host_defaults.items():
        if key not in host_options:
            raise ValueError(f"temporal module {spec.name!r} sets a default for {key!r}, which is not an "
                             f"option of the {host} host; its options: {', '.join(host_options) or 'none'}")
        table[key] = replace(host_options[key], default=value)
    for key, option in spec.options.items():
        if key in host_options:
            raise ValueError(f"temporal module {spec.name!r} declares option {key!r}, an option of the {host} host")
        table[key] = option
    return table


def option_defaults(host: str, host_options: Mapping[str, Option], temporal: str | None) -> dict[str, Any]:
    """The default of every option of :func:`option_table`."""
    return {key: option.default for key, option in option_table(host, host_options, temporal).items()}


def resolve_options(table: Mapping[str, Option], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Defaults overlaid with ``given``; ``ValueError`` for an unknown option or a bad value."""
    for key, value in given.items():
        if key not in table:
            raise ValueError(f"{key!r} is not an option of {owner}; known: {', '.join(table) or 'none'}")
        problem = table[key].problem(value)
        if problem:
            raise ValueError(f"option {key!r} of {owner}: {problem}")
    return {key: given.get(key, option.default) for key, option in table.items()}


class Plan:
    """One build's use of the protocol, for a host's builder: the host's resolved options and
    :meth:`place`, which asks the temporal module's factory for the module at a site."""

    def __init__(self, host: str, host_options: Mapping[str, Option], backbone: str, temporal: str | None,
                 options: Mapping[str, Any], frames: int):
        if host not in SLOTS:
            raise KeyError(f"unknown host {host!r}; one of {', '.join(HOSTS)}")
        self.host, self.backbone, self.frames = host, backbone, frames
        self.module = lookup(host, temporal) if temporal is not None else None
        owner = temporal or "the plain backbone"
        values = resolve_options(option_table(host, host_options, temporal), options, owner)
        self.host_options = {k: values[k] for k in host_options}
        self.module_options = {k: v for k, v in values.items() if k not in host_options}

    def place(self, slot: str, *, path: str, channels: int, block: int, blocks: int, stage: int | None = None,
              in_channels: int | None = None, **site: Any) -> nn.Module | None:
        """The module the temporal module puts at this site, or None (the slot stays as it is)."""
        if slot not in SLOTS[self.host]:
            raise KeyError(f"{self.host} has no slot {slot!r}")
        if self.module is None or slot not in self.module.slots:
            return None
        where = Site(host=self.host, slot=slot, path=path, backbone=self.backbone, frames=self.frames,
                     channels=channels, in_channels=channels if in_channels is None else in_channels,
                     stage=stage, block=block, blocks=blocks, **site)
        made = self.module.factory(where, **self.module_options)
        if made is not None and not isinstance(made, nn.Module):
            raise TypeError(f"temporal module {self.module.name!r} returned {type(made).__name__} at {path} "
                            f"({slot}); expected an nn.Module or None")
        if made is not None:
            made.tembench_temporal = self.module.name  # what placed it: runtime times it as a temporal module
        return made
