"""The registry: what models exist and what their papers claim about them.

``registry/*.toml`` holds one file per paper or family. Each file has a ``[paper]`` table, optional
``[defaults]`` for its variants, ``[[variant]]`` entries (each with ``[[variant.claim]]`` rows),
optional ``[[ensemble]]`` entries (combinations of variants whose cost is the sum of their members)
and optional ``[[table]]`` entries that give a paper table's row order. See ``registry/README.md``.

The loader validates every key and raises :class:`~tembench.errors.RegistryError` naming the file,
the entry and the key. The registry is data: it imports neither torch, nor the models, nor the cost
counter. What only those know (is ``order = "sideways"`` an option value of TAM? is ``no-bmm`` a
counting convention?) is checked through one hook, :meth:`Registry.check`: each check is a function
``check(spec, fail)`` that calls ``fail(key, problem)`` for a bad key, and the registry turns that into
the same one-line file / entry / key error.
"""
from __future__ import annotations

import difflib
import fnmatch
import os
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, NoReturn

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tembench.errors import RegistryError, UsageError

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]*/[a-z0-9][a-z0-9_.+@-]*$")
COST_METRICS = {"gflops": "G", "params": "M"}
ACCURACY_METRICS = {"top1": "%", "top5": "%", "map": "%", "mean_class_acc": "%"}
RUNTIME_METRICS = {"latency_ms": "ms", "throughput": "clips/s", "memory_gb": "GB"}
METRICS = {**COST_METRICS, **ACCURACY_METRICS, **RUNTIME_METRICS}


def builtin_registry_dir() -> Path:
    """The registry that ships with tembench: ``registry/`` of a source checkout (or an editable
    install), or the copy a wheel carries as package data, ``tembench/builtin_registry/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "builtin_registry", here.parent / "registry"):
        if any(candidate.glob("*.toml")):
            return candidate
    return here.parent / "registry"


def default_registry_dir() -> Path:
    """The built-in registry's directory (see :func:`registry_dirs` for every source)."""
    return builtin_registry_dir()


ENTRY_POINT_GROUP = "tembench.registries"
_SOURCES: dict[str, Any] = {"extra": (), "builtin": True}


def configure(extra: list[str | Path] | tuple = (), builtin: bool = True) -> None:
    """Where :func:`registry` reads from besides ``$TEMBENCH_REGISTRY`` and installed packages: the
    ``--registry DIR`` directories (``extra``, in order), and whether the built-in registry is included
    (``--no-builtin``)."""
    _SOURCES["extra"] = tuple(str(Path(d)) for d in extra)
    _SOURCES["builtin"] = bool(builtin)


def _entry_point_dirs() -> list[Path]:
    """Registry directories that installed packages declare in the entry-point group ``tembench.registries``:
    the object an entry point names is a directory (``str`` or ``Path``), a package whose directory holds
    ``*.toml`` files, or a callable returning a directory."""
    from importlib.metadata import entry_points

    dirs = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, type):
                obj = obj()
            path = Path(obj.__file__).parent if hasattr(obj, "__file__") else Path(obj)
        except Exception as e:  # noqa: BLE001 -- a broken plugin names itself
            raise RegistryError(f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} does not give a "
                                f"registry directory: {type(e).__name__}: {e}") from None
        dirs.append(path)
    return dirs


def registry_dirs() -> list[Path]:
    """Every registry source, merged in this order: the built-in registry (unless ``configure(builtin=False)``
    / ``--no-builtin``), the directories of ``$TEMBENCH_REGISTRY`` (a path list, ``os.pathsep``-separated),
    those given with ``--registry DIR`` (:func:`configure`) and those of installed packages
    (:data:`ENTRY_POINT_GROUP`). A variant id defined twice is an error naming both files."""
    dirs = [builtin_registry_dir()] if _SOURCES["builtin"] else []
    env = os.environ.get("TEMBENCH_REGISTRY", "")
    dirs += [Path(d) for d in env.split(os.pathsep) if d.strip()]
    dirs += [Path(d) for d in _SOURCES["extra"]]
    dirs += _entry_point_dirs()
    unique: dict[str, Path] = {}
    for d in dirs:
        unique.setdefault(str(d.resolve()), d)
    return list(unique.values())


