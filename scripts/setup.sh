#!/usr/bin/env bash
# Set up mmconvplug in ./.venv: torch, mmcv 2.1.0 *with compiled ops*, mmengine,
# mmdet, mmsegmentation and the package itself (editable). Idempotent: a second
# run only checks and returns.
#
#   GPU users: create .venv and install your CUDA torch into it first
#     python3 -m venv .venv && .venv/bin/pip install torch==<ver> --index-url <cuda index>
#   then run this script: it keeps that torch and builds mmcv's ops against it.
set -euo pipefail
# --- helper worktree guard (added by the lead; do not commit) ---
if [[ "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" != /work/main ]]; then
  echo "[setup] This worktree shares /work/main/.venv (./.venv links to it). Do NOT build or pip install."
  echo "[setup] Read ./AGENT_RULES.md. Run tests as: PYTHONPATH=$PWD /work/main/.venv/bin/python -m pytest tests/<file> -q"
  if [[ -f /work/main/.venv/.mmconvplug-ready ]]; then echo "[setup] the shared venv is ready"; exit 0; fi
  echo "[setup] the shared venv is NOT ready yet (mmcv is compiling); wait until /work/main/.venv/.mmconvplug-ready exists"; exit 1
fi
# --- end guard ---

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
venv="$here/.venv"
py="$venv/bin/python"
stamp="$venv/.mmconvplug-ready"
log_dir="$venv/setup-logs"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Fast path: everything installed and the package sources unchanged.
if [[ -f "$stamp" && "$stamp" -nt pyproject.toml ]] &&
   "$py" -c "import mmconvplug, mmcv.ops, mmdet, mmseg" 2>/dev/null; then
  say "environment ready ($venv)"
  exit 0
fi

if [[ ! -x "$py" ]]; then
  say "creating virtual environment $venv"
  python3 -m venv "$venv"
fi
mkdir -p "$log_dir"
pip_q() { "$py" -m pip install --disable-pip-version-check -q "$@"; }

# 1. torch: keep the user's (e.g. a CUDA build), else the CPU 2.13.0 wheel.
if "$py" -c "import torch" 2>/dev/null; then
  say "using the torch already in .venv: $("$py" -c 'import torch; print(torch.__version__)')"
else
  say "installing torch==2.13.0 (CPU)"
  pip_q torch==2.13.0
fi

# 2. Build tools mmcv needs *in the environment* (the build runs without isolation,
#    so it compiles against this torch; pkg_resources needs setuptools < 81).
pip_q "setuptools>=77.0.3,<81" wheel "numpy<2" ninja

# 3. mmcv 2.1.0 with compiled ops.
ops_ok() { "$py" -c "from mmcv.ops import nms, roi_align" 2>/dev/null; }
if ops_ok; then
  say "mmcv $("$py" -c 'import mmcv; print(mmcv.__version__)') with ops: ok"
else
  if "$py" -c "import mmcv" 2>/dev/null; then
    say "mmcv is installed without its compiled ops; rebuilding it"
    "$py" -m pip uninstall -y -q mmcv
  fi
  say "building mmcv 2.1.0 with ops against this torch."
  say "The first build takes about a quarter of an hour on 2 cores; pip caches the"
  say "wheel, so later set-ups on this machine take about 2 minutes. Log: $log_dir/mmcv.log"
  start=$SECONDS
  MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$py" -m pip install --disable-pip-version-check \
    -v --no-build-isolation mmcv==2.1.0 "numpy<2" >"$log_dir/mmcv.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    step=$(grep -oE '^\[[0-9]+/[0-9]+\]' "$log_dir/mmcv.log" | tail -n 1 || true)
    say "  ... $(( (SECONDS - start) / 60 )) min elapsed${step:+, compiled $step}"
  done
  wait "$pid" || die "mmcv build failed; the last lines of $log_dir/mmcv.log:
$(tail -n 25 "$log_dir/mmcv.log")"
  ops_ok || die "mmcv installed but its ops do not import ('from mmcv.ops import nms').
This happens when pip builds mmcv in an isolated environment. Fix:
  $py -m pip uninstall -y mmcv
  $py -m pip cache remove mmcv
  $py -m pip install --no-build-isolation mmcv==2.1.0"
  say "mmcv built in $(( (SECONDS - start) / 60 )) min"
fi

# 4. mmdet, mmseg, mmengine and mmconvplug (editable) with the test and deploy
#    (onnx, onnxruntime) extras.
say "installing mmdet, mmsegmentation and mmconvplug (editable)"
pip_q --no-build-isolation -e ".[test,deploy]"

"$py" -c "import mmconvplug, mmcv.ops, mmdet, mmseg" ||
  die "the environment does not import; see the messages above"
touch "$stamp"
say "environment ready: $("$py" -m mmconvplug info --short)"
