"""Downloads that never leave anything that looks complete: stream to a temporary file beside the target,
hash while streaming, verify size and checksum, then rename. An interrupted or failed download deletes the
temporary file. Works with ``http(s)://`` and ``file://`` URLs (the latter for tests and local mirrors).

:func:`fetch` installs a dataset from its manifest (``datasets/<name>.toml``): downloads the files whose
contents are missing, verifies them (sha256, else md5 where only that is published; neither: the measured
sha256 is reported with a warning so that it can be recorded), and unpacks archives (zip, tar.gz) through a
temporary folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

from spikeseq.data._atomic import atomic_path
from spikeseq.data.manifest import Manifest, ManifestFile, load_manifest
from spikeseq.data.paths import ENV_DATA, data_root
from spikeseq.errors import DataError

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike, algo: str = "sha256") -> str:
    """Hex digest (``algo``: ``"sha256"``, ``"md5"``, any ``hashlib`` name) of the file at ``path``, read in chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: str | os.PathLike, *, sha256: str = "", md5: str = "", size: int = 0,
             timeout: float = 60.0, show_progress: bool | None = None) -> Path:
    """Stream ``url`` to ``dest`` atomically and verify it; returns ``dest``. :class:`DataError` on a network
    failure (naming the URL, the file and ``$SPIKESEQ_DATA``), a size or a checksum mismatch."""
    dest = Path(dest)
    h256, hmd5 = hashlib.sha256(), hashlib.md5()
    with atomic_path(dest) as tmp:
        try:
            resp = urllib.request.urlopen(url, timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DataError(
                f"cannot download {url} to {dest}: {e}. Offline? Download it elsewhere and put it at {dest} "
                f"(the data root is {ENV_DATA}={os.environ.get(ENV_DATA)!r})"
            ) from e
        with resp, open(tmp, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) if hasattr(resp, "headers") else 0
            bar = _bar(total or size, dest.name, show_progress)
            n = 0
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                out.write(block)
                h256.update(block)
                hmd5.update(block)
                n += len(block)
                if bar is not None:
                    bar.update(len(block))
            if bar is not None:
                bar.close()
        if size and n != size:
            raise DataError(f"{url}: got {n} bytes, the manifest says {size}; the partial download was deleted")
        got = h256.hexdigest()
        if sha256 and got != sha256.lower():
            raise DataError(f"checksum mismatch for {dest.name} from {url}: expected sha256 {sha256}, got {got}; "
                            "the download was deleted (retry, or check the manifest)")
        if not sha256 and md5 and hmd5.hexdigest() != md5.lower():
            raise DataError(f"checksum mismatch for {dest.name} from {url}: expected md5 {md5}, got "
                            f"{hmd5.hexdigest()}; the download was deleted")
        if not sha256 and not md5:
            warnings.warn(f"{dest.name}: no checksum known for {url}; downloaded {n} bytes with sha256 {got} "
                          "(record it in the manifest)", stacklevel=2)
    return dest


def _bar(total: int, desc: str, enabled: bool | None):
    from spikeseq import progress as _p

    if enabled is False or (enabled is None and not _p.enabled()):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total or None, unit="B", unit_scale=True, desc=desc, leave=False)


def _safe_members(names: list[str], archive: Path) -> None:
    for n in names:
        p = Path(n)
        if p.is_absolute() or ".." in p.parts:
            raise DataError(f"{archive}: refusing to unpack member {n!r} (it would land outside the target)")


def unpack(archive: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Extract a zip / tar(.gz) archive into ``target`` through a temporary folder; returns the top-level paths.

    Entries that already exist in ``target`` are replaced only after the whole archive extracted without error.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.", suffix=".unpack", dir=target))
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                _safe_members(z.namelist(), archive)
                z.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                _safe_members(t.getnames(), archive)
                if hasattr(tarfile, "data_filter"):
                    t.extractall(tmp, filter="data")
                else:  # pragma: no cover - python without extraction filters
                    t.extractall(tmp)
        else:
            raise DataError(f"{archive}: not a zip or tar archive")
        out = []
        for entry in sorted(tmp.iterdir()):
            dst = target / entry.name
            if dst.exists():
                shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
            os.replace(entry, dst)
            out.append(dst)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _present(folder: Path, f: ManifestFile) -> bool:
    return bool(f.provides) and all((folder / p).exists() for p in f.provides)


def fetch(name: str, root: str | os.PathLike | None = None, *, force: bool = False,
          show_progress: bool | None = None) -> list[str]:
    """Install dataset ``name`` under ``root`` (default :func:`data_root`); returns a log of what was done."""
    man: Manifest = load_manifest(name)
    folder = (Path(root) if root is not None else data_root()) / man.subdir
    log: list[str] = []
    if name == "temporal":
        from spikeseq.data import temporal_task

        if force or not all((folder / e).exists() for e in man.expect):
            paths = temporal_task.generate_split(folder, seed=0)
            log += [f"generated {p}" for p in paths.values()]
        else:
            log.append(f"present: {folder}")
        return log
    if not man.files:
        raise DataError(f"{name}: the manifest lists no downloadable files")
    for f in man.files:
        dest = folder / f.name
        if not force and (_present(folder, f) or (dest.exists() and not f.unpack)):
            log.append(f"present: {folder / (f.provides[0] if f.provides else f.name)}")
            continue
        if not f.url:
            raise DataError(f"{name}: no URL for {f.name}; put the file at {dest} by hand")
        if not (dest.exists() and not force and _verify(dest, f)):
            download(f.url, dest, sha256=f.sha256, md5=f.md5, size=f.size, show_progress=show_progress)
            log.append(f"downloaded {f.url} -> {dest}")
        if f.unpack:
            unpack(dest, folder)
            log.append(f"unpacked {dest} into {folder}")
    return log


def _verify(path: Path, f: ManifestFile) -> bool:
    if f.sha256:
        return file_digest(path) == f.sha256.lower()
    if f.md5:
        return file_digest(path, "md5") == f.md5.lower()
    return False
