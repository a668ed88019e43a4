"""The wheel ships the package and the data folders (hardware tables, dataset manifests)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import spikeseq

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(REPO)],
        check=True,
    )
    (whl,) = out.glob("spikeseq-*.whl")
    return whl


def test_wheel_contains_package_and_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "spikeseq/__init__.py" in names
    for toml in (REPO / "hardware").glob("*.toml"):
        assert f"spikeseq/_data/hardware/{toml.name}" in names
    for toml in (REPO / "datasets").glob("*.toml"):
        assert f"spikeseq/_data/datasets/{toml.name}" in names
    assert not any(n.startswith("spikeseq/_data/datasets/") and not n.endswith((".toml", ".md")) for n in names)


def test_import_needs_only_torch_and_numpy():
    code = (
        "import sys, spikeseq, spikeseq.functional, spikeseq.kernels, spikeseq.nn\n"
        "heavy = {'h5py', 'scipy', 'nir', 'triton', 'matplotlib', 'tonic', 'snntorch', 'norse', 'numba'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]", f"import spikeseq pulled optional dependencies: {out}"
    assert spikeseq.__version__
