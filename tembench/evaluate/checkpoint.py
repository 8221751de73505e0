"""Loading the official checkpoints of the seed papers into tembench models, with a report.

Files are read with ``torch.load(weights_only=True)``: tensors, numbers, strings and containers only.
A file that needs other pickled objects (an ``argparse.Namespace`` in the container, a custom class)
is refused with an explanation unless ``trust=True`` (``--trust-checkpoint``), because unpickling runs
code from the file.

Containers and key layouts (seed-code digest §10) and how they map onto tembench's names:

==================  ==================  =====================================================================
source              container key       mapping
==================  ==================  =====================================================================
``tsn-official``    ``state_dict``      TSM / TAM official (TSN wrapper): strip ``module.`` and ``base_model.``;
                                        TSM's ``conv1.net`` -> ``conv1``; TAM's ``layerX.i.net.*`` ->
                                        ``layerX.i.*``, ``layerX.i.tam`` -> ``layerX.i.temporal``, older
                                        ``self_conv.conv_f/conv_g`` -> ``temporal.G/L``; ``new_fc`` -> ``fc``
``mmaction``        ``state_dict``      strip ``backbone.``; ConvModule ``convN.conv/.bn`` -> ``convN``/``bnN``,
                                        ``downsample.conv/.bn`` -> ``downsample.0/.1``; TANet ``layerX.i.block``
                                        -> ``layerX.i``, ``.tam`` -> ``.temporal`` (its BN-free local branch
                                        ``L.2`` -> ``L.3``); ``cls_head.fc_cls`` -> ``fc``
``clip``            ``module`` (ATM),   ATM DeepSpeed / ILA / OpenAI CLIP: strip ``module.``; ``visual.*`` and
                    ``model`` (ILA)     ``fc.*`` unchanged; CLIP's text tower is ignored (listed), except the
                                        names the model itself has (``logit_scale`` of the X-CLIP/ILA head)
``uniformer``       ``model_state``     EMIM / UniFormer (PySlowFast ``.pyth``): unchanged
``plain``           (none)              a tembench ``state_dict()``: unchanged
==================  ==================  =====================================================================

The report lists loaded, missing (in the model, not in the file), unexpected (in the file, not in the
model), shape-mismatched and ignored keys. A key is only ever ignored when the model has no tensor of
that name: the text-tower names (:data:`CLIP_TEXT`) are dropped because tembench builds no text
tower, but ILA's and X-CLIP's ``logit_scale`` is a parameter of their video head and loads. BatchNorm ``num_batches_tracked`` counters are not
parameters and never count as missing.
"""
from __future__ import annotations

import hashlib
import pickle
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from tembench.errors import UsageError

SOURCES = ("auto", "tsn-official", "mmaction", "clip", "uniformer", "plain")
CONTAINER_KEYS = ("state_dict", "model_state", "model", "module", "state_dict_ema", "net")
CLIP_TEXT = ("transformer.", "token_embedding.", "positional_embedding", "ln_final.", "text_projection", "logit_scale")


