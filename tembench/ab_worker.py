"""One side of ``tembench check --base REF``: a process that measures latency cases on request.

:mod:`tembench.check` copies this file out of the package and runs it as a script (``python worker.py``)
once per side, with that side's PYTHONPATH: the current tree, or REF's temporary git worktree. It imports
the *side's* tembench to build a case (the registry and the runtime's ``prepare``: what an older tembench
also provides; when the side lacks one of them it answers with one line saying so) and times it with the
loop below, the same on both sides whatever either side's timing code. Within tembench only
:mod:`tembench.check` imports it, for :func:`reference_workload` (the gate's yardstick without ``--base`` too).

Timing: one intra-op thread (as the latency gate always measures); samples alternate with bursts of a fixed
reference convolution (torch only), and each sample is also kept relative to the bursts just before and
just after it. On a machine shared with other jobs the speed changes from one moment to the next; the
reference slows down with the model, so the relative samples keep the model's speed and lose most of the
machine's (two minutes of a 2-core VM with three other busy processes: IQR/median of TSM-R18 8x112 from
0.8 raw to 0.15 relative; about 2% either way on a quiet machine).

The protocol is JSON lines: one request per line on stdin (an object with ``op``), one answer per line on
stdout. Whatever the models print goes to stderr: stdout carries the answers only.

* ``{"op": "hello", "registry": [dirs], "builtin": true, "threads": 1}`` -> ``{"ok": true, "tembench": dir}``
* ``{"op": "prepare", "variant": id, "frames": t, "size": s}`` -> ``{"ok": true, ...}`` (built, warmed up),
  ``{"absent": "..."}`` (no such variant on this side) or ``{"error": "..."}``
* ``{"op": "measure", "variant": id, "frames": t, "size": s, "budget_s": b}`` -> ``{"ok": true,
  "samples_ms": [...], "relative": [...], "reference_ms": r}``: ``b`` seconds of samples
* ``{"op": "quit"}``
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback

NEEDS = (("tembench.registry", "registry"), ("tembench.runtime.runner", "RuntimeOptions"),
         ("tembench.runtime.runner", "prepare"))
MIN_SAMPLE_S = 0.02  # one sample: as many back-to-back calls of the forward as take this long (at least one)
REF_SHARE = 0.1  # the reference burst between two samples: about this share of a sample's time (at least 2 calls)
MIN_SAMPLES = 3


def reference_workload():
    """A fixed convolution (torch only, no tembench code; the same on both sides): the machine's yardstick."""
    import torch

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 28, 28, generator=g)
    w = torch.randn(64, 64, 3, 3, generator=g)

    def run():
        with torch.no_grad():
            return torch.nn.functional.conv2d(x, w, padding=1)

    return run


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


