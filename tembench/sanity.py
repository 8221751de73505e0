"""Motion-sensitivity benchmark: can a temporal module tell which way something moves?

Each clip shows a square moving horizontally at constant speed over a noisy background; its label
is the direction (0: rightwards, 1: leftwards). A leftwards clip is a rightwards clip played
backwards, so the two classes have the same distribution of *frames*: a model that ignores frame
order (TSN) cannot beat chance (50%), while any model that compares frames can learn the task.

``run_benchmark`` trains small-width versions of the registered ``motion/*`` variants for a few
epochs on 2 CPU cores with fixed seeds (fresh clips every epoch, so nothing can be memorised),
evaluates them on held-out clips and returns accuracy records, including the per-clip correctness
that the CI accuracy gate compares with McNemar's test. Whether a model is order-blind is not
declared but measured: its untrained logits do not change when the clip is played backwards.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

CHANCE = 50.0


@dataclass(frozen=True)
class MotionConfig:
    frames: int = 8
    size: int = 32
    train_clips: int = 512
    test_clips: int = 256
    epochs: int = 10
    batch: int = 32
    lr: float = 2e-3
    seed: int = 0

    def fingerprint(self) -> str:
        """Identifies the generated dataset (generator version + parameters + seed)."""
        text = f"motion-v1|{self.frames}|{self.size}|{self.train_clips}|{self.test_clips}|{self.seed}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_clips(n: int, frames: int = 8, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips (n, 3, frames, size, size) in [-1, 1] and their direction labels (n,), balanced.

    Clip 2k moves rightwards; clip 2k+1 is an independent rightwards clip reversed in time.
    """
    g = torch.Generator().manual_seed(seed)
    side = max(3, size // 5)
    clips = torch.empty(n, 3, frames, size, size)
    labels = torch.arange(n) % 2
    for i in range(n):
        speed = 1 + int(torch.randint(1, 3, (1,), generator=g))  # 2 or 3 px per frame
        span = speed * (frames - 1)
        x0 = int(torch.randint(0, size - side - span + 1, (1,), generator=g))
        y0 = int(torch.randint(0, size - side + 1, (1,), generator=g))
        colour = torch.rand(3, generator=g) * 1.5 - 0.5
        background = torch.rand(3, 1, 1, generator=g) * 0.4 - 0.2
        noise = torch.randn(3, frames, size, size, generator=g) * 0.15
        clip = background.unsqueeze(1).expand(3, frames, size, size) + noise
        for t in range(frames):
            x = x0 + speed * t
            clip[:, t, y0 : y0 + side, x : x + side] = colour.view(3, 1, 1)
        clips[i] = clip.flip(1) if labels[i] == 1 else clip
    return clips.clamp_(-1, 1), labels


def training_data(cfg: MotionConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One fresh set of ``train_clips`` clips per epoch (seeded), so models cannot memorise them."""
    return [make_clips(cfg.train_clips, cfg.frames, cfg.size, cfg.seed * 1000 + 10 + e) for e in range(cfg.epochs)]


def held_out_data(cfg: MotionConfig) -> tuple[torch.Tensor, torch.Tensor]:
    return make_clips(cfg.test_clips, cfg.frames, cfg.size, cfg.seed * 1000 + 1)


def is_order_blind(model: nn.Module, cfg: MotionConfig) -> bool:
    """True when the architecture ignores frame order: on a random clip, a copy of the model with
    every parameter perturbed (zero-initialised temporal branches, such as ATM's projection, would
    otherwise hide it) gives the same logits for the clip played forwards and backwards."""
    import copy

    probe = copy.deepcopy(model).eval()
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.no_grad():
        for p in probe.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
        x = torch.randn(2, 3, cfg.frames, cfg.size, cfg.size, generator=g)
        return torch.allclose(probe(x), probe(x.flip(2)), rtol=1e-4, atol=1e-5)


def train_and_evaluate(model: nn.Module, cfg: MotionConfig, data=None) -> dict:
    """Train ``model`` on the motion task and return {"top1", "correct", "train_s", ...}.

    ``data`` is (list of per-epoch (clips, labels), (test clips, labels)); generated when None."""
    torch.manual_seed(cfg.seed)
    epochs, (xte, yte) = data or (training_data(cfg), held_out_data(cfg))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = sum((len(x) + cfg.batch - 1) // cfg.batch for x, _ in epochs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.2)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    model.train()
    for xtr, ytr in epochs:
        perm = torch.randperm(len(xtr), generator=order_gen)
        for start in range(0, len(xtr), cfg.batch):
            idx = perm[start : start + cfg.batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(xte[i : i + 64]).argmax(1) for i in range(0, len(xte), 64)])
    correct = (pred == yte).tolist()
    return {
        "top1": 100.0 * sum(correct) / len(correct),
        "correct": correct,
        "train_s": round(train_s, 2),
        "final_loss": round(float(loss.detach()), 4),
    }


def run_benchmark(patterns: list[str] | None = None, cfg: MotionConfig = MotionConfig(),
                  on_record=None) -> list[dict]:
    """Train and evaluate every selected variant (default: every one whose registry entry has
    ``motion_gate``, the built-in ``motion/*``); one accuracy record each."""
    from tembench.models.build import build_from_spec
    from tembench.registry import registry

    torch.set_num_threads(2)
    specs = registry().select(patterns) if patterns else [s for s in registry().select() if s.motion_gate]
    data = (training_data(cfg), held_out_data(cfg))
    records = []
    for spec in specs:
        torch.manual_seed(cfg.seed)
        model = build_from_spec(spec, frames=cfg.frames, num_classes=2)
        blind = is_order_blind(model, cfg)
        result = train_and_evaluate(model, cfg, data)
        learned = result["top1"] >= 90.0
        blind_ok = abs(result["top1"] - CHANCE) <= 10.0
        rec = {
            "variant": spec.id,
            "temporal": spec.temporal or "",
            "order_blind": blind,
            "frames": cfg.frames,
            "input_size": cfg.size,
            "dataset": "motion-direction",
            "dataset_fingerprint": cfg.fingerprint(),
            "chance": CHANCE,
            **result,
            "purpose": ("order-blind, at chance" if blind_ok else "FAILS: order-blind model beats chance") if blind
            else ("learns motion" if learned else "FAILS: does not learn motion"),
        }
        records.append(rec)
        if on_record:
            on_record(rec)
    return records
