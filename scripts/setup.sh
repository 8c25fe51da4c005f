#!/usr/bin/env bash
# Set up mmconvplug in ./.venv: torch, mmcv 2.1.0 *with compiled ops*, mmengine,
# mmdet, mmsegmentation and the package itself (editable). Idempotent: a second
# run only checks and returns.
#
#   GPU users: create .venv and install your CUDA torch into it first
#     python3 -m venv .venv && .venv/bin/pip install torch==<ver> --index-url <cuda index>
#   then run this script: it keeps that torch and builds mmcv's ops against it.
#
#   Environment:
#     MMCONVPLUG_VENV  the virtual environment to set up (default: ./.venv)
#     TORCH            the torch version to install when the environment has none
#                      (default 2.13.0); e.g. `make test-torch TORCH=2.1.2`
#     MMCONVPLUG_CACHE where built mmcv wheels are kept, one per torch build
#                      (default: ~/.cache/mmconvplug)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
venv="${MMCONVPLUG_VENV:-$here/.venv}"
torch_wanted="${TORCH:-}"
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

# 1. torch: keep the user's (e.g. a CUDA build), else $TORCH (default 2.13.0).
if "$py" -c "import torch" 2>/dev/null; then
  have="$("$py" -c 'import torch; print(torch.__version__)')"
  if [[ -n "$torch_wanted" && "${have%%+*}" != "$torch_wanted" ]]; then
    die "$venv has torch $have, but TORCH=$torch_wanted was asked for.
Use another environment (MMCONVPLUG_VENV=...), or remove $venv and run this again."
  fi
  say "using the torch already in $venv: $have"
else
  say "installing torch==${torch_wanted:-2.13.0}"
  pip_q "torch==${torch_wanted:-2.13.0}"
fi

# 2. Build tools mmcv needs *in the environment* (the build runs without isolation,
#    so it compiles against this torch; pkg_resources needs setuptools < 81).
pip_q "setuptools>=77.0.3,<81" wheel "numpy<2" ninja

# 3. mmcv 2.1.0 with compiled ops, from a wheel cache keyed to this torch.
#    pip's own cache keeps one `mmcv-2.1.0` wheel name for every torch, so a wheel
#    built for another torch would load with undefined symbols. We build the wheel
#    ourselves into $MMCONVPLUG_CACHE/mmcv-2.1.0/<key>/, where <key> names the torch
#    version, its CUDA build, the Python ABI and whether CUDA ops were compiled, and
#    install it from there with no index: a foreign build is never picked up.
ops_ok() { "$py" -c "from mmcv.ops import nms, roi_align" 2>/dev/null; }
cache_root="${MMCONVPLUG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmconvplug}"
key="$("$py" - <<'PYKEY'
import os, sys, sysconfig, torch
cuda_ops = os.environ.get('FORCE_CUDA') == '1' or torch.cuda.is_available()
print('torch{}-cu{}-cp{}{}-{}-{}'.format(
    torch.__version__.replace('+', '_'), (torch.version.cuda or 'none').replace('.', ''),
    sys.version_info[0], sys.version_info[1],
    sysconfig.get_platform().replace('-', '_'), 'cudaops' if cuda_ops else 'cpuops'))
PYKEY
)"
wheel_dir="$cache_root/mmcv-2.1.0/$key"
if ops_ok; then
  say "mmcv $("$py" -c 'import mmcv; print(mmcv.__version__)') with ops: ok"
