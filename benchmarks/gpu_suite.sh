#!/usr/bin/env bash
# Issue #16's GPU checks as one prepared script: the GPU tests (pytest -m gpu), then the tagger
# benchmark (float32 and bfloat16; speed, fraction of the measured matrix-product peak, bfloat16 tag
# agreement, peak GPU memory per batch size) on full-size random Tag2Text and RAM models, the dense
# segmentation benchmark (float32 and bfloat16 against one window per pass), the grounded one
# (Grounding DINO-T and SAM ViT-B, random weights, against the demos' settings), and last
# Tag2Text with a compiled bfloat16 image encoder (results under $OUT/compiled). Results,
# logs and a summary (suite.json) go to $OUT. Needs torch with CUDA, timm, transformers, safetensors,
# pytest and the repository (tests/data holds the tag lists); no network, no FiftyOne.
#
#   OUT=/some/folder bash benchmarks/gpu_suite.sh                  # on a GPU machine, ~5 minutes
#   GPU_SUITE_SMOKE=1 OUT=/tmp/x bash benchmarks/gpu_suite.sh      # CPU, tiny fixture: checks it runs
#
# Exits non-zero when any step failed; each step's output is in $OUT/<step>.log.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT=${OUT:?set OUT to the folder for the results}
PYTHON=${PYTHON:-python}
WORK=${WORK:-$(mktemp -d)}  # random checkpoints (1.5 GB Tag2Text, 3 GB RAM) and test images
mkdir -p "$OUT"
: > "$OUT/steps.jsonl"
failed=0

step() {  # step NAME COMMAND...: runs it, logs it, records its exit status and duration
    local name=$1 start=$SECONDS rc=0
    shift
    "$@" > "$OUT/$name.log" 2>&1 || rc=$?
    printf '{"step": "%s", "rc": %d, "seconds": %d}\n' "$name" "$rc" $((SECONDS - start)) \
        >> "$OUT/steps.jsonl"
    echo "$name: exit $rc, $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || failed=1
}

bench() {
    "$PYTHON" benchmarks/bench_tagger.py --work-dir "$WORK" --out "$OUT" "$@"
}

grounded_smoke() {  # the tiny random Grounding DINO and SAM of the tests, no dataset writes
    "$PYTHON" - "$WORK" <<'EOF' &&
import sys
from pathlib import Path

sys.path.insert(0, "tests")
from tiny_grounded import save_tiny_grounding_dino, save_tiny_sam

work = Path(sys.argv[1])
save_tiny_grounding_dino(work / "gdino", Path("tests/data/reference/bert-base-uncased-vocab.txt"))
save_tiny_sam(work / "sam")
EOF
    "$PYTHON" benchmarks/bench_grounded.py --device cpu --detector "$WORK/gdino" \
        --segmenter "$WORK/sam" --images 2 --size 64 48 --boxes 2 --repeats 1 --no-writing \
        --out "$OUT"
}

if [ "${GPU_SUITE_SMOKE:-0}" = 1 ]; then
    step bench_tagger_smoke bench --model-dir tests/data/fixtures/tag2text-tiny --device cpu \
        --images 2 --repeats 1 --quality-images 3 --sweep 1 2 --threads 1 --from-paths bfloat16 \
        --peak-repeats 1
    step bench_dense_smoke "$PYTHON" benchmarks/bench_dense.py --device cpu \
        --clip tests/data/fixtures/tagalign-tiny/clip --images 1 --repeats 1 --threads 1 --out "$OUT"
    step bench_grounded_smoke grounded_smoke
else
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
    # -rs lists skips: a GPU test skipped here is not a pass. One process (no -n 2 from
    # pyproject.toml): the GPU tests share one device, and pytest-xdist need not be installed.
    step gpu_tests "$PYTHON" -m pytest -o addopts= -q -rs -p no:cacheprovider -m gpu \
        tests/engines tests/models --junitxml "$OUT/gpu-tests.xml"
    # "from paths": Tagger.predict on the JPEG files, loading in threads beside the GPU.
    step bench_tag2text bench --model tag2text-swin-14m --device cuda --batch-size 64 \
        --images 128 --repeats 3 --quality-images 32 --sweep 1 16 64 128 --from-paths bfloat16
    step bench_ram bench --model ram-swin-large-14m --device cuda --batch-size 64 \
        --images 128 --repeats 3 --quality-images 32 --sweep 1 64
    # TagAlign / CLIP-Surgery segmentation against one window per pass in float32 (full-size
    # random CLIP ViT-B/16; no FiftyOne needed, unlike the grounded and pipeline benchmarks).
    step bench_dense "$PYTHON" benchmarks/bench_dense.py --device cuda --images 16 --batch-size 16 \
        --repeats 3 --out "$OUT"
    # Grounded segmentation (full-size random models; no FiftyOne here, so no writing stage).
    step bench_grounded "$PYTHON" benchmarks/bench_grounded.py --device cuda \
        --dtypes float32 bfloat16 --images 16 --batch-size 8 --boxes 8 --repeats 3 --out "$OUT"
    # Last and apart (its own JSON under compiled/): torch.compile needs Triton on a GPU, and a
    # failure here must not cost the figures above.
    step bench_tag2text_compiled bench --model tag2text-swin-14m --device cuda --batch-size 64 \
        --dtypes float32 --compiled-dtypes bfloat16 --images 128 --repeats 3 --quality-images 32 \
        --sweep --out "$OUT/compiled"
fi

"$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
results = sorted(str(p.relative_to(out)) for p in out.rglob("bench_*.json"))
(out / "suite.json").write_text(json.dumps({"steps": steps, "results": results}, indent=1))
EOF
exit "$failed"
