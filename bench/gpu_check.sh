#!/usr/bin/env bash
# The GPU check for `wdb score` (issue 17): bench/score_bench.py for ViT-B-32 and ViT-L-14 (and both
# in one pass), GPU utilisation sampled by nvidia-smi, results as JSON + logs.
#
#   bench/gpu_check.sh prepare   # here (PyPI reachable): wheels the device image lacks + the COCO
#                                # photos, into bench/out/gpucheck (ignored by git, ~25 MB)
#   bench/gpu_check.sh           # on the device (or anywhere): installs the carried wheels when
#                                # open_clip is missing, runs the benches; without a CUDA GPU it says
#                                # so and runs a short CPU version instead
#
# Device call (one run, ~4-6 min on an H200 (not measured: no GPU was lent when it was written);
# timeout_s 540 leaves room for the start):
#   run(command="bash bench/gpu_check.sh", carry=["bench/out/gpucheck"], timeout_s=540)
# Results land in $OUT (or bench/out/gpucheck/results): gpu-*.json, gpu-*.log, nvidia-smi.csv.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
G=$ROOT/bench/out/gpucheck
PY=${PYTHON:-python3}
MODE=${1:-run}

if [ "$MODE" = prepare ]; then
    set -e
    PIP=${PIP:-$ROOT/../main/.venv/bin/pip}
    [ -x "$PIP" ] || PIP="$PY -m pip"
    mkdir -p "$G/whl"
    # the device image has torch, torchvision, pillow, timm, regex, numpy, matplotlib, tqdm, click;
    # not these (Python 3.12 there)
    $PIP download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$G/whl" open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 selectolax==1.0.2 zlib-ng==1.1.0 \
        brotli==1.2.1 imagehash==4.3.2 pywavelets simplejpeg==1.9.0
    COCO_SRC=${COCO_SRC:-$ROOT/../shared/corpus/coco-mini}
    mkdir -p "$G/coco-mini/annotations"
    cp -r "$COCO_SRC/val2017" "$G/coco-mini/"
    cp "$COCO_SRC/annotations/captions_val2017.json" "$G/coco-mini/annotations/"
    du -sh "$G"
    exit 0
fi

RES=${OUT:-$G/results}
mkdir -p "$RES"
export PYTHONUNBUFFERED=1
if ! $PY -c "import open_clip, selectolax, zlib_ng, simplejpeg" 2>/dev/null; then
    if ls "$G"/whl/*.whl >/dev/null 2>&1; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$G"/whl/*.whl || { echo "gpu_check: installing the carried wheels failed"; exit 3; }
        export PYTHONPATH=/tmp/site
    else
        echo "gpu_check: open_clip/selectolax missing and no wheels in $G/whl: run 'bench/gpu_check.sh prepare' first"
        exit 3
    fi
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
COCO=${COCO:-$G/coco-mini}
[ -d "$COCO/val2017" ] || COCO=$ROOT/../shared/corpus/coco-mini
[ -d "$COCO/val2017" ] || { echo "gpu_check: no COCO photos (run prepare, or set COCO=)"; exit 3; }

GPU=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 \
        && $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    GPU=1
fi
$PY -c "import torch, torchvision, open_clip; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'open_clip', open_clip.__version__)"
BENCH="$PY $ROOT/bench/score_bench.py --coco $COCO --out $G/work"
# each bench under its own timeout; a timed-out or failed one is said so (the others still run)
bench() {  # bench SECONDS NAME ARGS...
    local secs=$1 name=$2
    shift 2
    timeout "$secs" $BENCH "$@" --json "$RES/$name.json" 2>&1 | grep --line-buffered -v "No pretrained weights" \
        | tee "$RES/$name.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || echo "gpu_check: $name exited $rc$([ "$rc" = 124 ] && echo " (timed out after ${secs} s)")"
}
if [ $GPU = 1 ]; then
    nvidia-smi -L
    CORES=$(nproc)
    W=$(( CORES > 2 ? CORES - 2 : 1 ))
    W=$(( W > 12 ? 12 : W ))
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 200 > "$RES/nvidia-smi.csv" &
    SMI=$!
    ARGS="--device cuda --images ${IMAGES:-4096} --batch-size 256 --workers $W --input-workers $W --input-images 790"
    bench 200 gpu-b32 $ARGS --model ViT-B-32 --decode auto --decode draft
    bench 200 gpu-l14 $ARGS --model ViT-L-14
    bench 150 gpu-b32-l14 $ARGS --model ViT-B-32 --model ViT-L-14
    kill $SMI 2>/dev/null
    wait $SMI 2>/dev/null
else
    echo "gpu_check: no CUDA GPU visible (nvidia-smi / torch.cuda): running the short CPU version instead"
    # short: on a shared 2-core machine the bare B/32 forward ran 3-15 images/s
    ARGS="--device cpu --images ${IMAGES:-32} --batch-size 32 --score-runs 1"
    bench 300 cpu-b32 $ARGS --input-images 237 --model ViT-B-32
    # ViT-L-14 runs ~0.5 images/s on a CPU: its load, input side and a few pairs only
    bench 280 cpu-l14 $ARGS --input-images 79 --compare-images 8 --model ViT-L-14 --skip-forward
fi
echo "gpu_check: results in $RES"
