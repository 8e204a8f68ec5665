#!/usr/bin/env bash
# Beauty end to end on one GPU: pre-train, fine-tune, evaluate; prints seconds per stage.
#
#   benchmarks/gpu.sh [PRETRAIN_EPOCHS (default 5)] [FINETUNE_EPOCHS (default 20)]
#
# Env: PYTHON (default .venv/bin/python; its torch must be a CUDA build), S3REC_DATA_DIR (Beauty.txt and
# Beauty_item2attributes.json; default shared/data/s3rec or ../shared/data/s3rec), OUT (default runs/gpu-beauty),
# DEVICE (default cuda). Training runs under bfloat16 autocast, evaluation in float32 (see s3rec/device.py).
# Per-epoch seconds come from the run's own logs; wall seconds per command include loading Beauty.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PT_EPOCHS=${1:-5}
FT_EPOCHS=${2:-20}
OUT=${OUT:-runs/gpu-beauty}
DEVICE=${DEVICE:-cuda}
if [ -z "${S3REC_DATA_DIR:-}" ]; then
  for d in shared/data/s3rec ../shared/data/s3rec; do [ -f "$d/Beauty.txt" ] && S3REC_DATA_DIR=$d && break; done
fi
export S3REC_DATA_DIR=${S3REC_DATA_DIR:?set S3REC_DATA_DIR to the folder holding Beauty.txt}

"$PY" - "$DEVICE" <<'PYEOF'
import sys, torch
from s3rec.device import resolve_device
from s3rec.errors import S3RecError
try:
    dev = resolve_device(sys.argv[1])
except S3RecError as e:
    sys.exit(f"gpu.sh: error: {e}")
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
print(f"torch {torch.__version__}, device {dev} ({name}), bf16 supported: {dev.type == 'cuda' and torch.cuda.is_bf16_supported()}")
PYEOF

rm -rf "$OUT"
stage() {  # stage NAME COMMAND...: run it, print its wall seconds
  local name=$1; shift
  local t0=$(date +%s%N)
  "$@"
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%-10s wall %d.%03d s (with loading)\n' "$name" $((ms / 1000)) $((ms % 1000))
}
stage pretrain "$PY" -m s3rec pretrain --dataset beauty --device "$DEVICE" --pretrain-epochs "$PT_EPOCHS" --out "$OUT/pretrain" --quiet
stage finetune "$PY" -m s3rec finetune --dataset beauty --device "$DEVICE" --init "$OUT/pretrain/pretrain-epoch$PT_EPOCHS.pt" \
  --epochs "$FT_EPOCHS" --patience "$FT_EPOCHS" --out "$OUT/finetune" --quiet

"$PY" - "$OUT" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
pt = [json.loads(l) for l in (out / "pretrain/pretrain_log.jsonl").read_text().splitlines()]
ft = [json.loads(l) for l in (out / "finetune/finetune_log.jsonl").read_text().splitlines()]
m = json.loads((out / "finetune/metrics.json").read_text())
med = lambda xs: statistics.median(xs)
print(f"pre-training   {med([r['seconds'] for r in pt]):8.2f} s/epoch (median of {len(pt)}; first {pt[0]['seconds']:.2f} s)")
print(f"fine-tuning    {med([r['seconds_train'] for r in ft]):8.2f} s/epoch train, "
      f"{med([r['seconds_valid'] for r in ft]):.2f} s full-ranking validation of all users (median of {len(ft)})")
print(f"evaluation     {m['seconds']['evaluate']:8.2f} s (valid + test, full ranking, all 22,363 users)")
print(f"test NDCG@10   {m['test']['full']['NDCG@10']:.4f}  HR@10 {m['test']['full']['HR@10']:.4f}")
PYEOF
