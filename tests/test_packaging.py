"""Installs that work: the wheel carries every package and the built-in registry, and runs from any directory."""
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_lists_every_package_of_the_source_tree():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "tembench").rglob("__init__.py")}
    assert listed - {"tembench.builtin_registry"} == on_disk


def test_the_registry_is_found_without_the_source_tree(tmp_path, monkeypatch):
    """A wheel's tembench/builtin_registry/ is preferred over a checkout's registry/."""
    from tembench import registry as reg_module

    fake = tmp_path / "site" / "tembench"
    (fake / "builtin_registry").mkdir(parents=True)
    (fake / "builtin_registry" / "x.toml").write_text("")
    monkeypatch.setattr(reg_module, "__file__", str(fake / "registry.py"))
    assert reg_module.builtin_registry_dir() == fake / "builtin_registry"


def test_the_wheel_installs_into_a_fresh_venv_and_runs_outside_the_repository(tmp_path):
    """Build the wheel, install it (no dependencies) into a new venv whose dependencies come from this
    interpreter's site-packages (a .pth line: no tembench source on the path, no download), then run
    `tembench list` and `tembench profile tsm/tsm-r50` from an empty directory."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("tembench-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    site = subprocess.run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]  # torch, typer, rich, ...: plain paths, their .pth files are not run
    Path(site, "deps-of-the-test-interpreter.pth").write_text(deps + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TEMBENCH_REGISTRY", "TEMBENCH_RUNS", "PYTHONPATH")}

    where = subprocess.run([str(bin_dir / "python"), "-c", "import tembench; print(tembench.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(site), where  # the installed wheel, not the checkout
    listing = subprocess.run([str(bin_dir / "tembench"), "list", "--format", "csv"], cwd=work, env=env,
                             capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    assert "tam/tanet-r50" in listing.stdout and "tsm/tsm-r50" in listing.stdout
    prof = subprocess.run([str(bin_dir / "tembench"), "profile", "tsm/tsm-r50", "--format", "json"], cwd=work,
                          env=env, capture_output=True, text=True)
    assert prof.returncode == 0, prof.stderr
    assert '"variant": "tsm/tsm-r50"' in prof.stdout and list((work / "results" / "runs").glob("*.json"))