@dataclass(frozen=True)
class Claim:
    """One number a paper reports about a variant, with the protocol it was measured under."""

    variant: str
    source: str  # e.g. "TAM Table 2"
    metric: str  # gflops (per view) | params | top1 | top5 | map | ...
    value: float
    unit: str
    paper: str
    row: str = ""  # the row label in the paper's table
    frames: int = 0
    crops: int = 1
    clips: int = 1
    input_size: int = 0
    classes: int = 0
    dataset: str = ""
    convention: str = "fvcore"
    note: str = ""
    printed: str = ""  # the value as the paper prints it ("40", "43.02", "28.10"): its digits are the claim's precision
    total: bool = False  # the printed value is the total over the views (``value`` is per view: printed / views)
    tolerance: float | None = None  # an override of the printed-digits rule, only with a written reason
    tolerance_reason: str = ""
    stated_size: int = 0  # another input size the paper itself states for this number (tested as an explanation)
    stated_size_where: str = ""  # where the paper states it, quoted
    convention_stated: str = ""  # where the paper names its counting convention, quoted ("": fitted by us)
    hardware: str = ""  # runtime claims: the paper's hardware as stated, or that it is not

    @property
    def decimals(self) -> int:
        """Decimal places the paper prints (``40``: 0, ``43.02``: 2)."""
        return len(self.printed.partition(".")[2]) if self.printed else 0

    @property
    def views(self) -> int:
        return self.crops * self.clips

    @property
    def protocol(self) -> str:
        return f"{self.frames}x{self.crops}x{self.clips}"


@dataclass(frozen=True)
class Member:
    variant: str
    frames: int


@dataclass(frozen=True)
class VariantSpec:
    """A registered model variant: everything needed to build it and what its papers claim."""

    id: str
    arch: str  # which builder: resnet | clip_vit | uniformer | ensemble
    backbone: str
    temporal: str | None
    options: dict[str, Any]
    classes: int
    frames: int
    input_size: int
    paper: str
    description: str = ""
    notes: str = ""
    file: str = ""
    entry: str = ""  # where in ``file``, e.g. "variant[3] 'tam/tanet-r50'" (for error messages)
    # arch = "python": a network of one's own, built by a factory (registry/README.md, "Your own models")
    factory: str = ""  # "package.module:callable", called with ``kwargs`` (+ frames and classes, see below)
    kwargs: dict[str, Any] = field(default_factory=dict)
    frames_arg: str = "frames"  # the factory's keyword for the frame count ("" : not passed)
    classes_arg: str = "num_classes"  # the factory's keyword for the number of classes ("" : not passed)
    layout: str = "BCTHW"  # the clip tensor the model takes: BCTHW or BTCHW
    example_input: str = ""  # "package.module:callable"(batch, frames, size) -> (args, kwargs), instead of layout
    temporal_globs: tuple[str, ...] = ()  # module-name globs of its temporal modules ("*.tsm")
    baseline: str = ""  # or: the variant without them, for temporal_gflops / temporal_ms
    # the CI gates (`tembench check`) that measure it besides cost: latency at these frames / size, motion accuracy
    latency_gate: dict[str, int] | None = None
    motion_gate: bool = False
    # packages the variant's code imports beyond tembench's own, and the pip extra that provides them
    requires: tuple[str, ...] = ()
    extra: str = ""
    members: tuple[Member, ...] = ()
    claims: tuple[Claim, ...] = ()

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    @property
    def is_python(self) -> bool:
        """A network of one's own (``arch = "python"``), built by its ``factory``."""
        return self.arch == "python"

    @property
    def missing(self) -> tuple[str, ...]:
        """The packages of ``requires`` that are not installed (looked up, not imported)."""
        from importlib.util import find_spec

        return tuple(m for m in self.requires if find_spec(m) is None)

    @property
    def install_hint(self) -> str:
        """How to install what the variant needs."""
        return f"pip install 'tembench[{self.extra}]'" if self.extra else f"pip install {' '.join(self.requires)}"


@dataclass(frozen=True)
class PaperTable:
    source: str
    paper: str
    title: str
    rows: tuple[str, ...]
    file: str = ""


Fail = Callable[[str, str], NoReturn]
Check = Callable[[VariantSpec, Fail], None]
"""A check of what the registry cannot know itself: ``check(spec, fail)`` calls ``fail(key, problem)``
(e.g. ``fail("options.order", "'sideways' is not one of 'local-first', 'global-first'")``)."""


