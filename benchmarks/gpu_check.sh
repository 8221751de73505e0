#!/usr/bin/env bash
# The GPU check: what tembench's CUDA paths do on a real GPU, in under 5 minutes. Run it whenever a
# machine with an NVIDIA GPU is available, from the repository root with tembench installed:
#
#     bash benchmarks/gpu_check.sh                 # PYTHON=/path/to/python to pick the interpreter
#
# One line per check, "PASS|FAIL|SKIP <check>: <what was measured>":
#   latency        CUDA-event latency of tembench beside torch.utils.benchmark on the same forward (ratio)
#   fp16, bf16,    a record of each, beside fp32 on the same case
#   channels_last,
#   compile
#   memory         CUDA peak allocated and reserved beside NVML's peak reading
#   find-max-batch the largest batch search runs into a real OOM (allocator capped at 8 GiB) and the
#                  device measures normally afterwards
#   trace          a torch.profiler trace written by `tembench profile --trace` opens, with CUDA kernels
#                  and the model's module ranges
#   sharded        a 2-GPU torchrun sweep (skipped with one GPU): one run file, each case once, both GPUs
# Exit status: 0 when no check failed, 1 when one did, 2 (at once) on a machine without a CUDA GPU.
# Run files, traces and each check's log stay in $GPU_CHECK_DIR (default: a new temporary directory).
set -uo pipefail

PY=${PYTHON:-python3}
BUDGET_S=${GPU_CHECK_BUDGET_S:-290}  # checks not started by then are skipped, so the whole stays under 5 min

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check.sh needs an NVIDIA GPU: no nvidia-smi on this machine, nothing checked" >&2
    exit 2
fi
if ! GPUS=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null); then
    echo "gpu_check.sh needs torch and tembench in $PY (activate the venv, or set PYTHON=...)" >&2
    exit 2
fi
if [[ "$GPUS" -lt 1 ]]; then
    echo "gpu_check.sh needs a CUDA GPU: torch in $PY sees none (a CPU-only torch build?), nothing checked" >&2
    exit 2
fi

DIR=${GPU_CHECK_DIR:-$(mktemp -d -t tembench-gpu-check.XXXXXX)}
mkdir -p "$DIR"
export GPU_CHECK_DIR="$DIR" TEMBENCH_RUNS="$DIR/runs" GPUS
START=$SECONDS
FAILED=0

# check SECONDS NAME...: run the Python on stdin (its argv: the work directory) for at most SECONDS; for each
# NAME print its last "PASS|FAIL|SKIP NAME: ..." line, or a FAIL line when it printed none (it crashed, or
# ran past SECONDS). The log is $DIR/<first NAME>.log.
check() {
    local limit=$1 log="$DIR/$2.log" status name line
    shift
    if (( SECONDS - START > BUDGET_S )); then
        for name in "$@"; do echo "SKIP $name: the 5-minute budget is spent"; done
        return
    fi
    timeout --kill-after=10 "$limit" "$PY" - "$DIR" >"$log" 2>&1
    status=$?
    for name in "$@"; do
        line=$(grep -E "^(PASS|FAIL|SKIP) $name:" "$log" | tail -n 1)
        if [[ -z "$line" ]]; then
            if [[ "$status" -eq 124 || "$status" -eq 137 ]]; then
                line="FAIL $name: ran past ${limit}s (log: $log)"
            else
                line="FAIL $name: exited $status without a result: $(tail -n 1 "$log") (log: $log)"
            fi
        fi
        echo "$line"
        case $line in
            FAIL*) FAILED=$((FAILED + 1)) ;;
            *) ;;
        esac
    done
}

GPU_NAME=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null) || GPU_NAME="nvidia-smi failed"
echo "tembench GPU check: $GPUS GPU(s): ${GPU_NAME%%$'\n'*}; work files in $DIR"

check 90 latency <<'PY'
import statistics
import torch
from torch.utils.benchmark import Timer
from tembench.registry import get_variant
from tembench.runtime import RuntimeOptions, TimingConfig, time_fn
from tembench.runtime.runner import prepare