@dataclass
class CheckpointReport:
    path: str
    sha256: str
    container: str | None
    source: str
    trusted_pickle: bool
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)  # "key: file (a, b) vs model (c, d)"
    ignored: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def summary(self) -> str:
        return (f"{len(self.loaded)} loaded, {len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                f"{len(self.shape_mismatch)} shape-mismatched, {len(self.ignored)} ignored")

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("loaded", "missing", "unexpected", "shape_mismatch", "ignored"):
            d[f"n_{k}"] = len(d[k])
        d["loaded"] = None  # the count says it; the names are the model's own
        return d


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


TRUST_HINT = ("--trust-checkpoint unpickles it fully, which runs any code the file carries: use it only for a "
              "file from a source you trust")


def read_checkpoint(path: str | Path, trust: bool = False) -> tuple[dict, str | None, bool]:
    """(flat state dict of tensors, container key or None, whether full unpickling was used).

    Every failure is a one-line :class:`UsageError` naming the file and the kind of problem: missing,
    empty, not a PyTorch file (random bytes, text, a truncated archive), or pickled Python objects that
    ``weights_only`` refuses (then ``trust`` reads it with full unpickling, whatever torch's reason)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist (or is not a file)")
    if path.stat().st_size == 0:
        raise UsageError(f"checkpoint {path} is empty (0 bytes): not a PyTorch checkpoint")
    trusted = False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        objects = _pickled_objects(e)
        if objects is None:  # the unpickler met bytes that are no pickle at all
            raise UsageError(f"checkpoint {path} is not a readable PyTorch checkpoint (not a torch.save file: "
                             f"{_reason(e)})") from None
        if not trust:
            raise UsageError(f"checkpoint {path} holds pickled Python objects besides tensors ({objects}); "
                             f"tembench reads weights only. {TRUST_HINT}") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e2:  # noqa: BLE001 -- e.g. a class that does not exist here
            raise UsageError(f"checkpoint {path}: --trust-checkpoint could not unpickle it either "
                             f"({type(e2).__name__}: {_reason(e2)})") from None
        trusted = True
    except Exception as e:  # noqa: BLE001 -- EOFError, KeyError, RuntimeError (zip), IndexError, ...: not a checkpoint
        if "TorchScript" in str(e) or "constants.pkl" in str(e):
            if not trust:
                raise UsageError(f"checkpoint {path} is a TorchScript archive (e.g. OpenAI CLIP .pt); reading it "
                                 f"runs its code. {TRUST_HINT} (read with torch.jit.load)") from None
            obj = torch.jit.load(str(path), map_location="cpu").state_dict()
            trusted = True
        else:
            # torch's zip reader says what is wrong with an archive; what the unpickler raises on bytes that
            # are no pickle (IndexError, KeyError, EOFError, ...) depends on the bytes and says nothing more
            detail = f": {_reason(e)}" if isinstance(e, RuntimeError) else ""
            raise UsageError(f"checkpoint {path} is not a readable PyTorch checkpoint (corrupt, truncated or "
                             f"not a torch.save file{detail})") from None
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    container = None
    if isinstance(obj, dict) and not _is_state_dict(obj):
        for key in CONTAINER_KEYS:
            if isinstance(obj.get(key), dict) and _is_state_dict(obj[key]):
                container, obj = key, obj[key]
                break
        else:
            keys = ", ".join(list(obj)[:8])
            raise UsageError(f"{path}: no state dict found (top-level keys: {keys}); expected tensors or one of "
                             f"{', '.join(CONTAINER_KEYS)}")
    if not isinstance(obj, dict):
        raise UsageError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}, container, trusted


def _reason(e: BaseException) -> str:
    """The informative line of a torch/pickle error (torch's own advice left out), ANSI codes stripped."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(e).splitlines()]
    lines = [ln for ln in lines if ln]
    for ln in lines:
        if any(k in ln for k in ("Unsupported", "unsupported", "invalid load key", "failed finding", "failed reading")):
            return ln.replace("WeightsUnpickler error: ", "")[:200]
    return (lines[0] if lines else type(e).__name__)[:200]


def _pickled_objects(e: BaseException) -> str | None:
    """What a ``weights_only`` refusal names (``GLOBAL argparse.Namespace``, a blocked module), or None
    when the refusal is about bytes that are not a pickle at all."""
    found = re.findall(r"GLOBAL ([\w.]+)", str(e))
    if found:
        return ", ".join(f"GLOBAL {g}" for g in dict.fromkeys(found))
    if re.search(r"global|blocked", str(e), re.IGNORECASE) and "Unsupported operand" not in str(e):
        return _reason(e)
    return None


def _is_state_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) for k in d) and any(isinstance(v, torch.Tensor) for v in d.values())


