#!/usr/bin/env bash
# The GPU check, on one CUDA GPU in under 10 minutes, ending in one table:
#   1. a virtual environment that reuses an installed CUDA build of torch (--system-site-packages), else installs one;
#   2. the package and pytest; flash-attn only as a prebuilt wheel within FLASH_INSTALL_SECONDS (PyPI ships flash-attn
#      as source only, and building it takes far longer than this check), else SDPA, and the table says so;
#   3. the CUDA tests, tests/modeling/test_cuda_attention.py: bfloat16 and flash attention against float32 SDPA for
#      every model, and flash varlen packing against flash per sample;
#   4. benchmarks/gpu_check.py: pretraining MFU of each stage and embedding throughput (sessions/s).
#
# Usage, from anywhere:  bash benchmarks/gpu_check.sh
# Settings (environment): PYTHON (python3), VENV (.venv-gpu), TORCH_INDEX_URL (the CUDA 12.4 wheels of torch),
#   FLASH_INSTALL_SECONDS (120), WHEELS (a folder of wheels for a machine without network: pip installs only from it;
#   fill it elsewhere with `pip download -d WHEELS "transformers>=5.23,<5.25" nibabel ...` for the machine's Python).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv-gpu}
FLASH_INSTALL_SECONDS=${FLASH_INSTALL_SECONDS:-120}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu124}
SOURCE=()
if [ -n "${WHEELS:-}" ]; then SOURCE=(--no-index --find-links "$WHEELS"); fi
NOTES=()

step() { printf '\n== %s (%ds)\n' "$1" $((SECONDS - START)); }
has_cuda() { "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; }

step "virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then "$PYTHON" -m venv --system-site-packages "$VENV" || exit 1; fi
PY="$VENV/bin/python"
if ! has_cuda; then
    if [ -n "${WHEELS:-}" ]; then
        "$PY" -m pip install -q ${SOURCE[@]+"${SOURCE[@]}"} torch
    else
        "$PY" -m pip install -q torch --index-url "$TORCH_INDEX_URL"
    fi
    has_cuda || { echo "torch sees no CUDA device: this check needs one GPU." >&2; exit 1; }
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name())'

step "the package"
if ! "$PY" -m pip install -q --no-build-isolation ${SOURCE[@]+"${SOURCE[@]}"} -e . pytest; then
    # Without every dependency at hand (no network and a partial WHEELS), the GPU check needs only these.
    "$PY" -m pip install -q --no-build-isolation --no-deps -e .
    "$PY" -m pip install -q ${SOURCE[@]+"${SOURCE[@]}"} "transformers>=5.23,<5.25" nibabel pytest
fi
"$PY" -c 'import brainharmonix_hf' || { echo "brainharmonix_hf does not import: see the errors above." >&2; exit 1; }

step "flash-attn (prebuilt wheel only, at most ${FLASH_INSTALL_SECONDS}s)"
if "$PY" -c 'import flash_attn' 2>/dev/null; then
    FLASH="flash-attn already installed"
elif timeout "$FLASH_INSTALL_SECONDS" "$PY" -m pip install -q --only-binary=:all: ${SOURCE[@]+"${SOURCE[@]}"} flash-attn \
    && "$PY" -c 'import flash_attn' 2>/dev/null; then
    FLASH="flash-attn installed from a wheel"
else
    FLASH=""
fi
if [ -n "$FLASH" ]; then
    ATTENTION=flash_attention_2
    NOTES+=("$FLASH ($("$PY" -c 'import flash_attn; print(flash_attn.__version__)')): flash tests run, steps use it")
else
    ATTENTION=sdpa
    NOTES+=("flash-attn: no prebuilt wheel installed within ${FLASH_INSTALL_SECONDS}s, so SDPA instead; flash tests skipped")
fi
echo "attention: $ATTENTION"

step "CUDA tests"
# --noconftest: the suite's conftest fetches transformers' common tests from PyPI, which these tests do not use.
TESTS=$("$PY" -m pytest --noconftest -p no:cacheprovider -q -rs tests/modeling/test_cuda_attention.py 2>&1 \
    | tee /dev/stderr | tail -n 1)
NOTES+=("CUDA tests (tests/modeling/test_cuda_attention.py): $TESTS")

step "pretraining MFU and embedding throughput"
NOTE_FLAGS=()
for note in "${NOTES[@]}"; do NOTE_FLAGS+=(--note "$note"); done
"$PY" benchmarks/gpu_check.py --attn_implementation "$ATTENTION" ${NOTE_FLAGS[@]+"${NOTE_FLAGS[@]}"} \
    --note "total $((SECONDS - START)) s before the table's own runs; command: bash benchmarks/gpu_check.sh"
STATUS=$?
printf '\n(gpu_check.sh finished in %ds)\n' $((SECONDS - START))
exit $STATUS