case = "tsm/tsm-r50 8x224 batch 1 fp32"
opts = RuntimeOptions(device="cuda:0")
_, _, forward = prepare(get_variant("tsm/tsm-r50"), 8, 224, 1, opts)
config = TimingConfig.for_device("cuda:0", 1.0)
timer = Timer(stmt="forward()", globals={"forward": forward}, num_threads=torch.get_num_threads())
ratios, ours, theirs = [], [], []
for i in range(6):  # alternating order, so that a drift in clocks hits both alike
    if i % 2:
        m = timer.blocked_autorange(min_run_time=1.0)
        t = time_fn(forward, "cuda:0", config)
    else:
        t = time_fn(forward, "cuda:0", config)
        m = timer.blocked_autorange(min_run_time=1.0)
    ours.append(t.median_ms)
    theirs.append(m.median * 1e3)
    ratios.append(t.median_ms / (m.median * 1e3))
ratio = statistics.median(ratios)
ok = abs(ratio - 1) <= 0.05
print(f"{'PASS' if ok else 'FAIL'} latency: {case} on {torch.cuda.get_device_name(0)}: CUDA events "
      f"{statistics.median(ours):.3f} ms, torch.utils.benchmark {statistics.median(theirs):.3f} ms, ratio "
      f"{ratio:.3f} ({'within' if ok else 'OUTSIDE'} 5%; rounds {min(ratios):.3f}-{max(ratios):.3f})")
PY

check 120 fp16 bf16 channels_last <<'PY'
from tembench.api import runtime_profile

def one(**kw):
    (r,) = runtime_profile(["tsm/tsm-r50"], frames=[8], size=224, device="cuda", budget=1, **kw)
    return r

base = one()
for name, kw, field, want in (("fp16", {"dtype": "fp16"}, "dtype", "fp16"), ("bf16", {"dtype": "bf16"}, "dtype", "bf16"),
                              ("channels_last", {"channels_last": True}, "channels_last", True)):
    r = one(**kw)
    ok = r["status"] == "ok" and r.get(field) == want and r.get("latency_ms", 0) > 0 and r["device"].startswith("cuda")
    what = (f"{r['latency_ms']:.3f} ms, x{base['latency_ms'] / r['latency_ms']:.2f} of fp32's {base['latency_ms']:.3f} ms, "
            f"spread {r['latency_spread']:.3f}") if r["status"] == "ok" else f"{r['status']}: {r.get('error')}"
    print(f"{'PASS' if ok else 'FAIL'} {name}: tsm/tsm-r50 8x224 on {r['device']}: {what}; record says {field}={r.get(field)}")
PY

check 90 memory <<'PY'
from tembench.api import runtime_profile

(r,) = runtime_profile(["tsm/tsm-r50"], frames=[8], size=224, batches=[4], device="cuda", latency=False,
                       memory=True)
alloc, reserved = r.get("mem_peak_alloc_mib"), r.get("mem_peak_reserved_mib")
proc, dev = r.get("nvml_process_peak_mib"), r.get("nvml_device_peak_mib")
nvml = proc if proc is not None else dev
if r["status"] != "ok" or alloc is None or reserved is None:
    print(f"FAIL memory: tsm/tsm-r50 8x224 batch 4: {r['status']} {r.get('error', '')} (record: {sorted(r)})")
elif nvml is None:
    print(f"SKIP memory: peak allocated {alloc:.0f} MiB, reserved {reserved:.0f} MiB; no NVML reading "
          "(pip install nvidia-ml-py)")
else:
    # NVML sees the whole process (CUDA context, cuDNN workspace) or device: at least what torch reserved
    ok = alloc <= reserved <= nvml + 1 and nvml - reserved < 4096
    print(f"{'PASS' if ok else 'FAIL'} memory: tsm/tsm-r50 8x224 batch 4: peak allocated {alloc:.0f} MiB <= reserved "
          f"{reserved:.0f} MiB <= NVML {'process' if proc is not None else 'device'} peak {nvml:.0f} MiB "
          f"(+{nvml - reserved:.0f} MiB context and workspace; {r.get('nvml_samples')} samples)")
PY

check 120 find-max-batch <<'PY'
import torch
from tembench.api import runtime_profile

cap = 8 * 2**30
torch.cuda.set_per_process_memory_fraction(min(1.0, cap / torch.cuda.get_device_properties(0).total_memory), 0)
(r,) = runtime_profile(["tsm/tsm-r18"], frames=[8], size=224, device="cuda", budget=1, find_max_batch=True)
(after,) = runtime_profile(["tsm/tsm-r18"], frames=[8], size=224, device="cuda", budget=1)
left = torch.cuda.memory_allocated(0) / 2**20
ok = (r["status"] == "ok" and r.get("max_batch_bound") == "oom" and r.get("max_batch", 0) >= 1
      and after["status"] == "ok" and left < 64)
