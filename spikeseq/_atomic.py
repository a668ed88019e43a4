"""Atomic file writing, the one implementation every layer uses (standard library only).

A file is written to a temporary name beside its target, ``.<name>.<random><suffix>``, and renamed over the target
only when the write finished (with ``fsync`` for :func:`atomic_open`). An interrupted or failed write therefore
never leaves a truncated file under the final name; the previous file stays intact. A write killed by SIGKILL can
leave the temporary file behind: :func:`remove_stale_temps` removes such leftovers (``spikeseq train --resume``
does it for the run directory). A target that cannot be written (read-only folder, a file where a folder is
expected, a folder where the file should go) raises :class:`~spikeseq.errors.OutputError` naming the path and
what to do, not a bare ``OSError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from spikeseq.errors import OutputError

#: suffixes of the temporary files written here (``.part``: data files, ``.tmp``: everything else)
TEMP_SUFFIXES = (".tmp", ".part")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _output_error(path: Path, e: OSError, folder: bool = False) -> OutputError:
    """The :class:`OutputError` for writing file ``path`` (``folder``: creating folder ``path``) failing with ``e``."""
    if folder:  # judged as writing a file inside it
        return _file_error(path / "x", e, f"cannot create the folder {path}")
    return _file_error(path, e, f"cannot write {path}")


def _file_error(path: Path, e: OSError, action: str) -> OutputError:
    if isinstance(e, NotADirectoryError) or e.errno == errno.ENOTDIR or (
            isinstance(e, FileExistsError) and not path.parent.is_dir()):
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.exists() and not p.is_dir()), None)
        what = f"{blocker} is a file, not a directory" if blocker is not None else f"{path.parent} is not a folder"
        return OutputError(f"{action}: {what}; remove or rename that file, or choose another output path")
    if isinstance(e, IsADirectoryError) or path.is_dir():
        return OutputError(f"{action}: it is a directory; remove it or choose another file name")
    if isinstance(e, PermissionError) or e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"{action}: permission denied in {path.parent} ({e.strerror}); make the folder writable "
                           "or choose another output path")
    if e.errno == errno.ENOSPC:
        return OutputError(f"{action}: no space left on the device; free some space and run the command again (the "
                           "previous file, if any, is unchanged)")
    return OutputError(f"{action}: {e.strerror or e}; check the path and its folder")


def ensure_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p path``, with :class:`OutputError` (naming the blocking file) instead of ``OSError``."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file, not a directory; remove or rename it, or choose another output "
                              "folder") from None
        raise _output_error(path, e, folder=True) from None
    return path


def _mkstemp(path: Path, suffix: str) -> tuple[int, Path]:
    ensure_dir(path.parent)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory; remove it or choose another file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise _output_error(path, e) from None
    return fd, Path(tmp)


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as e:
        raise _output_error(path, e) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (ordinary permissions, 0666 minus
    the umask), on any error (including KeyboardInterrupt) it is deleted and ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = _mkstemp(path, suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", suffix: str = ".tmp") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success flush, fsync and rename it to ``path``, on error delete
    it (``path`` is left as it was)."""
    path = Path(path)
    fd, tmp = _mkstemp(path, suffix)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_writable(path: str | os.PathLike) -> Path:
    """Raise :class:`OutputError` now, before a long computation, when ``path`` could not be written later (its
    folder is created; the probe file is removed again, an existing ``path`` is left as it was)."""
    path = Path(path)
    fd, tmp = _mkstemp(path, ".tmp")
    os.close(fd)
    tmp.unlink()
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (fsync + rename)."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (fsync + rename)."""
    return write_bytes(path, text.encode("utf-8"))


def is_temp_name(name: str) -> bool:
    """Whether a file name has the form of a temporary file written here (``.<name>.<random>.tmp|.part``)."""
    return name.startswith(".") and name.count(".") >= 3 and name.endswith(TEMP_SUFFIXES)


def remove_stale_temps(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes in ``folder`` (and below with ``recursive``);
    returns the paths removed. Call it only where no other process is writing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(".*") if recursive else folder.glob(".*")
    removed = []
    for p in sorted(found):
        if p.is_file() and not p.is_symlink() and is_temp_name(p.name):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed
