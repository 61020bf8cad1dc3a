#!/usr/bin/env bash
# One prepared run for a GPU machine (about 10 minutes): for shared Games and Scientific, the
# Multi-Head VQ-VAE tokenizer (cached after the first run), then the paper-size LLaDA-Rec
# (d=256, 4 layers, 4 heads, M=4, K=256) trained for MINUTES minutes under bf16 autocast,
# then the best checkpoint tested at beam 50 on EVAL_USERS test users; prints training
# samples/s, test users/s and the metrics; then benchmarks/speed.py on the device.
#
#   benchmarks/gpu.sh                       # on the GPU machine, from the repository root
#   ACCELERATOR=cpu MINUTES=0.2 EVAL_USERS=16 DATASETS=scientific D_MODEL=32 LAYERS=1 \
#     BEAM=10 SPEED_ARGS="--steps 2 --users 4 --d-model 32 --layers 1" benchmarks/gpu.sh   # a CPU check
#
# Settings (environment): DATA_ROOT (/work/shared/data), DATASETS ("games scientific"),
# MINUTES (2.5 per dataset), EVAL_USERS (2000), ACCELERATOR (gpu), PRECISION (bf16-mixed),
# BATCH (1024), D_MODEL (256), LAYERS (4), HEADS (4), BEAM (50), OUT (runs/gpu),
# SPEED_ARGS (extra speed.py arguments; SKIP_SPEED=1 skips it), COMPARE_ARGS (extra
# compare.py arguments, e.g. a small --tokenizer-base for a CPU check).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv ] && source .venv/bin/activate

DATA_ROOT=${DATA_ROOT:-/work/shared/data}
DATASETS=${DATASETS:-games scientific}
MINUTES=${MINUTES:-2.5}
EVAL_USERS=${EVAL_USERS:-2000}
ACCELERATOR=${ACCELERATOR:-gpu}
PRECISION=${PRECISION:-bf16-mixed}
BATCH=${BATCH:-1024}
D_MODEL=${D_MODEL:-256}
LAYERS=${LAYERS:-4}
HEADS=${HEADS:-4}
BEAM=${BEAM:-50}
OUT=${OUT:-runs/gpu}
DEVICE=$([ "$ACCELERATOR" = cpu ] && echo cpu || echo cuda)

for dataset in $DATASETS; do
  case $dataset in
    games) path=$DATA_ROOT/amazon18-games ;;
    scientific) path=$DATA_ROOT/amazon18-scientific ;;
    *) echo "unknown dataset $dataset (games or scientific)" >&2; exit 2 ;;
  esac
  echo "== $dataset: train $MINUTES min ($PRECISION, $ACCELERATOR), test $EVAL_USERS users at beam $BEAM"
  # max_epochs only shapes the LR schedule; the time cap ends training
  python benchmarks/compare.py --format lcrec --path "$path" --models llada-rec \
    --d-model "$D_MODEL" --layers "$LAYERS" --heads "$HEADS" --batch-size "$BATCH" --eval-batch-size 512 \
    --max-epochs 30 --max-minutes "$MINUTES" --eval-users "$EVAL_USERS" --beam-size "$BEAM" --val-beam-size 1 \
    --accelerator "$ACCELERATOR" --precision "$PRECISION" --out "$OUT/$dataset" ${COMPARE_ARGS:-}
  python - "$OUT/$dataset/results.json" "$BATCH" "$EVAL_USERS" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))
row, batch, users = results["rows"][0], int(sys.argv[2]), int(sys.argv[3])
train_s = row["train_s"] - row.get("val_s", 0.0)
metrics = {k.split("/")[1]: round(v, 4) for k, v in row["metrics"].items() if k.startswith("test/")}
print(f"{sys.argv[1]}: {row['steps']} steps, {row['epochs']:.1f} epochs; "
      f"train {row['steps'] * batch / max(train_s, 1e-9):.0f} samples/s (validation excluded), "
      f"test {users / row['test_s']:.1f} users/s at beam {results['settings']['beam_size']}; {metrics}")
EOF
done

if [ "${SKIP_SPEED:-0}" != 1 ]; then
  echo "== speed.py on $DEVICE ($PRECISION)"
  python benchmarks/speed.py --device "$DEVICE" --precision "$PRECISION" --json "$OUT/speed.json" ${SPEED_ARGS:-}
fi