print(f"{'PASS' if ok else 'FAIL'} find-max-batch: tsm/tsm-r18 8x224 under an 8 GiB cap: max batch {r.get('max_batch')} "
      f"(bound {r.get('max_batch_bound')}, {r.get('max_batch_trials')} trials); afterwards a batch-1 case measured "
      f"{after.get('latency_ms', float('nan')):.3f} ms (before {r.get('latency_ms', float('nan')):.3f} ms), "
      f"{left:.0f} MiB left allocated")
PY

check 90 trace <<'PY'
import json, subprocess, sys
from pathlib import Path

d = Path(sys.argv[1])
p = subprocess.run([sys.executable, "-m", "tembench", "profile", "tsm/tsm-r18", "--latency", "--budget", "1",
                    "--device", "cuda", "--trace", str(d / "traces"), "--out", str(d / "trace-run"), "--format", "json"],
                   capture_output=True, text=True)
if p.returncode != 0:
    print(f"FAIL trace: tembench profile --trace exited {p.returncode}: {p.stderr.strip().splitlines()[-1:]}")
    sys.exit()
(r,) = json.loads(p.stdout)
events = json.loads(Path(r["trace"]).read_text())["traceEvents"]
kernels = sum(e.get("cat") == "kernel" for e in events)
modules = sorted({e["name"] for e in events if str(e.get("name", "")).startswith(("module:", "temporal:"))})
ok = kernels > 0 and any(m.startswith("temporal:") for m in modules)
print(f"{'PASS' if ok else 'FAIL'} trace: {r['trace']} opens: {len(events)} events, {kernels} CUDA kernels, "
      f"{len(modules)} module ranges ({', '.join(modules[:3])}, ...)")
PY

check 150 sharded <<'PY'
import json, os, subprocess, sys
from pathlib import Path

d = Path(sys.argv[1])
if int(os.environ["GPUS"]) < 2:
    print("SKIP sharded: one GPU; a 2-GPU torchrun sweep needs two")
    sys.exit()
p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                    "tembench", "profile", "tsn/tsn-r18", "tsm/tsm-r18", "tsm/tsm-r50", "--frames", "8,16",
                    "--latency", "--memory", "--budget", "1", "--device", "cuda", "--out", str(d / "sharded")],
                   capture_output=True, text=True)
runs = list((d / "sharded").glob("*.json"))
if p.returncode != 0 or len(runs) != 1:
    print(f"FAIL sharded: torchrun exited {p.returncode}, {len(runs)} run files: {p.stderr.strip().splitlines()[-1:]}")
    sys.exit()
run = json.loads(runs[0].read_text())
cases = [r["case"] for r in run["records"]]
devices = sorted({r["device"] for r in run["records"]})
ok = (run["status"] == "complete" and sorted(cases) == sorted(run["grid"]) and len(set(cases)) == len(cases) == 6
      and devices == ["cuda:0", "cuda:1"] and all(r["status"] == "ok" for r in run["records"]))
print(f"{'PASS' if ok else 'FAIL'} sharded: 2 ranks, {len(cases)} of {len(run['grid'])} cases in one run file "
      f"({run['status']}), each once, on {', '.join(devices)}; "
      f"{sum(r['rank'] == 0 for r in run['records'])} + {sum(r['rank'] == 1 for r in run['records'])} by rank")
PY

# compile last: the slowest (inductor compiles during warm-up), and skipped when the budget is spent
check 150 compile <<'PY'
from tembench.api import runtime_profile

(r,) = runtime_profile(["tsm/tsm-r18"], frames=[8], size=224, device="cuda", budget=1, compile=True)
(eager,) = runtime_profile(["tsm/tsm-r18"], frames=[8], size=224, device="cuda", budget=1)
ok = r["status"] == "ok" and r.get("compile") is True and r.get("latency_ms", 0) > 0
what = (f"{r['latency_ms']:.3f} ms compiled, {eager['latency_ms']:.3f} ms eager (warm-up {r.get('warmup_s')} s)"
        if r["status"] == "ok" else f"{r['status']}: {r.get('error')}")
print(f"{'PASS' if ok else 'FAIL'} compile: tsm/tsm-r18 8x224 on {r['device']}: {what}; record says compile={r.get('compile')}")
PY

echo "tembench GPU check: $FAILED failed, $((SECONDS - START)) s; logs and run files in $DIR"
[[ "$FAILED" -eq 0 ]]
