"""Dataset manifests: ``datasets/<name>.toml``, one per dataset.

Schema (every key but ``name``/``subdir`` optional)::

    name = "nmnist"                 # registry name
    title = "N-MNIST"
    subdir = "nmnist/NMNIST"        # folder under the data root
    homepage = "https://..."
    licence = "CC BY-SA 4.0"
    citation = "Orchard et al. ..."
    expect = ["Train", "Test"]      # paths under subdir whose presence means "installed"
    note = "..."

    [[files]]                       # what `spikeseq data fetch NAME` downloads into subdir
    name = "train.zip"
    url = "https://..."
    sha256 = ""                     # "" = not known (the note says why); never invented
    md5 = "..."                     # optional second checksum with its md5_source
    size = 0                        # bytes, 0 = unknown
    unpack = true                   # extract the archive into subdir after verification
    provides = ["Train"]            # what the archive yields (the download may be skipped when present)

    [[check]]                       # extracted files with checksums measured on a real copy
    path = "RawData/labels.txt"
    sha256 = "..."
    size = 12345
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeseq.data.paths import ENV_DATA, data_root, manifests_dir
from spikeseq.errors import DataError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


@dataclass(frozen=True)
class ManifestFile:
    """One downloadable file."""

    name: str
    url: str = ""
    sha256: str = ""
    md5: str = ""
    md5_source: str = ""
    size: int = 0
    unpack: bool = False
    provides: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class CheckFile:
    """An extracted file whose checksum was measured on a real copy."""

    path: str
    sha256: str = ""
    size: int = 0
    note: str = ""


@dataclass(frozen=True)
class Manifest:
    """A parsed ``datasets/<name>.toml``: where the dataset lives, its provenance and the files to fetch and check.

    ``subdir`` is its folder under the data root, ``expect`` the paths a complete copy holds, ``files`` the downloads,
    ``check`` extracted files with measured checksums, ``raw`` the TOML as read.
    """

    name: str
    subdir: str
    title: str = ""
    homepage: str = ""
    licence: str = ""
    citation: str = ""
    note: str = ""
    expect: tuple[str, ...] = ()
    files: tuple[ManifestFile, ...] = ()
    check: tuple[CheckFile, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _manifest_path(name: str) -> Path:
    return manifests_dir() / f"{name}.toml"


def available() -> list[str]:
    """Names of the manifests found (file stems, sorted)."""
    d = manifests_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def load_manifest(name: str) -> Manifest:
    """Parse ``datasets/<name>.toml``; :class:`DataError` if it is missing or malformed."""
    path = _manifest_path(name)
    if not path.is_file():
        raise DataError(f"no manifest for dataset {name!r} at {path}; known: {', '.join(available()) or 'none'}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"manifest {path} is not valid TOML: {e}") from e
    try:
        files = tuple(
            ManifestFile(
                name=f["name"], url=f.get("url", ""), sha256=f.get("sha256", ""), md5=f.get("md5", ""),
                md5_source=f.get("md5_source", ""), size=int(f.get("size", 0)), unpack=bool(f.get("unpack", False)),
                provides=tuple(f.get("provides", ())), note=f.get("note", ""),
            )
            for f in raw.get("files", [])
        )
        check = tuple(
            CheckFile(path=c["path"], sha256=c.get("sha256", ""), size=int(c.get("size", 0)), note=c.get("note", ""))
            for c in raw.get("check", [])
        )
        return Manifest(
            name=raw["name"], subdir=raw["subdir"], title=raw.get("title", ""), homepage=raw.get("homepage", ""),
            licence=raw.get("licence", ""), citation=raw.get("citation", ""), note=raw.get("note", ""),
            expect=tuple(raw.get("expect", ())), files=files, check=check, raw=raw,
        )
    except KeyError as e:
        raise DataError(f"manifest {path} lacks the required key {e}") from e


def dataset_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of dataset ``name`` under ``root`` (default :func:`spikeseq.data.paths.data_root`), from its
    manifest's ``subdir``."""
    base = Path(root) if root is not None else data_root()
    return base / load_manifest(name).subdir


def _inside(path: Path, base: Path) -> bool:
    try:
        path.resolve().relative_to(base.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def missing_files_error(name: str, missing: list[Path], where: Path | None = None, *,
                        root: str | os.PathLike | None = None) -> DataError:
    """A :class:`DataError` naming the missing files, the folder actually searched and how to fix it.

    ``root`` is the root the caller was given explicitly (``None``: the data root was used). Then the message
    names that root, says the data root (``$SPIKESEQ_DATA``) was not used, and how to install there. Without
    ``root``, paths outside the data root are taken as given explicitly (e.g. a file path passed to a reader) and
    said to be so; otherwise the message names ``$SPIKESEQ_DATA`` and the download URLs.
    """
    try:
        man = load_manifest(name)
        urls = [f.url for f in man.files if f.url]
        subdir = man.subdir
    except DataError:
        urls, subdir = [], name
    shown = ", ".join(str(p) for p in missing[:5]) + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
    env = os.environ.get(ENV_DATA)
    data_root_txt = f"{ENV_DATA}={env!r}" + ("" if env else f" (unset, so {data_root()})")
    fetch = f"`spikeseq data fetch {name}`" if urls else ""
    head = f"{name}: missing {shown}" + (f" under {where}" if where is not None else "")
    if root is not None:
        r = str(Path(root))
        msg = (
            f"{head}. Searched the root passed explicitly, root={r!r} (so the data root, {data_root_txt}, was not "
            f"used): put the dataset's files in {r}"
        )
        if fetch:
            msg += (f", or run `spikeseq data fetch {name} --root DIR` (downloads {', '.join(urls)} into "
                    f"DIR/{subdir}) and pass root='DIR/{subdir}'")
        return DataError(msg + f"; or pass no root to read <data root>/{subdir}")
    if missing and not any(_inside(Path(p), data_root()) for p in missing):
        msg = (
            f"{head}. The data root is {data_root_txt}, but that path is outside it: it came from a root or file "
            f"path passed explicitly, and only that was searched; put the files there or fix the path passed, "
            f"or pass no root/path to read <data root>/{subdir}"
        )
        if fetch:
            msg += f" (installed by {fetch}, which downloads {', '.join(urls)})"
        return DataError(msg)
    msg = f"{head}. The data root is {data_root_txt}; put the dataset in <data root>/{subdir}"
    if urls:
        msg += f", or run {fetch} (downloads {', '.join(urls)})"
    return DataError(msg)