@dataclass
class Registry:
    variants: dict[str, VariantSpec] = field(default_factory=dict)
    papers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, PaperTable] = field(default_factory=dict)
    checked: set = field(default_factory=set)  # the checks already run on this registry

    def check(self, checks: tuple[Check, ...] | list[Check]) -> "Registry":
        """Run each check (once per registry) on every variant; the first problem raises
        :class:`~tembench.errors.RegistryError` naming file, entry and key. Returns the registry."""
        for check in checks:
            if check in self.checked:
                continue
            for spec in self.variants.values():
                check(spec, _Ctx(spec.file, spec.entry).fail)
            self.checked.add(check)
        return self

    def get(self, variant_id: str) -> VariantSpec:
        try:
            return self.variants[variant_id]
        except KeyError:
            close = difflib.get_close_matches(variant_id, self.variants, n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise UsageError(
                f"unknown variant {variant_id!r}{hint} (see `tembench list`)"
            ) from None

    def select(self, patterns: list[str] | tuple[str, ...] | None = None) -> list[VariantSpec]:
        """Variants matching any of the fnmatch patterns (all when none), in natural order.

        A pattern without wildcards must name a variant exactly (or a family, ``tam``)."""
        if not patterns:
            return sorted(self.variants.values(), key=lambda v: _natural_key(v.id))
        chosen: dict[str, VariantSpec] = {}
        for pattern in patterns:
            if any(ch in pattern for ch in "*?["):
                hits = [v for v in self.variants if fnmatch.fnmatchcase(v, pattern)]
            elif "/" not in pattern:
                hits = [v for v in self.variants if v.split("/", 1)[0] == pattern]
            else:
                hits = [self.get(pattern).id]
            if not hits:
                families = sorted({v.split("/", 1)[0] for v in self.variants})
                raise UsageError(
                    f"no variant matches {pattern!r}; families: {', '.join(families)} (see `tembench list`)"
                )
            for h in hits:
                chosen[h] = self.variants[h]
        return sorted(chosen.values(), key=lambda v: _natural_key(v.id))

    def claims(self, paper: str | None = None) -> list[Claim]:
        out = [c for v in self.variants.values() for c in v.claims]
        if paper:
            known = {c.paper for c in out}
            if paper.lower() not in known:
                raise UsageError(f"no claims from paper {paper!r}; papers: {', '.join(sorted(known))}")
            out = [c for c in out if c.paper == paper.lower()]
        return out


def _natural_key(s: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]


# ------------------------------------------------------------------------------------------
# Validation helpers: each raises RegistryError with "file: where: key: what is wrong".
# ------------------------------------------------------------------------------------------

class _Ctx:
    def __init__(self, file: str, where: str):
        self.file, self.where = file, where

    def fail(self, key: str, problem: str):
        raise RegistryError(f"{self.file}: {self.where}: key '{key}': {problem}")

    def take(self, table: dict, key: str, kind, required: bool = True, default=None, check=None):
        if key not in table:
            if required:
                self.fail(key, "missing (required)")
            return default
        value = table[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(key, f"expected an integer, got {value!r}")
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(key, f"expected a number, got {value!r}")
            value = float(value)
        if kind in (str, dict, list, bool) and not isinstance(value, kind):
            self.fail(key, f"expected {'true or false' if kind is bool else kind.__name__}, got {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                self.fail(key, problem)
        return value

    def no_unknown(self, table: dict, allowed: set[str]):
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(key, f"unknown key{hint}")


def _positive(v):
    return None if v > 0 else "must be positive"


_VARIANT_KEYS = {"id", "arch", "backbone", "temporal", "options", "classes", "frames", "input_size",
                 "description", "notes", "claim", "paper", "latency_gate", "motion_gate", "requires", "extra"}
_PYTHON_KEYS = {"factory", "kwargs", "frames_arg", "classes_arg", "layout", "example_input", "baseline"}
LAYOUTS = ("BCTHW", "BTCHW")
IMPORT_PATH_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _import_path(value: str) -> str | None:
    return None if IMPORT_PATH_RE.match(value) else "expected an import path 'package.module:callable'"
_ENSEMBLE_KEYS = {"id", "members", "description", "notes", "claim", "classes", "input_size", "paper"}
_CLAIM_KEYS = {"source", "row", "metric", "value", "unit", "frames", "crops", "clips", "input_size",
               "classes", "dataset", "convention", "tolerance", "tolerance_reason", "note", "paper", "views",
               "stated_size", "convention_stated", "hardware", "total"}


def _parse_claim(ctx: _Ctx, raw: dict, spec: dict, paper: str) -> Claim:
    ctx.no_unknown(raw, _CLAIM_KEYS)
    metric = ctx.take(raw, "metric", str, check=lambda m: None if m in METRICS else
                      f"unknown metric {m!r}; one of {', '.join(METRICS)}")
    unit = ctx.take(raw, "unit", str, required=False, default=METRICS[metric])
    if unit != METRICS[metric]:
        ctx.fail("unit", f"{metric} is stored in {METRICS[metric]}, got {unit!r}")
    views = ctx.take(raw, "views", str, required=False)
    crops, clips = 1, 1
    if views is not None:
        m = re.fullmatch(r"(\d+)x(\d+)", views)
        if not m:
            ctx.fail("views", f"expected CROPSxCLIPS like '3x10', got {views!r}")
        crops, clips = int(m.group(1)), int(m.group(2))
    convention = ctx.take(raw, "convention", str, required=False, default="fvcore")
    # The value and its digits as printed. TOML keeps an integer (40) and a float's digits up to its last
    # non-zero one (43.02, 40.0) but drops zeros after it (28.10 reads as 28.1): such a value is written as
    # the string the paper prints, value = "28.10". A float's repr is the shortest text that reads back.
    value = ctx.take(raw, "value", object)
    printed = value if isinstance(value, str) else str(value) if isinstance(value, int) else repr(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
            not re.fullmatch(r"[0-9]+(\.[0-9]+)?", printed):
        ctx.fail("value", f"expected a number, or the number as printed (e.g. \"28.10\"), got {value!r}")
    total = ctx.take(raw, "total", bool, required=False, default=False)  # the source prints the sum over the views
    if total:
        if not isinstance(total, bool):
            ctx.fail("total", f"expected true or false, got {total!r}")
        crops = ctx.take(raw, "crops", int, required=False, default=crops, check=_positive)
        clips = ctx.take(raw, "clips", int, required=False, default=clips, check=_positive)
    value = float(printed) / (crops * clips if total else 1)
    tolerance = ctx.take(raw, "tolerance", float, required=False,
                         check=lambda t: None if 0 <= t < 1 else "must be a fraction in [0, 1)")
    reason = ctx.take(raw, "tolerance_reason", str, required=False, default="")  # without one, the judge ignores it
    stated = ctx.take(raw, "stated_size", dict, required=False, default={})  # { size = 224, where = "quote" }
    if stated:
        sctx = _Ctx(ctx.file, f"{ctx.where} stated_size")
        sctx.no_unknown(stated, {"size", "where"})
        stated = {"size": sctx.take(stated, "size", int, check=_positive), "where": sctx.take(stated, "where", str)}
    return Claim(
        variant=spec["id"],
        source=ctx.take(raw, "source", str),
        metric=metric,
        value=value,
        printed=printed,
        total=total,
        unit=unit,
        paper=ctx.take(raw, "paper", str, required=False, default=paper).lower(),
        row=ctx.take(raw, "row", str, required=False, default=""),
        frames=ctx.take(raw, "frames", int, required=False, default=spec["frames"], check=_positive),
        crops=ctx.take(raw, "crops", int, required=False, default=crops, check=_positive),
        clips=ctx.take(raw, "clips", int, required=False, default=clips, check=_positive),
        input_size=ctx.take(raw, "input_size", int, required=False, default=spec["input_size"], check=_positive),
        classes=ctx.take(raw, "classes", int, required=False, default=spec["classes"], check=_positive),
        dataset=ctx.take(raw, "dataset", str, required=False, default=""),
        convention=convention,
        tolerance=tolerance,
        tolerance_reason=reason,
        stated_size=stated.get("size", 0),
        stated_size_where=stated.get("where", ""),
        convention_stated=ctx.take(raw, "convention_stated", str, required=False, default=""),
        hardware=ctx.take(raw, "hardware", str, required=False, default=""),
        note=ctx.take(raw, "note", str, required=False, default=""),
    )


def _parse_file(path: Path, reg: Registry, name: str | None = None) -> list[tuple[_Ctx, dict, str]]:
    """Add the file's variants and tables to ``reg``; return its ensembles, resolved once all
    files are read (their members may live in other files). ``name``: how messages name the file."""
    name = name or path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{name}: not valid TOML: {e}") from None
    except OSError as e:
        raise RegistryError(f"{name}: cannot read: {e.strerror}") from None
    top = _Ctx(name, "file")
    top.no_unknown(data, {"paper", "defaults", "variant", "ensemble", "table"})
    paper_tbl = top.take(data, "paper", dict)
    pctx = _Ctx(name, "[paper]")
    pctx.no_unknown(paper_tbl, {"key", "title", "venue", "seed", "url", "code"})
    paper = pctx.take(paper_tbl, "key", str).lower()
    reg.papers[paper] = dict(paper_tbl)
    defaults = top.take(data, "defaults", dict, required=False, default={})
    _Ctx(name, "[defaults]").no_unknown(defaults, _VARIANT_KEYS - {"id", "claim"})

    for i, raw in enumerate(top.take(data, "table", list, required=False, default=[])):
        tctx = _Ctx(name, f"table[{i}]")
        tctx.no_unknown(raw, {"source", "title", "rows"})
        source = tctx.take(raw, "source", str)
        rows = tctx.take(raw, "rows", list)
        if not all(isinstance(r, str) for r in rows):
            tctx.fail("rows", "expected a list of row labels (strings)")
        if source in reg.tables:
            tctx.fail("source", f"table {source!r} is already defined (in {reg.tables[source].file})")
        reg.tables[source] = PaperTable(source, paper, tctx.take(raw, "title", str, required=False, default=""),
                                        tuple(rows), name)

    for i, raw0 in enumerate(top.take(data, "variant", list, required=False, default=[])):
        raw = {**defaults, **raw0}
        ctx = _Ctx(name, f"variant[{i}]" + (f" {raw0['id']!r}" if isinstance(raw0.get("id"), str) else ""))
        ctx.no_unknown(raw0, _VARIANT_KEYS | _PYTHON_KEYS)
        vid = ctx.take(raw, "id", str, check=lambda s: None if ID_RE.match(s) else
                       "expected 'family/name' in lower case, e.g. 'tam/tanet-r50'")
        if vid in reg.variants:
            ctx.fail("id", f"duplicate id (also in {reg.variants[vid].file})")
        arch = ctx.take(raw, "arch", str)
        if arch == "python":
            model = _python_model(ctx, raw, raw0)
            backbone, temporal, options = model.pop("backbone"), model.pop("temporal"), {}
        else:
            for key in _PYTHON_KEYS:
                if key in raw0:
                    ctx.fail(key, f"only for arch = \"python\" (a network of one's own), not {arch!r}")
            model = {}
            backbone = ctx.take(raw, "backbone", str)
            temporal = ctx.take(raw, "temporal", str, required=False)
            options = ctx.take(raw0, "options", dict, required=False, default={})
        spec = dict(
            id=vid, arch=arch, backbone=backbone, temporal=temporal, options=options,
            classes=ctx.take(raw, "classes", int, check=_positive),
            frames=ctx.take(raw, "frames", int, check=_positive),
            input_size=ctx.take(raw, "input_size", int, check=_positive),
            paper=ctx.take(raw, "paper", str, required=False, default=paper).lower(),
            description=ctx.take(raw0, "description", str, required=False, default=""),
            notes=ctx.take(raw0, "notes", str, required=False, default=""),
            file=name,
            entry=ctx.where,
            motion_gate=ctx.take(raw, "motion_gate", bool, required=False, default=False),
            requires=tuple(ctx.take(raw, "requires", list, required=False, default=[],
                                    check=lambda r: None if all(isinstance(m, str) and m.isidentifier() for m in r)
                                    else "expected a list of importable package names, e.g. [\"transformers\"]")),
            extra=ctx.take(raw, "extra", str, required=False, default=""),
            **model,
        )
        spec["latency_gate"] = _latency_gate(ctx, raw, spec)
        claims = tuple(
            _parse_claim(_Ctx(name, f"{ctx.where} claim[{j}]"), c, spec, spec["paper"])
            for j, c in enumerate(ctx.take(raw0, "claim", list, required=False, default=[]))
        )
        reg.variants[vid] = VariantSpec(**spec, claims=claims)

    pending = []
    for i, raw in enumerate(top.take(data, "ensemble", list, required=False, default=[])):
        ctx = _Ctx(name, f"ensemble[{i}]" + (f" {raw['id']!r}" if isinstance(raw.get("id"), str) else ""))
        ctx.no_unknown(raw, _ENSEMBLE_KEYS)
        pending.append((ctx, raw, paper))
    return pending


def _python_model(ctx: _Ctx, raw: dict, raw0: dict) -> dict:
    """The keys of an ``arch = "python"`` entry: factory, kwargs, how frames and classes are passed, the
    input layout (or an example-input callable), and its temporal modules (module-name globs, or a
    baseline variant)."""
    if "options" in raw0:
        ctx.fail("options", "an arch = \"python\" entry passes its factory's arguments as kwargs = {...}")
    temporal = raw.get("temporal")
    if isinstance(temporal, str):
        temporal = [temporal]
    if temporal is not None and (not isinstance(temporal, list) or not temporal
                                 or not all(isinstance(g, str) and g for g in temporal)):
        ctx.fail("temporal", "expected module-name globs of the temporal modules, e.g. \"*.tsm\" or "
                             "[\"layer*.shift\", \"*.tam\"]")
    baseline = ctx.take(raw, "baseline", str, required=False, default="",
                        check=lambda s: None if ID_RE.match(s) else "expected a variant id 'family/name'")
    if temporal and baseline:
        ctx.fail("baseline", "give the temporal modules either as globs (temporal) or as a baseline variant, not both")
    layout = ctx.take(raw, "layout", str, required=False, default="BCTHW",
                      check=lambda s: None if s in LAYOUTS else f"one of {', '.join(LAYOUTS)}, got {s!r}")
    arg = lambda s: None if s == "" or s.isidentifier() else "expected a keyword name, or \"\" to not pass it"  # noqa: E731
    return dict(
        backbone=ctx.take(raw, "backbone", str, required=False, default=""),
        temporal=", ".join(temporal) if temporal else (f"baseline {baseline}" if baseline else None),
        factory=ctx.take(raw, "factory", str, check=_import_path),
        kwargs=ctx.take(raw, "kwargs", dict, required=False, default={}),
        frames_arg=ctx.take(raw, "frames_arg", str, required=False, default="frames", check=arg),
        classes_arg=ctx.take(raw, "classes_arg", str, required=False, default="num_classes", check=arg),
        layout=layout,
        example_input=ctx.take(raw, "example_input", str, required=False, default="",
                               check=lambda s: _import_path(s) if s else None),
        temporal_globs=tuple(temporal or ()),
        baseline=baseline,
    )


def _latency_gate(ctx: _Ctx, raw: dict, spec: dict) -> dict[str, int] | None:
    """``latency_gate = true`` (the variant's own frames and size) or ``{ frames = 8, input_size = 112 }``."""
    gate = raw.get("latency_gate")
    if gate is None or gate is False:
        return None
    if gate is True:
        return {"frames": spec["frames"], "input_size": spec["input_size"]}
    if not isinstance(gate, dict):
        ctx.fail("latency_gate", "expected true or { frames = N, input_size = S }")
    gctx = _Ctx(ctx.file, f"{ctx.where} latency_gate")
    gctx.no_unknown(gate, {"frames", "input_size"})
    return {"frames": gctx.take(gate, "frames", int, required=False, default=spec["frames"], check=_positive),
            "input_size": gctx.take(gate, "input_size", int, required=False, default=spec["input_size"],
                                    check=_positive)}


def _resolve_ensembles(reg: Registry, pending: list[tuple[_Ctx, dict, str]]) -> None:
    for ctx, raw, paper in pending:
        vid = ctx.take(raw, "id", str, check=lambda s: None if ID_RE.match(s) else "expected 'family/name'")
        if vid in reg.variants:
            ctx.fail("id", f"duplicate id (also in {reg.variants[vid].file})")
        members = []
        for j, m in enumerate(ctx.take(raw, "members", list)):
            mctx = _Ctx(ctx.file, f"{ctx.where} members[{j}]")
            if not isinstance(m, dict):
                mctx.fail("members", "expected {variant = ..., frames = ...}")
            mctx.no_unknown(m, {"variant", "frames"})
            mid = mctx.take(m, "variant", str)
            if mid not in reg.variants or reg.variants[mid].is_ensemble:
                mctx.fail("variant", f"unknown (non-ensemble) variant {mid!r}")
            members.append(Member(mid, mctx.take(m, "frames", int, required=False,
                                                 default=reg.variants[mid].frames, check=_positive)))
        if not members:
            ctx.fail("members", "an ensemble needs at least one member")
        first = reg.variants[members[0].variant]
        spec = dict(
            id=vid, arch="ensemble", backbone=first.backbone, temporal=first.temporal, options={},
            classes=ctx.take(raw, "classes", int, required=False, default=first.classes, check=_positive),
            frames=sum(m.frames for m in members),
            input_size=ctx.take(raw, "input_size", int, required=False, default=first.input_size, check=_positive),
            paper=ctx.take(raw, "paper", str, required=False, default=paper).lower(),
            description=ctx.take(raw, "description", str, required=False, default=""),
            notes=ctx.take(raw, "notes", str, required=False, default=""),
            file=ctx.file,
            entry=ctx.where,
        )
        claims = tuple(
            _parse_claim(_Ctx(ctx.file, f"{ctx.where} claim[{j}]"), c, spec, spec["paper"])
            for j, c in enumerate(ctx.take(raw, "claim", list, required=False, default=[]))
        )
        reg.variants[vid] = VariantSpec(**spec, members=tuple(members), claims=claims)


def _check_tables(reg: Registry) -> None:
    for claim in (c for v in reg.variants.values() for c in v.claims):
        table = reg.tables.get(claim.source)
        if table is not None and claim.row and claim.row not in table.rows:
            raise RegistryError(
                f"{reg.variants[claim.variant].file}: variant {claim.variant!r}: claim row {claim.row!r} "
                f"is not a row of {claim.source!r}; rows: {', '.join(table.rows)}"
            )


def load_registry(directory: str | Path | list | tuple | None = None) -> Registry:
    """Read and validate every ``*.toml`` file of ``directory`` (or of each directory of a list, merged;
    default: the built-in registry). Files outside the built-in registry are named by their path in
    error messages."""
    directories = [Path(d) for d in directory] if isinstance(directory, (list, tuple)) else \
        [Path(directory) if directory is not None else default_registry_dir()]
    builtin = builtin_registry_dir().resolve()
    reg = Registry()
    pending = []
    for d in directories:
        if not d.is_dir():
            raise RegistryError(f"{d}: no such registry directory (check --registry / $TEMBENCH_REGISTRY)")
        files = sorted(d.glob("*.toml"))
        if not files:
            raise RegistryError(f"{d}: no registry files (*.toml) found; a registry directory holds one TOML file "
                                "per paper or family (see registry/README.md)")
        for path in files:
            pending += _parse_file(path, reg, path.name if d.resolve() == builtin else str(path))
    _resolve_ensembles(reg, pending)
    _check_tables(reg)
    _check_baselines(reg)
    return reg


def _check_baselines(reg: Registry) -> None:
    for spec in reg.variants.values():
        if spec.baseline and spec.baseline not in reg.variants:
            raise RegistryError(f"{spec.file}: {spec.entry}: key 'baseline': unknown variant {spec.baseline!r}")


@lru_cache(maxsize=8)
def _cached(directories: tuple[str, ...]) -> Registry:
    return load_registry(list(directories))


def registry(directory: str | Path | None = None) -> Registry:
    """The registry, loaded once per set of sources: ``directory`` alone, or (by default) every source
    of :func:`registry_dirs` merged."""
    if directory is not None:
        return _cached((str(Path(directory)),))
    dirs = registry_dirs()
    if not dirs:
        raise RegistryError("no registry to read: --no-builtin was given without --registry DIR or $TEMBENCH_REGISTRY")
    return _cached(tuple(str(d) for d in dirs))


def get_variant(variant_id: str, directory: str | Path | None = None) -> VariantSpec:
    return registry(directory).get(variant_id)