else
  if "$py" -c "import mmcv" 2>/dev/null; then
    say "mmcv is installed but its ops do not import with this torch; reinstalling it"
    "$py" -m pip uninstall -y -q mmcv
  fi
  if ! ls "$wheel_dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    say "building an mmcv 2.1.0 wheel with ops for $key."
    say "This takes about a quarter of an hour on 2 cores, once per torch; the wheel is"
    say "kept in $wheel_dir. Log: $log_dir/mmcv.log"
    start=$SECONDS
    tmp_dir="$(mktemp -d "$cache_root/.build-XXXXXX" 2>/dev/null || { mkdir -p "$cache_root" && mktemp -d "$cache_root/.build-XXXXXX"; })"
    # torch >= 2.14's headers need C++20 (ATen.h: "#error C++20 or later"), but
    # mmcv 2.1.0's setup.py passes -std=c++17 explicitly, which overrides torch's
    # own default. Then build from mmcv's sdist with that flag raised to C++20.
    mmcv_src=mmcv==2.1.0
    torch_include="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')"
    if grep -qs 'C++20 or later' "$torch_include/ATen/ATen.h"; then
      say "this torch's headers need C++20: building mmcv 2.1.0 from its sdist with -std=c++20"
      "$py" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
        --no-build-isolation -d "$tmp_dir/src" mmcv==2.1.0 >"$log_dir/mmcv-download.log" 2>&1 ||
        { rm -rf "$tmp_dir"; die "could not download the mmcv 2.1.0 sdist; see $log_dir/mmcv-download.log"; }
      tar -xzf "$tmp_dir"/src/mmcv-2.1.0.tar.gz -C "$tmp_dir/src"
      mmcv_src="$tmp_dir/src/mmcv-2.1.0"
      sed -i "s/'-std=c++17'/'-std=c++20'/g" "$mmcv_src/setup.py"
      grep -q "'-std=c++20'" "$mmcv_src/setup.py" ||
        { rm -rf "$tmp_dir"; die "mmcv's setup.py has no -std=c++17 flag to raise; cannot build it for this torch"; }
    fi
    MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$py" -m pip wheel --disable-pip-version-check \
      --no-cache-dir -v --no-build-isolation --no-deps -w "$tmp_dir/wheel" "$mmcv_src" \
      >"$log_dir/mmcv.log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      sleep 30
      step=$(grep -oE '^\[[0-9]+/[0-9]+\]' "$log_dir/mmcv.log" | tail -n 1 || true)
      say "  ... $(( (SECONDS - start) / 60 )) min elapsed${step:+, compiled $step}"
    done
    wait "$pid" || { rm -rf "$tmp_dir"; die "mmcv build failed; the last lines of $log_dir/mmcv.log:
$(tail -n 25 "$log_dir/mmcv.log")"; }
    # Publish the finished wheel only (no half-written cache entry).
    mkdir -p "$(dirname "$wheel_dir")"
    rm -rf "$wheel_dir" && mv "$tmp_dir/wheel" "$wheel_dir" && rm -rf "$tmp_dir"
    say "mmcv wheel built in $(( (SECONDS - start) / 60 )) min"
  else
    say "installing the cached mmcv wheel built for $key"
  fi
  pip_q --no-index --no-deps --force-reinstall "$wheel_dir"/mmcv-2.1.0-*.whl
  # mmcv's own requirements (mmcv.ops imports mmengine), from the index.
  pip_q "mmengine>=0.10.7,<0.11" addict yapf "opencv-python>=3" "numpy<2" packaging pyyaml pillow
  if ! ops_ok; then
    "$py" "$here/mmconvplug/utils/mmcv_ops.py" || true
    die "mmcv's ops do not import from the wheel cached for $key.
The cache entry may be damaged. Fix: remove it and run this script again:
  rm -rf '$wheel_dir'"
  fi
fi

# 4. mmdet, mmseg, mmengine and mmconvplug (editable) with the test, deploy
#    (onnx, onnxruntime), openvino (the second runtime) and docs (sphinx,
#    myst-parser, furo) extras.
say "installing mmdet, mmsegmentation and mmconvplug (editable)"
pip_q --no-build-isolation -e ".[test,deploy,openvino,docs]"

"$py" -c "import mmconvplug, mmcv.ops, mmdet, mmseg" ||
  die "the environment does not import; see the messages above"
# The fused CPU kernels (mmconvplug/convs/cpu_kernels.py) compile once per
# environment (~30 s); build them now rather than at the first training step.
# A failure is not fatal: the layers then use their eager ops.
"$py" -c "from mmconvplug.convs import cpu_kernels; cpu_kernels.load_kernels()" ||
  say "the fused CPU kernels did not build (see above); the layers use eager ops"
touch "$stamp"
say "environment ready: $("$py" -m mmconvplug info --short)"
