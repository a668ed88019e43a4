"""``spikeseq data info|check|fetch [NAME]``: what is present, what is missing, checksums, downloads.

- ``info``: the data root and, per dataset, whether its files are present; with ``NAME`` the manifest (licence,
  citation, files, URLs, checksums).
- ``check NAME``: verify the checksums of the files present (downloaded archives and the manifest's ``[[check]]``
  files), list what is missing and load every split (counts per class). Exit code 1 when something is missing
  or wrong, including a split that loads but warns that the copy is incomplete (``DataIncompleteWarning``, e.g.
  N-MNIST digits without any recording).
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


def _expected_digests(man) -> dict[str, list[tuple[str, str, int]]]:
    """Per file path under the dataset folder: the ``(algorithm, digest, size)`` the manifest expects, from its
    ``[[files]]`` and ``[[check]]`` entries together (a file listed in both is hashed and reported once)."""
    out: dict[str, list[tuple[str, str, int]]] = {}
    for f in man.files:
        algo, want = ("sha256", f.sha256) if f.sha256 else (("md5", f.md5) if f.md5 else ("", ""))
        out.setdefault(f.name, []).append((algo, want.lower(), 0))  # a download's size is not checked here
    for c in man.check:
        out.setdefault(c.path, []).append(("sha256" if c.sha256 else "", c.sha256.lower(), c.size))
    return out


def _check_file(p: Path, expected: list[tuple[str, str, int]], listed_in_check: bool) -> tuple[str, bool]:
    """One report line for file ``p`` against every expected digest and size, and whether it matched."""
    from spikeseq.data.download import file_digest

    digests: dict[str, str] = {}
    problems = []
    for algo, want, size in expected:
        if algo:
            got = digests.setdefault(algo, file_digest(p, algo))
            if got != want:
                problems.append(f"expected {algo} {want}")
        if size and p.stat().st_size != size:
            problems.append(f"expected {size} bytes, found {p.stat().st_size}")
    algo = "sha256" if "sha256" in digests or not digests else next(iter(digests))
    got = digests.get(algo) or file_digest(p, algo)
    if not any(a for a, _, _ in expected) and not listed_in_check:
        return f"UNKNOWN  {p} sha256 {got} (no checksum in the manifest)", True
    if problems:
        return f"MISMATCH {p} {algo} {got} ({'; '.join(dict.fromkeys(problems))})", False
    return f"OK       {p} {algo} {got}", True


def _print_summary(name: str, root: Path | None) -> int:
    """Load every split, print one ``LOAD`` line each and a ``WARNING`` line per incomplete-copy warning
    (:class:`~spikeseq.data.repair.DataIncompleteWarning`); the number of splits that failed plus those warnings."""
    from spikeseq.data.registry import summary

    bad = 0
    for split, s in summary(name, root).items():
        if "error" in s:
            print(f"LOAD     {split}: error: {s['error']}")
            bad += 1
        elif "per_class" in s:
            print(f"LOAD     {split}: {s['n']} samples, per class {s['per_class']}")
        else:
            print(f"LOAD     {split}: {s['n']} windows of {s['seq_len']} tokens, vocabulary {s['vocab']}")
        for w in s.get("warnings", ()):
            print(f"WARNING  {split}: {w}")
            bad += 1
    return bad


def _check(args: argparse.Namespace) -> int:
    from spikeseq.data.manifest import load_manifest

    man = load_manifest(args.name)
    folder = _folder(args.name, args.root)
    bad = 0
    _, missing = _status(args.name, args.root)
    for e in missing:
        print(f"MISSING  {folder / e}")
        bad += 1
    checked = {c.path for c in man.check}
    for rel, expected in _expected_digests(man).items():
        p = folder / rel
        if not p.exists():
            if rel in checked and rel not in man.expect:
                print(f"MISSING  {p}")
                bad += 1
            continue
        if not p.is_file():
            print(f"MISMATCH {p} is not a file (a folder or something else is in its place); restore the file")
            bad += 1
            continue
        line, ok = _check_file(p, expected, rel in checked)
        print(line)
        bad += not ok
    bad += _print_summary(args.name, Path(args.root) / man.subdir if args.root else None)
    print("check: " + ("all good" if not bad else f"{bad} problem(s)"))
    return 0 if not bad else 1


def _fetch(args: argparse.Namespace) -> int:
    from spikeseq.data.download import fetch

    for line in fetch(args.name, args.root, force=args.force):
        print(line)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed ``spikeseq data`` action; returns the exit code, ``DataError`` for an unknown dataset."""
    from spikeseq.data.registry import GENERATED, names

    name = getattr(args, "name", None)
    if name is not None and name not in names():
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    if name in GENERATED:
        raise DataError(f"{name} is generated in memory from its arguments, with no files: there is nothing to "
                        f"{'show' if args.data_command == 'info' else args.data_command}; load it with "
                        f"spikeseq.data.load({name!r}, split) or name it in a recipe's [data]")
    return {"info": _info, "check": _check, "fetch": _fetch}[args.data_command](args)
