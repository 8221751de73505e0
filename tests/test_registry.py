"""Registry loading and validation: bad files are reported with file, entry and key."""
import shutil
from pathlib import Path

import pytest

from tembench.errors import RegistryError, UsageError
from tembench.registry import default_registry_dir, load_registry

GOOD = '''
[paper]
key = "demo"
title = "Demo"

[[table]]
source = "Demo Table 1"
rows = ["A", "B"]

[[variant]]
id = "demo/tsm-r18"
arch = "resnet"
backbone = "resnet18"
temporal = "tsm"
classes = 10
frames = 4
input_size = 112
[[variant.claim]]
source = "Demo Table 1"
row = "A"
metric = "gflops"
value = 3.6
views = "3x2"
'''


def write(tmp_path, text, name="demo.toml"):
    (tmp_path / name).write_text(text)
    return tmp_path


def test_the_shipped_registry_loads_and_every_id_is_family_slash_name():
    reg = load_registry()
    assert len(reg.variants) >= 20
    assert all("/" in v for v in reg.variants)
    assert "tam/tanet-r50" in reg.variants


def test_a_good_file_loads_with_defaults_and_views(tmp_path):
    reg = load_registry(write(tmp_path, GOOD))
    v = reg.get("demo/tsm-r18")
    assert (v.frames, v.input_size, v.classes, v.temporal) == (4, 112, 10, "tsm")
    (c,) = v.claims
    assert (c.crops, c.clips, c.views, c.frames, c.unit, c.paper) == (3, 2, 6, 4, "G", "demo")


@pytest.mark.parametrize("bad, key", [
    (GOOD.replace('classes = 10', 'classes = "ten"'), "classes"),
    (GOOD.replace('frames = 4', 'frames = 0'), "frames"),
    (GOOD.replace('backbone = "resnet18"', 'backbone = "resnet19"'), "backbone"),
    (GOOD.replace('temporal = "tsm"', 'temporal = "tsmx"'), "temporal"),
    (GOOD.replace('metric = "gflops"', 'metric = "gflop"'), "metric"),
    (GOOD.replace('views = "3x2"', 'views = "3by2"'), "views"),
    (GOOD.replace('id = "demo/tsm-r18"', 'id = "Demo TSM"'), "id"),
    (GOOD.replace('input_size = 112', 'input_size = 112\nframez = 3'), "framez"),
    (GOOD.replace('temporal = "tsm"', 'temporal = "tsm"\noptions = { fold = 4 }'), "options.fold"),
    (GOOD.replace('row = "A"', 'row = "C"'), "row"),
])
def test_validation_errors_name_file_and_key(tmp_path, bad, key):
    """Schema errors at load; what only the models know (backbones, temporal modules, options) through
    the registry's check hook, with the same file / entry / key message."""
    from tembench.cost.conventions import check_claims
    from tembench.models.build import check_variant

    with pytest.raises(RegistryError) as e:
        load_registry(write(tmp_path, bad)).check((check_variant, check_claims))
    msg = str(e.value)
    assert msg.startswith("demo.toml") or "demo.toml" in msg
    assert key.split(".")[-1] in msg or key in msg


def test_malformed_toml_and_duplicates(tmp_path):
    with pytest.raises(RegistryError, match="demo.toml: not valid TOML"):
        load_registry(write(tmp_path, GOOD + "\n[[variant]\n"))
    (tmp_path / "demo.toml").unlink()
    write(tmp_path, GOOD, "a.toml")
    write(tmp_path, GOOD.replace('key = "demo"', 'key = "demo2"').replace("Demo Table 1", "Demo2 Table 1"), "b.toml")
    with pytest.raises(RegistryError, match="duplicate id"):
        load_registry(tmp_path)


def test_unknown_variant_names_the_closest_ids():
    reg = load_registry()
    with pytest.raises(UsageError, match="closest: tam/tanet-r50"):
        reg.get("tam/tanet-r5")


def test_select_by_family_glob_and_exact():
    reg = load_registry()
    assert {v.id for v in reg.select(["tsn"])} >= {"tsn/tsn-r50", "tsn/tsn-r18"}
    assert [v.id for v in reg.select(["tam/tanet-r1*"])] == ["tam/tanet-r101", "tam/tanet-r152"]
    with pytest.raises(UsageError, match="no variant matches"):
        reg.select(["nothing*"])


def test_ensembles_resolve_members_across_files(tmp_path):
    text = GOOD + '''
[[ensemble]]
id = "demo/en"
members = [{ variant = "demo/tsm-r18", frames = 4 }, { variant = "demo/tsm-r18", frames = 8 }]
'''
    reg = load_registry(write(tmp_path, text))
    assert reg.get("demo/en").frames == 12
    bad = text.replace('variant = "demo/tsm-r18", frames = 8', 'variant = "demo/nope", frames = 8')
    with pytest.raises(RegistryError, match="members"):
        load_registry(write(tmp_path, bad))
