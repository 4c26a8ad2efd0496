#!/usr/bin/env bash
# The GPU path in one short run (a few minutes on one GPU; not a test, and not a timing to quote):
#   1. vae (mnist5k), gan and dali (grid25) train STEPS steps on CUDA in fp32 and bf16, and the VAE in fp16 (its
#      GradScaler): each must finish with finite losses;
#   2. a VAE run (deterministic=true), cut at half its steps and resumed, must end on the uninterrupted run's
#      weights, bitwise, in fp32 and in fp16 (the scaler's state comes back from the checkpoint);
#   3. mnist5k from a .npy file, streamed (JOINTKL_IN_MEMORY_GB below its size: batches read on the host and copied
#      to the GPU) and read into memory, must train to the same weights, bitwise;
#   4. the VAE benchmark (benchmarks/bench_vae_mnist5k.py) with short settings, hand loop vs jointkl.
# A summary table ends it; the exit status is 0 only if every check passed.
#
#   benchmarks/cuda_check.sh                 # on the first CUDA device; one line and exit 2 without one
#   benchmarks/cuda_check.sh --device cpu    # a dry run of the script itself: a few steps on the CPU
#
# PYTHON (default .venv/bin/python, else python3) runs jointkl from this checkout; OUT (default a new temporary
# folder) keeps the runs and logs.
set -u
cd "$(dirname "$0")/.."
DEVICE=cuda
[ "${1:-}" = "--device" ] && DEVICE="${2:-}"
case "$DEVICE" in
  cuda) STEPS=400 EPOCHS=2 ;;
  cpu) STEPS=6 EPOCHS=1 ;;
  *) echo "cuda_check: --device $DEVICE: use cuda (the default) or cpu (a dry run)" >&2; exit 2 ;;
esac
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
OUT=${OUT:-$(mktemp -d /tmp/cuda_check.XXXXXX)}
mkdir -p "$OUT"
if [ "$DEVICE" = cuda ]; then
  "$PY" - <<'EOF' || exit 2
import sys
try:
    import torch
except ImportError as e:
    sys.exit(f"cuda_check: {sys.executable} cannot import torch ({e}); set PYTHON to a Python with torch")
if not torch.cuda.is_available():
    sys.exit(f"cuda_check: no CUDA device (torch {torch.__version__}: torch.cuda.is_available() is False); run it on "
             "a machine with a GPU, or benchmarks/cuda_check.sh --device cpu for a dry run")
