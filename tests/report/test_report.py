"""``spikeseq report``: every section from a real (tiny) run, numbers taken from the run's artefacts, and the page
renders in headless Chromium without console errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from spikeseq.report.build import SECTIONS, write_report
from spikeseq.report.document import markdown_to_html
from spikeseq.train.cmd_export import export_run
from spikeseq.train.cmd_profile import profile_run
from spikeseq.train.config import from_dict
from spikeseq.train.loop import fit
from spikeseq.train.rundir import RunDir
from spikeseq.train.runs import evaluate_run


def _tiny_run(root: Path, profile: bool) -> Path:
    g = torch.Generator().manual_seed(5)
    y = torch.randint(0, 3, (90,), generator=g)
    x = 0.4 * torch.randn(90, 8, 4, generator=g) + 1.5 * torch.nn.functional.one_hot(y, 4)[:, None, :].float()
    torch.save({"train": {"x": x[:60], "y": y[:60]}, "test": {"x": x[60:], "y": y[60:]},
                "classes": ["walk", "run", "sit"]}, root / "d.pt")
    cfg = from_dict({
        "name": "report-test",
        "model": {"name": "snn_mlp", "n_in": 4, "n_out": 3, "hidden": 12, "tau_mem": 0.01, "backend": "torch",
                  "reset": "zero"},
        "data": {"name": "tensor_file", "path": str(root / "d.pt"), "val_fraction": 0.2,
                 "input_scale": 2.0},  # integer inputs: Loihi takes integer graded spikes only
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.02},
        "profile": {"tables": ["loihi", "spinnaker2", "loihi2"], "samples": 8},
        "export": {"samples": 16},
    })
    run = RunDir.prepare(root / "run", cfg)
    summary = fit(cfg, run, quiet=True)
    run.set_status(summary["status"])
    evaluate_run(run.path)
    if profile:
        profile_run(run.path)
        export_run(run.path)
    return run.path


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    return _tiny_run(tmp_path_factory.mktemp("full"), profile=True)


def test_every_section_with_the_run_numbers(full_run):
    paths = write_report(full_run)
    page = paths["html"].read_text()
    md = paths["markdown"].read_text()
    for section in SECTIONS:
        assert f">{section}</h2>" in page and f"## {section}" in md
    ev = json.loads((full_run / "eval.json").read_text())
    acc = f"{100 * ev['test']['acc']:.2f}%"
    assert f"Test accuracy <strong>{acc}</strong> on 30 samples" in page
    assert sum(map(sum, ev["test"]["confusion"])) == 30
    rate = ev["spikes"]["layers"][0]["rate"]
    assert f"<td class=\"num\">{rate:.4f}</td>" in page
    prof = json.loads((full_run / "profile.json").read_text())
    loihi_nj = prof["energy"]["loihi"]["memory_on"]["total_pj"] / 1e3
    assert loihi_nj > 0 and f"{loihi_nj:.4g} nJ" in page
    assert "<td>loihi2</td>" in page  # a table without published figures is listed, not invented
    metrics = [json.loads(line) for line in (full_run / "metrics.jsonl").read_text().splitlines()]
    assert f"{metrics[-1]['train_loss']:.4f}" in page
    for target in ("nir", "loihi", "spinnaker2"):
        res = json.loads((full_run / "export" / f"{target}.json").read_text())
        assert "error" not in res, res
        assert res["samples"] == 16 and 0.0 <= res["prediction_agreement"] <= 1.0
        assert f"Export to {target}" in page
    assert "<tr><td>status</td><td>verified</td><td>verified</td><td>verified</td></tr>" in page
    nir = json.loads((full_run / "export" / "nir.json").read_text())
    assert f"<td>prediction agreement</td><td class=\"num\">{100 * nir['prediction_agreement']:.2f}%</td>" in page
    # self-contained: images inline, nothing fetched, no scripts
    assert len(re.findall(r'src="data:image/png;base64,', page)) >= 6
    assert not re.search(r'(src|href)="(https?:|file:|/)', page) and "<script" not in page
    # the Markdown links PNG files written beside it
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 6
    for link in links:
        data = (paths["markdown"].parent / link).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_missing_artefacts_name_the_command(tmp_path):
    run = _tiny_run(tmp_path, profile=False)
    page = write_report(run)["html"].read_text()
    assert f"Not available: run <code>spikeseq profile {run}</code>" in page
    assert f"Not available: run <code>spikeseq export {run}</code>" in page


def test_markdown_subset_to_html():
    html = markdown_to_html("### Ops\n\n| layer | MACs |\n|---|---:|\n| fc1 | 1.5e+04 |\n\nsome `code` **bold**\n"
                            "- a\n- b\n")
    assert html.splitlines() == [
        "<h4>Ops</h4>",
        '<table><thead><tr><th>layer</th><th>MACs</th></tr></thead><tbody><tr><td>fc1</td><td class="num">'
        "1.5e+04</td></tr></tbody></table>",
        "<p>some <code>code</code> <strong>bold</strong></p>",
        "<ul><li>a</li><li>b</li></ul>",
    ]


def _chromium() -> str:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        msg = ("headless Chromium is needed to check the HTML report: apt-get install -y chromium "
               "(the Makefile / .ci/run install it)")
        if os.environ.get("SPIKESEQ_REQUIRE_DATA") == "1" or os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def _render(exe: str, page: Path, tmp_path: Path) -> tuple[Path, list[str]]:
    shot = tmp_path / f"{page.stem}.png"
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--window-size=1200,3000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return shot, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def test_renders_in_headless_chromium(full_run, tmp_path):
    exe = _chromium()
    page = write_report(full_run)["html"]
    # the console check itself works: a page with a script error is caught
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>undefinedFunction()</script></body></html>")
    assert any("undefinedFunction" in line for line in _render(exe, bad, tmp_path)[1])

    shot, console = _render(exe, page, tmp_path)
    assert console == []
    import matplotlib.image

    img = matplotlib.image.imread(shot)
    assert img.shape[0] == 3000 and img.shape[1] == 1200
    assert float(img[..., :3].std()) > 0.05  # not a blank page
