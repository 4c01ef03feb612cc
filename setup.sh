#!/usr/bin/env bash
# One command to set up a fresh machine: ./setup.sh
#   - .venv with the CPU build of torch (2.13.0, from this machine's disk) and this package (+ test extras)
#   - the MediaPipe models in assets/models/, checksummed (python -m pipeline.assets fetch)
#   - for tests: glbcheck (Khronos validator, Blender 3.4, three.js) when ../shared/tools/glbcheck exists,
#     and tests/vrmcheck (three.js + pixiv's three-vrm, npm) to read the VRM exports back
# Idempotent; re-running takes seconds. Options (env): PYTHON=python3.11  DHCAP_NO_GLBCHECK=1  DHCAP_BPY_VRM=1
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
log() { printf '[setup] %s\n' "$*"; }
PY="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
quiet_pip() { "${PIP[@]}" install --quiet "$@" 2> >(grep -v "^WARNING: Location 'file:" >&2); }
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
quiet_pip 'torch==2.13.0'
quiet_pip -e '.[test]'
.venv/bin/python -m pipeline.assets fetch

if [ -z "${DHCAP_NO_GLBCHECK:-}" ]; then
  src=""
  for d in ../shared/tools/glbcheck ../../shared/tools/glbcheck; do [ -d "$d" ] && { src="$d"; break; }; done
  if [ -n "$src" ]; then
    # ../shared may be read-only and glbcheck's setup writes node_modules beside itself.
    mkdir -p .cache/glbcheck && chmod -R u+w .cache/glbcheck
    cp -r "$src"/. .cache/glbcheck/ && chmod -R u+w .cache/glbcheck
    log "glbcheck (test consumer: validator, Blender, three.js)"
    GLBCHECK_NO_VENV=1 bash .cache/glbcheck/setup.sh | sed 's/^/  /'
  else
    log "no ../shared/tools/glbcheck here: skipping the glTF consumer checks used by the tests"
  fi
fi
# Test reader for the VRM exports: three.js + pixiv's three-vrm loaders (pinned in package-lock.json).
if command -v npm >/dev/null 2>&1; then
  if ! cmp -s tests/vrmcheck/package-lock.json tests/vrmcheck/node_modules/.dhcap-lock 2>/dev/null; then
    log "tests/vrmcheck (test reader of .vrm/.vrma: three.js + @pixiv/three-vrm)"
    (cd tests/vrmcheck && npm ci --no-audit --no-fund --loglevel=error) | sed 's/^/  /'
    cp tests/vrmcheck/package-lock.json tests/vrmcheck/node_modules/.dhcap-lock
  fi
else
  log "no npm here: skipping tests/vrmcheck (the three-vrm reader used by the VRM tests)"
fi
# Opt-in, about 1 GB: Blender as a Python module and the VRM Add-on for Blender (both from PyPI), so
# the tests also import avatar.vrm / take.vrma with the add-on. DHCAP_BPY_VRM=1 ./setup.sh
if [ -n "${DHCAP_BPY_VRM:-}" ]; then
  log "Blender's VRM add-on for the tests (bpy 5.0.1 + bpy-vrm-format 4.10.2 in .cache/bpy-vrm)"
  [ -x .cache/bpy-vrm/bin/python ] || .venv/bin/python -m venv .cache/bpy-vrm
  .cache/bpy-vrm/bin/python -m pip --disable-pip-version-check install --quiet 'bpy==5.0.1' 'bpy-vrm-format==4.10.2' \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
fi
log "done. Try: .venv/bin/python -m pipeline.process --help"