print(f"cuda_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"bf16 {torch.cuda.is_bf16_supported(including_emulation=False)}")
EOF
fi
echo "cuda_check: device=$DEVICE steps=$STEPS, runs and logs in $OUT"

RESULTS=()
FAILED=0
record() {   # name, status (PASS/FAIL), detail
  RESULTS+=("$(printf '%-26s %-5s %s' "$1" "$2" "$3")")
  [ "$2" = PASS ] || FAILED=1
  echo "  $1: $2 $3"
}

train() {   # run name, then jointkl train arguments ending in key=value options; its log is $OUT/<name>.log
  local name=$1; shift
  "$PY" -m jointkl train --out "$OUT/$name" --force "$@" device="$DEVICE" log_every=50 >"$OUT/$name.log" 2>&1
}

last_losses() {   # run name -> the last metrics.csv row's losses, or nothing when one is not finite
  "$PY" - "$OUT/$1/metrics.csv" <<'EOF'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
values = {k: float(v) for k, v in rows[-1].items() if k.endswith("loss") and v != ""}
if values and all(math.isfinite(v) for v in values.values()):
    print(f"step {rows[-1]['step']}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
EOF
}

same_weights() {   # run a, run b -> "equal" if their newest checkpoints hold bitwise-equal weights
  "$PY" - "$OUT/$1" "$OUT/$2" <<'EOF'
import sys
import torch
import jointkl as jk
a, b = (jk.load(r, device="cpu").state_dict() for r in sys.argv[1:])
diff = [k for k in a if not torch.equal(a[k], b[k])]
print("equal" if a.keys() == b.keys() and not diff else f"differ in {len(diff)} tensor(s), e.g. {diff[:2]}")
EOF
}

echo "1. training on $DEVICE"
PRECISIONS="fp32 bf16"
for spec in vae:mnist5k gan:grid25 dali:grid25; do
  model=${spec%%:*} data=${spec#*:}
  extra=""
  [ "$model" = vae ] && [ "$DEVICE" = cuda ] && extra=fp16
  for p in $PRECISIONS $extra; do
    name=$model-$p
    start=$SECONDS
    if train "$name" "$model" --data "$data" --steps "$STEPS" precision="$p"; then
      losses=$(last_losses "$name")
      if [ -n "$losses" ]; then record "$name" PASS "$losses ($((SECONDS - start)) s)"
      else record "$name" FAIL "a loss is not finite: $OUT/$name/metrics.csv"; fi
    else
      record "$name" FAIL "$(tail -n 1 "$OUT/$name.log")"
    fi
  done
done

echo "2. resume (deterministic=true)"
half=$((STEPS / 2))
resume_opts=(deterministic=true ckpt_every="$half")
for p in fp32 $([ "$DEVICE" = cuda ] && echo fp16); do
  if train "full-$p" vae --data mnist5k --steps "$STEPS" precision="$p" "${resume_opts[@]}" &&
     train "cut-$p" vae --data mnist5k --steps "$half" precision="$p" "${resume_opts[@]}" &&
     "$PY" -m jointkl train vae --out "$OUT/cut-$p" --resume --steps "$STEPS" >"$OUT/resume-$p.log" 2>&1; then
    verdict=$(same_weights "full-$p" "cut-$p")
    if [ "$verdict" = equal ]; then record "resume-$p" PASS "step $half -> $STEPS: the uninterrupted run's weights, bitwise"
    else record "resume-$p" FAIL "weights $verdict"; fi
  else
    record "resume-$p" FAIL "see $OUT/full-$p.log, cut-$p.log, resume-$p.log"
  fi
done

echo "3. streamed data"
"$PY" -c "
import sys, numpy as np
from jointkl.data import load
np.save(sys.argv[1], load('mnist5k').train.numpy())      # (4000, 1, 28, 28): 12.5 MB as float32
" "$OUT/mnist5k.npy"
if train memory vae --data "$OUT/mnist5k.npy" --steps "$STEPS" deterministic=true &&
   JOINTKL_IN_MEMORY_GB=0.005 train streamed vae --data "$OUT/mnist5k.npy" --steps "$STEPS" deterministic=true; then
  verdict=$(same_weights memory streamed)
  if [ "$verdict" = equal ]; then record streamed PASS "12.5 MB .npy over a 5 MiB limit: the in-memory run's weights"
  else record streamed FAIL "weights $verdict"; fi
else
  record streamed FAIL "see $OUT/memory.log, $OUT/streamed.log"
fi

echo "4. benchmarks/bench_vae_mnist5k.py --epochs $EPOCHS --rounds 1 --no-pythae --device $DEVICE"
if "$PY" benchmarks/bench_vae_mnist5k.py --epochs "$EPOCHS" --rounds 1 --no-pythae --device "$DEVICE" \
     >"$OUT/bench.log" 2>&1; then
  record bench_vae_mnist5k PASS "$(grep -m1 'ratio jointkl / hand, loop, wall' "$OUT/bench.log" | sed 's/  */ /g')"
  sed 's/^/    /' "$OUT/bench.log"
else
  record bench_vae_mnist5k FAIL "$(tail -n 1 "$OUT/bench.log")"
fi

echo
echo "cuda_check summary (device=$DEVICE, steps=$STEPS; runs and logs in $OUT)"
printf '%s\n' "${RESULTS[@]}"
if [ "$FAILED" = 0 ]; then echo "all ${#RESULTS[@]} checks passed"; else echo "some checks FAILED"; fi
exit "$FAILED"
