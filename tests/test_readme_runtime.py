"""The README's runtime examples are sized for the machine they run on: a CPU example names its
expected duration and stays small; anything bigger is marked as a GPU example (``--device cuda``)."""
import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
CPU_MAX_CLIPS = 4  # clips per forward (batch x crops x clips) of a CPU example
CPU_MAX_MINUTES = 3


def runtime_examples():
    section = README.read_text(encoding="utf-8").split("\n## Runtime\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for block in re.findall(r"```bash\n(.+?)\n```", section, re.S) for ln in block.splitlines()]
    return [ln for ln in lines if ln.startswith("tembench profile") and re.search(r"--(latency|memory)\b", ln)]


def option(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def clips_per_forward(args) -> int:
    batch = max(int(b) for b in option(args, "--batch", "1").split(","))
    views = [int(v) for v in option(args, "--views", "1x1").split("x")]
    crops, clips = views[-2:]
    return batch * crops * clips


def test_cpu_runtime_examples_are_small_and_say_how_long_they_take():
    examples = runtime_examples()
    assert examples, "no runtime example in the README's Runtime section"
    cpu = 0
    for line in examples:
        command, _, comment = line.partition("#")
        args = shlex.split(command)
        if option(args, "--device", "cpu").startswith("cuda"):
            continue
        cpu += 1
        assert clips_per_forward(args) <= CPU_MAX_CLIPS, \
            f"{command.strip()!r}: {clips_per_forward(args)} clips per forward on a CPU; mark it --device cuda"
        m = re.search(r"about (\d+(?:\.\d+)?) (s|min)\b", comment)
        assert m, f"{command.strip()!r} does not say how long it takes (a comment '# ...: about N s|min')"
        minutes = float(m.group(1)) / (60 if m.group(2) == "s" else 1)
        assert minutes <= CPU_MAX_MINUTES, line
    assert cpu >= 2, "the Runtime section has no CPU-sized example"
