#!/usr/bin/env bash
# Build (once) the Python 3.10 environment holding the real Lava / lava-dl toolchain, outside the repository.
# Idempotent: a stamp file records the hash of the pins; a complete environment is reused as it is.
# Prints the environment's python on the last line of stdout.
#   SPIKESEQ_CACHE       cache root (default ~/.cache/spikeseq)
#   SPIKESEQ_LAVA_ENV    the environment's folder (default $SPIKESEQ_CACHE/lava-py310)
#   SPIKESEQ_PYTHON310   a Python 3.10 interpreter (default: python3.10 on PATH, else pyenv's 3.10.x)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${SPIKESEQ_CACHE:-$HOME/.cache/spikeseq}"
env_dir="${SPIKESEQ_LAVA_ENV:-$cache/lava-py310}"
stamp="$env_dir/.spikeseq-lava-env"
want="$(cat "$here/lava-requirements.txt" "$here/lava-nodeps.txt" | sha256sum | cut -c1-16)"
log() { echo "lava-env: $*" >&2; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$env_dir/bin/python" ]; then
  log "reusing $env_dir (pins $want)"
  echo "$env_dir/bin/python"
  exit 0
fi

is310() { [ -n "$1" ] && "$1" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; }
py310="${SPIKESEQ_PYTHON310:-}"
if ! is310 "$py310"; then
  py310=""
  # a pyenv shim named python3.10 exists even when no 3.10 is selected: try it, then pyenv's own versions
  for cand in "$(command -v python3.10 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python \
              /root/.pyenv/versions/3.10.*/bin/python; do
    if is310 "$cand"; then py310="$cand"; break; fi
  done
fi
if [ -z "$py310" ]; then
  log "no Python 3.10 found (set SPIKESEQ_PYTHON310, or install one, e.g. 'pyenv install 3.10')"
  exit 3
fi

log "building $env_dir with $py310 (pins $want); a few GB of wheels, several minutes"
rm -rf "$env_dir.tmp"
"$py310" -m venv "$env_dir.tmp"
pip=("$env_dir.tmp/bin/python" -m pip install -q --no-input --no-cache-dir)
log "pip install -r lava-requirements.txt"
"${pip[@]}" -r "$here/lava-requirements.txt"
log "pip install --no-deps -r lava-nodeps.txt"
"${pip[@]}" --no-deps -r "$here/lava-nodeps.txt"
log "checking: import lava.lib.dl.netx"
"$env_dir.tmp/bin/python" -c 'import lava.lib.dl.netx, lava.magma; print("lava-env: lava.lib.dl.netx imports")' >&2
# A venv's scripts hold its absolute path: build in place after the check by renaming, then re-point them.
rm -rf "$env_dir"
mv "$env_dir.tmp" "$env_dir"
grep -lI "$env_dir.tmp" "$env_dir"/bin/* "$env_dir/pyvenv.cfg" 2>/dev/null | xargs -r sed -i "s#$env_dir.tmp#$env_dir#g"
echo "$want" > "$stamp"
log "ready: $env_dir ($(du -sh "$env_dir" | cut -f1))"
echo "$env_dir/bin/python"