class Worker:
    def __init__(self):
        self.api: dict = {}
        self.threads = 1
        self.cases: dict = {}  # (variant, frames, size) -> (model, input, forward): built once, kept warm
        self.reference = None

    def hello(self, req: dict) -> dict:
        import importlib
        import importlib.util

        found = importlib.util.find_spec("tembench")  # where this side's tembench is (nothing imported yet)
        if found is None or not found.submodule_search_locations:
            return {"error": "no tembench package to import on this side's PYTHONPATH"}
        home = os.path.abspath(list(found.submodule_search_locations)[0])
        for module, name in NEEDS:
            try:
                mod = importlib.import_module(module)
                self.api[name] = getattr(mod, name)
            except (ImportError, AttributeError) as e:
                return {"error": f"this tembench ({home}) lacks {module}.{name}, which --base needs to measure a "
                                 f"case ({_line(e)})"}
            where = os.path.abspath(getattr(mod, "__file__", "") or "")
            if not where.startswith(home + os.sep):  # an editable install's finder fills gaps from another tree
                return {"error": f"this tembench ({home}) lacks {module}, which --base needs to measure a case "
                                 f"(the one found is another copy's: {where})"}
        try:  # optional: older tembench versions have no registry sources of one's own or steady heap
            from tembench.registry import configure

            configure(req.get("registry", []), req.get("builtin", True))
        except ImportError:
            pass
        try:
            from tembench.runtime.memory import hold_heap

            hold_heap()  # each forward reuses the pages of the previous one (see RuntimeOptions.steady_heap)
        except ImportError:
            pass
        self.threads = int(req.get("threads", 1))
        self.reference = reference_workload()
        return {"ok": True, "tembench": os.path.dirname(home)}

    def _opts(self):
        return self.api["RuntimeOptions"](latency=True, device="cpu", modules=False, threads=self.threads)

    def prepare(self, req: dict) -> dict:
        """Build the case (the side's registry entry and model code) and warm it up for ``warm_s`` seconds."""
        import time

        import torch
        from tembench.errors import TembenchError

        try:
            spec = self.api["registry"]().get(req["variant"])
        except TembenchError as e:
            return {"absent": _line(e)}
        torch.set_num_threads(self.threads)
        _, _, forward = self.api["prepare"](spec, req["frames"], req["size"], 1, self._opts())
        t0, calls = time.perf_counter(), 0
        while calls < 3 or time.perf_counter() - t0 < float(req.get("warm_s", 0.5)):
            forward()
            self.reference()
            calls += 1
        per_call = min(_seconds(forward, 1) for _ in range(2))
        ref_call = min(_seconds(self.reference, 1) for _ in range(3))
        number = max(1, round(MIN_SAMPLE_S / per_call))
        burst = max(2, round(REF_SHARE * number * per_call / ref_call))
        self.cases[(req["variant"], req["frames"], req["size"])] = (forward, number, burst)
        return {"ok": True, "calls_per_sample": number, "reference_calls": burst}

    def measure(self, req: dict) -> dict:
        """Samples for ``budget_s`` seconds: reference burst, forward sample, reference burst, forward
        sample, ... Each sample is the time of one forward call (the mean of ``number`` back-to-back calls for
        a short one); its relative value divides it by the mean of the reference bursts just before and just
        after it, so a machine that is slower for a moment (a neighbour's load) is slower on both."""
        import time

        import torch

        forward, number, burst = self.cases[(req["variant"], req["frames"], req["size"])]
        torch.set_num_threads(self.threads)
        budget = float(req["budget_s"])
        forward()  # the other side ran meanwhile: caches and branch predictors are cold
        samples, relative, refs = [], [], []
        before = _seconds(self.reference, burst)
        t0 = time.perf_counter()
        while len(samples) < MIN_SAMPLES or time.perf_counter() - t0 < budget:
            took = _seconds(forward, number)
            after = _seconds(self.reference, burst)
            samples.append(took * 1e3)
            relative.append(took / ((before + after) / 2))
            refs.append(after * 1e3)
            before = after
        return {"ok": True, "samples_ms": [round(x, 5) for x in samples], "relative": [round(x, 6) for x in relative],
                "reference_ms": sorted(refs)[len(refs) // 2]}


def _seconds(fn, number: int) -> float:
    """Seconds per call of ``fn``, over ``number`` back-to-back calls."""
    import time

    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops this process (Ctrl-C reaches the whole group)
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints from the models' code (Python or C) go to stderr
    sys.stdout = sys.stderr
    worker = Worker()
    for raw in sys.stdin:
        if not raw.strip():
            continue
        req = json.loads(raw)
        op = req.get("op")
        if op == "quit":
            break
        try:
            answer = getattr(worker, op)(req) if op in ("hello", "prepare", "measure") else \
                {"error": f"unknown request {op!r}"}
        except Exception as e:  # noqa: BLE001 -- answered as one line; the traceback goes to stderr
            traceback.print_exc()
            answer = {"error": _line(e)}
        answers.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
