#!/usr/bin/env bash
# Every check that needs a GPU, in one call of a lent GPU machine (about 8 minutes on an H200):
# the CUDA tests (`pytest -m cuda`), training throughput with the model FLOP rate, the compiled
# step, inference and search, re-ranking and evaluation on the GPU, DDP over nccl under torchrun
# against one process, and the demo. Checks run in order of value, each under a time limit
# taken from one overall budget, so a slow one cannot starve the rest of the call.
#
#   bash benchmarks/gpu_check.sh                       # on the GPU machine, from the repo root
#   DEVICE=cpu SMOKE=1 bash benchmarks/gpu_check.sh    # the same wiring on a CPU, tiny sizes
#
# Needs only what the machine's Python has (torch, torchvision, numpy, pillow, pyyaml, tqdm,
# pytest): bdbnet runs from src/ without being installed. Writes the whole log, the benchmark
# sections (results.md) and a summary under $OUT (a temporary folder if unset); prints each
# check's tail and, last, the summary. Without SMOKE the benchmarks also rewrite their
# sections of benchmarks/results.md here (copy the new ones into the repository's).
set -uo pipefail

DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-0}
BUDGET=${BUDGET:-540}  # seconds for all checks together
PY=${PY:-python3}
OUT=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$OUT/gpu_check.log"
SUMMARY="$OUT/summary.txt"
: >"$LOG"
: >"$SUMMARY"
START=$SECONDS

check() { # NAME LIMIT_S COMMAND...: run under min(LIMIT_S, what is left of the budget)
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET - (SECONDS - START)))
  ((limit > left)) && limit=$left
  if ((limit < 20)); then
    printf '%-16s skipped: budget spent\n' "$name" | tee -a "$SUMMARY"
    return
  fi
  local t0=$SECONDS
  {
    echo
    echo "=== $name (limit ${limit}s): $*"
  } >>"$LOG"
  # through bash, so that the functions below run like commands; timeout ends the whole group
  timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  cat "$WORK/$name.log" >>"$LOG"
  local verdict="ok"
  ((rc == 124 || rc == 137)) && verdict="TIMED OUT"
  ((rc != 0 && rc != 124 && rc != 137)) && verdict="FAILED"
  printf '%-16s %-9s rc=%-3s %4ss\n' "$name" "$verdict" "$rc" $((SECONDS - t0)) | tee -a "$SUMMARY"
  echo "--- $name, last lines:"
  tail -n "${TAIL:-14}" "$WORK/$name.log"
}

write=()
if ((SMOKE)); then
  write=(--no-write)
  train_sizes=(--identities 2 --height 64 --width 32 --steps 1 --warmup 1 --data-steps 2
    --workers 1)
  train_variants=(fp32 preset)
  train_pipelines=(pil tensor)
  compile_variants=()
  inference=(--batches 1 --sizes 2000 --queries 5 --variants fp32 auto)
  evaluation=(--quick --no-dense --no-msmt-rerank --repeats 1)
  epochs=1
  demo=(--epochs 1)
else
  train_sizes=(--identities 32 --steps 20 --warmup 5 --data-steps 40 --workers 12)
  train_variants=(official fp32 fp32+cl bf16+cl preset)
  train_pipelines=(pil tensor+device)
  compile_variants=(preset+compile)
  inference=(--batches 20 --slow-batches 20)
  evaluation=(--no-dense --repeats 3)
  epochs=4
  demo=()  # the demo's own schedule, comparable with its CPU rows
fi
accelerator=()
[[ $DEVICE == cuda ]] && accelerator=(--device cuda)

machine_info() {
  nvidia-smi -L 2>/dev/null || echo "nvidia-smi: none"
  "$PY" - <<'EOF'
import os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(p.name, f"{p.total_memory / 2**30:.0f} GiB,", p.multi_processor_count, "SMs,",
          "bf16:", torch.cuda.is_bf16_supported(), "| host cores:", os.cpu_count())
else:
    print("no CUDA device visible")
EOF
}

ddp_against_one_process() {
  # One process under torchrun (nccl on a GPU, gloo on a CPU) with 2 replicas and the global
  # loss scope against the same run without torchrun: the logged losses must agree.
  local common=(--dataset synthetic --root "$WORK/synth" --preset synthetic-demo
    "train.device=$DEVICE" "optim.epochs=$epochs" train.deterministic=true
    train.progress=false train.tensorboard=false train.replicas=2 train.eval_every=0)
  "$PY" -m bdbnet synth --root "$WORK/synth" --train-ids 16 --test-ids 8 --seed 0 >/dev/null &&
    "$PY" -m bdbnet train "${common[@]}" --output "$WORK/single" &&
    "$PY" -m torch.distributed.run --nproc-per-node 1 -m bdbnet train "${common[@]}" \
      --output "$WORK/ddp" &&
    "$PY" - "$WORK/single/metrics.jsonl" "$WORK/ddp/metrics.jsonl" <<'EOF'
import json, sys
runs = [[json.loads(x)["total"] for x in open(p) if json.loads(x)["kind"] == "train"]
        for p in sys.argv[1:]]
assert len(runs[0]) == len(runs[1]) > 0, [len(r) for r in runs]
worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(*runs))
print(f"{len(runs[0])} logged losses; largest relative difference {worst:.2e}")
assert worst < 1e-3, "DDP and the single process disagree"
EOF
}

export PY DEVICE WORK epochs
export -f machine_info ddp_against_one_process
check info 60 machine_info  # a fresh machine loads the CUDA libraries cold
check train 240 "$PY" benchmarks/bench_train.py "${train_sizes[@]}" --device "$DEVICE" \
  --variants "${train_variants[@]}" --pipelines "${train_pipelines[@]}" "${write[@]}"
if [[ $DEVICE == cuda ]]; then
  check cuda-tests 240 "$PY" -m pytest -p no:cacheprovider -o addopts= -q -m cuda -rs tests
fi
check ddp 150 ddp_against_one_process
check evaluation 200 "$PY" benchmarks/bench_evaluation.py "${evaluation[@]}" \
  "${accelerator[@]}" "${write[@]}"
check inference 100 "$PY" benchmarks/bench_inference.py "${inference[@]}" --device "$DEVICE" \
  "${write[@]}"
if ((${#compile_variants[@]})); then
  check compile 200 "$PY" benchmarks/bench_train.py "${train_sizes[@]}" --device "$DEVICE" \
    --variants "${compile_variants[@]}" --pipelines tensor+device --no-write
fi
check demo 150 "$PY" -m bdbnet demo --output "$WORK/demo" --device "$DEVICE" --quiet "${demo[@]}"

cp benchmarks/results.md "$OUT/results.md"
echo
echo "=== summary ($((SECONDS - START)) s; log: $LOG)"
cat "$SUMMARY"
rm -rf "$WORK"
! grep -q -E "FAILED|TIMED OUT" "$SUMMARY"