def _strip(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def detect_source(keys) -> str:
    keys = [_strip(k, "module.") for k in keys]
    if any(k.startswith("base_model.") for k in keys):
        return "tsn-official"
    if any(k.startswith("backbone.") for k in keys):
        return "mmaction"
    if any(k.startswith("visual.") for k in keys):
        return "clip"
    if any(k.startswith("patch_embed1.") for k in keys):
        return "uniformer"
    return "plain"


_BLOCK = r"^(layer\d+\.\d+)"


def _map_tsn_official(k: str) -> str:
    k = _strip(k, "base_model.")
    k = re.sub(_BLOCK + r"\.net\.", r"\1.", k)  # TAM wraps the original block as .net
    k = re.sub(_BLOCK + r"\.(?:block\.)?(?:self_conv\.conv_f)\.", r"\1.temporal.G.", k)
    k = re.sub(_BLOCK + r"\.(?:block\.)?(?:self_conv\.conv_g)\.", r"\1.temporal.L.", k)
    k = re.sub(_BLOCK + r"\.tam\.", r"\1.temporal.", k)
    k = k.replace(".conv1.net.", ".conv1.")  # TSM's residual shift wraps conv1 as .net
    return "fc." + k[len("new_fc."):] if k.startswith("new_fc.") else k


def _map_mmaction(k: str) -> str:
    k = _strip(k, "backbone.")
    if k.startswith("cls_head.fc_cls."):
        return "fc." + k[len("cls_head.fc_cls."):]
    k = re.sub(_BLOCK + r"\.block\.", r"\1.", k)
    k = re.sub(_BLOCK + r"\.tam\.", r"\1.temporal.", k)
    k = k.replace(".conv1.net.", ".conv1.")
    k = re.sub(r"^conv1\.conv\.", "conv1.", k)
    k = re.sub(r"^conv1\.bn\.", "bn1.", k)
    k = re.sub(r"\.conv(\d)\.conv\.", r".conv\1.", k)
    k = re.sub(r"\.conv(\d)\.bn\.", r".bn\1.", k)
    k = k.replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.", ".downsample.1.")
    return k


def map_keys(state: dict, source: str = "auto", keep=()) -> tuple[dict, list[str], str]:
    """(state dict with tembench names, ignored keys, source used). ``keep``: the model's own names;
    a text-tower key that is one of them is mapped, not ignored."""
    if source not in SOURCES:
        raise UsageError(f"unknown checkpoint format {source!r}; one of {', '.join(SOURCES)}")
    if source == "auto":
        source = detect_source(state)
    out, ignored = {}, []
    for key, value in state.items():
        k = _strip(key, "module.")
        if source == "tsn-official":
            k = _map_tsn_official(k)
        elif source == "mmaction":
            k = _map_mmaction(k)
        elif source == "clip" and not k.startswith(("visual.", "fc.")) and k.startswith(CLIP_TEXT) and k not in keep:
            ignored.append(key)
            continue
        out[k] = value
    if source == "mmaction":  # mmaction's TAM local branch has no BN: Conv1d, ReLU, Conv1d, Sigmoid
        for k in [k for k in out if re.search(r"\.temporal\.L\.2\.weight$", k)]:
            if k.replace(".L.2.", ".L.1.") not in out:
                out[k.replace(".L.2.", ".L.3.")] = out.pop(k)
    return out, ignored, source


def _shape_text(mismatch: str) -> str:
    """``"fc.weight: file (400, 2048) vs model (174, 2048)"`` -> ``"fc.weight expected (174, 2048), found (400, 2048)"``."""
    m = re.fullmatch(r"(.+): file (\(.*\)) vs model (\(.*\))", mismatch)
    return f"{m.group(1)} expected {m.group(3)}, found {m.group(2)}" if m else mismatch


def load_checkpoint(model: nn.Module, path: str | Path, trust: bool = False, strict: bool = False,
                    source: str = "auto") -> CheckpointReport:
    """Load ``path`` into ``model`` (matching keys with matching shapes); raise on ``strict`` problems
    or when nothing matches."""
    state, container, trusted = read_checkpoint(path, trust)
    own = model.state_dict()
    mapped, ignored, used = map_keys(state, source, keep=own.keys())
    report = CheckpointReport(str(path), file_sha256(Path(path)), container, used, trusted, ignored=ignored)
    load = {}
    for k, v in mapped.items():
        if k not in own:
            if not k.endswith("num_batches_tracked"):
                report.unexpected.append(k)
        elif tuple(v.shape) != tuple(own[k].shape):
            report.shape_mismatch.append(f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}")
        else:
            load[k] = v
    report.loaded = sorted(k for k in load if not k.endswith("num_batches_tracked"))
    mismatched = {s.split(":")[0] for s in report.shape_mismatch}
    report.missing = sorted(k for k in own if k not in load and k not in mismatched
                            and not k.endswith("num_batches_tracked"))
    if not report.loaded and report.shape_mismatch:
        shown = "; ".join(_shape_text(m) for m in report.shape_mismatch[:3])
        raise UsageError(f"checkpoint {path}: the names match the model but {len(report.shape_mismatch)} tensors have "
                         f"the wrong shape, e.g. {shown} (another number of classes, frames or width?)")
    if not report.loaded:
        sample = ", ".join(list(state)[:4])
        wanted = ", ".join(k for k in list(own)[:3])
        raise UsageError(f"checkpoint {path}: no tensor name matches the model (format {used}; the file has e.g. "
                         f"{sample}; the model wants e.g. {wanted}); wrong checkpoint for this variant, or pass "
                         "--checkpoint-format")
    if strict and not report.clean:
        first = (report.missing + report.unexpected + report.shape_mismatch)[:3]
        raise UsageError(f"--strict: checkpoint {Path(path).name} does not match the model exactly: "
                         f"{report.summary()} (e.g. {'; '.join(first)})")
    model.load_state_dict(load, strict=False)
    return report
