#!/usr/bin/env bash
# One accelerator check: a paper-sized active-learning round (simulate on a generated pool shaped
# like the paper's, 1 seed, 1 budget) per eval precision, and one cnn14 extraction with a randomly
# initialised checkpoint on generated DCASE-layout audio; prints the timings of every step.
#
#   bash benchmarks/device_check.sh                        # DEVICE=cuda, paper sizes
#   DEVICE=cpu N_TRAIN=300 N_VALID=80 N_TEST=80 D=64 MAX_EPOCHS=3 EXTRACT_MINUTES=1 \
#       bash benchmarks/device_check.sh                    # a quick run without a GPU
#
# Settings (environment): DEVICE (cuda | cpu | auto | cuda:N), PYTHON, WORK (kept when given,
# else a temporary folder removed at exit), N_TRAIN N_VALID N_TEST T D (pool shape; paper:
# 21414 4600 4600 32 2048), BUDGET (50), MAX_EPOCHS (5000: until the lr schedule stops),
# PRECISIONS ("fp32 bf16"), EXTRACT_MINUTES (minutes of generated audio; 10), BATCH (extraction
# clips per batch; 32), OUT (a JSON summary; optional).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVICE="${DEVICE:-cuda}"
PYTHON="${PYTHON:-python3}"
N_TRAIN="${N_TRAIN:-21414}"
N_VALID="${N_VALID:-4600}"
N_TEST="${N_TEST:-4600}"
T="${T:-32}"
D="${D:-2048}"
BUDGET="${BUDGET:-50}"
MAX_EPOCHS="${MAX_EPOCHS:-5000}"
PRECISIONS="${PRECISIONS:-fp32 bf16}"
EXTRACT_MINUTES="${EXTRACT_MINUTES:-10}"
BATCH="${BATCH:-32}"
OUT="${OUT:-}"
if [[ -n "${WORK:-}" ]]; then
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d -t device-check-XXXXXX)"
    trap 'rm -rf "$WORK"' EXIT
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
IML=("$PYTHON" -m iml_tui.cli)
SUMMARY="$WORK/summary.tsv"
: > "$SUMMARY"

now() { date +%s.%N; }
# step NAME COMMAND...: run it (its stdout dropped, its stderr shown), print and record its wall
# seconds
step() {
    local name="$1" t0 t1 secs
    shift
    t0="$(now)"
    "$@" > /dev/null
    t1="$(now)"
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
    printf '%s\t%s\n' "$name" "$secs" >> "$SUMMARY"
    printf '== %-28s %8s s\n' "$name" "$secs"
}

echo "== device check: DEVICE=$DEVICE pool ${N_TRAIN}/${N_VALID}/${N_TEST} x T=$T x D=$D," \
     "budget $BUDGET, max epochs $MAX_EPOCHS, work $WORK"
"$PYTHON" - "$DEVICE" <<'EOF'
import sys, torch
from iml_tui.devices import resolve_device
from iml_tui.errors import UserError
try:
    dev = resolve_device(sys.argv[1])
except UserError as err:
    sys.exit(f"device check: {err}")
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
print(f"== torch {torch.__version__}, device {dev} ({name}), cuda available "
      f"{torch.cuda.is_available()}, {torch.get_num_threads()} CPU threads")
EOF

# --- one paper-sized training round per eval precision --------------------------------------
step "pool synth" "${IML[@]}" pool synth --out "$WORK/pool" --n-train "$N_TRAIN" \
    --n-valid "$N_VALID" --n-test "$N_TEST" --t "$T" --d "$D" --seed 0
for prec in $PRECISIONS; do
    step "simulate round ($prec)" "${IML[@]}" simulate --task bioacoustic \
        --pool-dir "$WORK/pool" --strategy rand --start cold --budgets "$BUDGET" --seeds 1 \
        --device "$DEVICE" --eval-precision "$prec" --max-epochs "$MAX_EPOCHS" --threads 0 \
        --out "$WORK/sim_$prec"
    "$PYTHON" - "$WORK/sim_$prec/runs/rand_cold_seed1/rounds.csv" "$prec" <<'EOF'
import csv, sys
row = list(csv.DictReader(open(sys.argv[1])))[-1]
epochs, secs = int(row["epochs"]), float(row["train_seconds"])
print(f"   {sys.argv[2]}: train {secs:.2f} s, {epochs} epochs ({secs / max(1, epochs):.3f} s/epoch),"
      f" best epoch {row['best_epoch']}, test mAP {100 * float(row['test_map']):.2f}")
EOF
done

# --- one cnn14 extraction with random weights ------------------------------------------------
"$PYTHON" - "$WORK" "$EXTRACT_MINUTES" <<'EOF'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from bench_extract import make_dcase, make_weights
work = Path(sys.argv[1])
secs = make_dcase(work / "dcase_src", float(sys.argv[2]))
make_weights("cnn14", work)
print(f"== generated {secs / 60:.1f} min of audio and a random cnn14 checkpoint")
EOF
step "prepare dcase (al)" "${IML[@]}" prepare dcase --source "$WORK/dcase_src" \
    --out "$WORK/prepared" --division al
step "extract cnn14 ($DEVICE)" "${IML[@]}" extract --input "$WORK/prepared/al" \
    --out "$WORK/features" --encoder cnn14 --checkpoint "$WORK/cnn14_random.pt" \
    --device "$DEVICE" --batch-size "$BATCH"
"$PYTHON" - "$WORK/features" "$SUMMARY" "$DEVICE" "$OUT" <<'EOF'
import json, sys
from pathlib import Path
from iml_tui.data.store import PoolStore
feats, summary, device, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
clips = {p.stem: PoolStore(p).n for p in sorted(feats.glob("*.h5"))}
steps = dict(line.rstrip("\n").split("\t") for line in open(summary))
total = sum(clips.values())
secs = float(steps[f"extract cnn14 ({device})"])
print(f"   extract: {total} clips of 10 s ({clips}), {total / secs:.1f} clips/s, "
      f"real-time factor {10 * total / secs:.0f}")
print("== summary (s):", json.dumps(steps))
if out:
    Path(out).write_text(json.dumps({"device": device, "steps_seconds": steps,
                                     "extract_clips": clips}, indent=2) + "\n")
EOF
