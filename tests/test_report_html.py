"""`tembench report --format html`: one self-contained file that a real browser (headless Chromium)
renders with every paper table and plot, offline.

Chromium comes from Debian: `apt-get install -y chromium` (provides /usr/bin/chromium). Without it the
browser tests are skipped with that reason; the static checks still run.
"""
import re
import shutil
import subprocess

import pytest

from run_records import runtime_rec

from tembench.cli import main
from tembench.report.plots import PLOT_NAMES
from tembench.report.tables import table_sources
from tembench.results.store import RunWriter

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if p), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The full report (every paper) with one accuracy run and one runtime sweep stored."""
    runs = tmp_path_factory.mktemp("runs")
    acc = RunWriter("accuracy", runs, command=["tembench", "eval", "tam/tanet-r50", "--data", "/data/k400"])
    acc.add({"variant": "tam/tanet-r50", "dataset": "kinetics400", "frames": 8, "views": "8x3x10", "top1": 76.1,
             "weights": "tanet_k400.pth", "randomly_initialised": False,
             "dataset_fingerprint": {"videos": 19796, "annotations_sha256": "ab12cd", "decoder": "pyav 12"}})
    acc.close()
    rt = RunWriter("runtime", runs, command=["tembench", "profile", "tsm/tsm-r50", "--latency", "--frames", "8,16"])
    for t in (8, 16):
        rt.add(runtime_rec(frames=t, latency=12.5 * t, temporal_ms=0.3 * t))
    rt.close()
    out_dir = tmp_path_factory.mktemp("report")
    with pytest.raises(SystemExit) as e:
        main(["report", "--format", "html", "--runs", f"dir={runs}", "--out", str(out_dir / "report.html")])
    assert e.value.code == 0
    return out_dir / "report.html"


def slug(source):
    return re.sub(r"[^a-z0-9]+", "-", source.lower()).strip("-")


def test_one_file_with_every_table_and_plot_and_nothing_fetched(report):
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]
    text = report.read_text(encoding="utf-8")
    for source in table_sources():
        assert f'id="t-{slug(source)}"' in text, source
    assert text.count('class="sortable paper"') == len(table_sources())
    for name in PLOT_NAMES:
        assert f'<figure id="plot-{name}"><img class="plot"' in text
    # resources are embedded: no <link>, no script/img/css fetched from anywhere
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert re.findall(r'<img[^>]* src="([^"]{0,22})', text) == ["data:image/png;base64,"] * len(PLOT_NAMES)
    assert not re.search(r"<script[^>]+src=", text)


def test_fingerprints_and_commands_are_in_the_report(report):
    text = report.read_text(encoding="utf-8")
    assert "hardware_hash" in text and "git_commit" in text  # the report machine's fingerprint
    assert "tembench eval tam/tanet-r50 --data /data/k400" in text  # the command behind the measured top-1
    assert "annotations_sha256" in text  # the accuracy run's dataset fingerprint
    assert "tembench.count(&#x27;tam/tanet-r50&#x27;, frames=8, size=256, num_classes=400)" in text
    assert "tembench report --runs dir=" in text


def chromium(url, *extra, timeout=120):
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
               f"--user-data-dir={profile}", *extra, url]
        if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
            cmd = ["unshare", "-n", *cmd]  # no network at all: the page must open offline
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@needs_chromium
def test_chromium_renders_every_table_and_decodes_every_plot(report):
    proc = chromium(f"file://{report}#sort=t-tam-table-2:3:desc", "--dump-dom")
    dom = proc.stdout
    assert proc.returncode == 0 and "</html>" in dom, proc.stderr[-2000:]
    status = re.search(r'<div id="report-status"([^>]*)>([^<]*)', dom)
    n_tables = len(table_sources())
    assert f'data-tables-rendered="{n_tables}"' in status.group(1), status.group(0)
    assert f'data-plots-decoded="{len(PLOT_NAMES)}"' in status.group(1), status.group(0)
    for source in table_sources():
        assert f'id="t-{slug(source)}"' in dom
    # the inline script ran: the TAM Table 2 GFLOPs-published column is sorted, largest first
    t2 = dom.split('id="t-tam-table-2"', 1)[1].split("</table>", 1)[0]
    assert 'aria-sort="descending"' in t2
    first = re.search(r"<tbody>\s*<tr[^>]*>\s*<td>([^<]*)</td>", t2).group(1)
    assert first == "NL C2D"  # 64.49 G, the largest


@needs_chromium
def test_chromium_screenshot_shows_the_page(report, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    proc = chromium(f"file://{report}", f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 2400)
    colors = img.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200  # text, plots and tables, not a blank page
    # the plots are drawn: matplotlib's default blue (#1f77b4) is on screen
    pixels = {c for _, c in colors}
    assert any(abs(r - 0x1F) < 12 and abs(g - 0x77) < 12 and abs(b - 0xB4) < 12 for r, g, b in pixels)
