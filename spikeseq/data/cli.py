"""``spikeseq data info|check|fetch [NAME]``: what is present, what is missing, checksums, downloads.

- ``info``: the data root and, per dataset, whether its files are present; with ``NAME`` the manifest (licence,
  citation, files, URLs, checksums).
- ``check NAME``: verify the checksums of the files present (downloaded archives and the manifest's ``[[check]]``
  files), list what is missing and load every split (counts per class). Exit code 1 when something is missing
  or wrong.
- ``fetch NAME``: download, verify and unpack (``temporal`` is generated locally).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from spikeseq.errors import DataError


def register(parser: argparse.ArgumentParser) -> None:
    """Add the ``spikeseq data`` actions (``info``, ``check``, ``fetch``) and their options to ``parser``."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = sub.add_parser("info", help="data root, datasets present / missing, or one manifest")
    p.add_argument("name", nargs="?", help="dataset name (default: all)")
    p.add_argument("--root", help="data root (default: $SPIKESEQ_DATA or the repository's datasets/)")
    p = sub.add_parser("check", help="verify checksums of present files and load every split")
    p.add_argument("name")
    p.add_argument("--root")
    p = sub.add_parser("fetch", help="download (or generate), verify and unpack a dataset")
    p.add_argument("name")
    p.add_argument("--root")
    p.add_argument("--force", action="store_true", help="download again even if present")


def _folder(name: str, root: str | None) -> Path:
    from spikeseq.data.manifest import load_manifest
    from spikeseq.data.paths import data_root

    return (Path(root) if root else data_root()) / load_manifest(name).subdir


def _status(name: str, root: str | None) -> tuple[list[str], list[str]]:
    from spikeseq.data.manifest import load_manifest

    man = load_manifest(name)
    folder = _folder(name, root)
    present = [e for e in man.expect if (folder / e).exists()]
    missing = [e for e in man.expect if not (folder / e).exists()]
    return present, missing


def _info(args: argparse.Namespace) -> int:
    from spikeseq.data.manifest import load_manifest
    from spikeseq.data.paths import ENV_DATA, cache_dir, data_root, manifests_dir
    from spikeseq.data.registry import GENERATED, file_backed

    root = Path(args.root) if args.root else data_root()
    if not args.name:
        print(f"data root: {root} ({ENV_DATA}={os.environ.get(ENV_DATA)!r})")
        print(f"manifests: {manifests_dir()}    cache: {cache_dir()}")
        for name in GENERATED:
            print(f"  {name:<13} {'generated':<8} in memory, from its arguments (nothing to download)")
        for name in file_backed():
            present, missing = _status(name, args.root)
            state = "present" if not missing else ("partial" if present else "missing")
            print(f"  {name:<13} {state:<8} {_folder(name, args.root)}")
        return 0
    man = load_manifest(args.name)
    present, missing = _status(args.name, args.root)
    print(f"{man.name}: {man.title}\n  folder:   {_folder(args.name, args.root)}")
    print(f"  licence:  {man.licence}\n  citation: {man.citation}")
    if man.homepage:
        print(f"  homepage: {man.homepage}")
    for e in present:
        print(f"  present:  {e}")
    for e in missing:
        print(f"  MISSING:  {e}")
    for f in man.files:
        checksum = f"sha256 {f.sha256}" if f.sha256 else (f"md5 {f.md5} ({f.md5_source})" if f.md5 else "no checksum")
        print(f"  file:     {f.name}  <- {f.url}\n            {checksum}; size {f.size or 'unknown'}"
              + (f"; {f.note}" if f.note else ""))
    if man.note:
        print(f"  note:     {' '.join(man.note.split())}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from spikeseq.data.download import file_digest
    from spikeseq.data.manifest import load_manifest
    from spikeseq.data.registry import summary

    man = load_manifest(args.name)
    folder = _folder(args.name, args.root)
    bad = 0
    _, missing = _status(args.name, args.root)
    for e in missing:
        print(f"MISSING  {folder / e}")
        bad += 1
    for f in man.files:
        p = folder / f.name
        if not p.exists():
            continue
        if f.sha256 or f.md5:
            algo, want = ("sha256", f.sha256) if f.sha256 else ("md5", f.md5)
            got = file_digest(p, algo)
            ok = got == want.lower()
            bad += not ok
            print(f"{'OK' if ok else 'MISMATCH':<8} {p} {algo} {got}" + ("" if ok else f" (expected {want})"))
        else:
            print(f"UNKNOWN  {p} sha256 {file_digest(p)} (no checksum in the manifest)")
    for c in man.check:
        p = folder / c.path
        if not p.exists():
            print(f"MISSING  {p}")
            bad += 1
            continue
        got = file_digest(p)
        ok = (not c.sha256 or got == c.sha256) and (not c.size or p.stat().st_size == c.size)
        bad += not ok
        print(f"{'OK' if ok else 'MISMATCH':<8} {p} sha256 {got}" + ("" if ok else f" (expected {c.sha256}, "
                                                                      f"{c.size} bytes)"))
    for split, s in summary(args.name, Path(args.root) / man.subdir if args.root else None).items():
        if "error" in s:
            print(f"LOAD     {split}: error: {s['error']}")
            bad += 1
        else:
            print(f"LOAD     {split}: {s['n']} samples, per class {s['per_class']}")
    print("check: " + ("all good" if not bad else f"{bad} problem(s)"))
    return 0 if not bad else 1


def _fetch(args: argparse.Namespace) -> int:
    from spikeseq.data.download import fetch

    for line in fetch(args.name, args.root, force=args.force):
        print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``spikeseq data`` action; returns the exit code, ``DataError`` for an unknown dataset."""
    from spikeseq.data.registry import names

    name = getattr(args, "name", None)
    if name is not None and name not in names():
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    return {"info": _info, "check": _check, "fetch": _fetch}[args.data_command](args)
