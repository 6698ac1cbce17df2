#!/usr/bin/env bash
# Rebuild every file of demo_data/ and models/ from seeds (see demo_data/README.md).
#
# Needs the Debian package espeak-ng and the `rebuild` extra (pyroomacoustics):
#   apt-get install espeak-ng && .venv/bin/pip install -e '.[rebuild]'
# The same seeds give the same bytes with the same espeak-ng, libsndfile and torch builds
# (the encoders train on the CPU); `sha256sum -c demo_data/SHA256SUMS` checks them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
IML=${IML_TUI:-.venv/bin/iml-tui}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/iml-tui-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 1. The corpora (audio + labels).
$PY -m demo_build.birds --out demo_data/birds --seed 2025
$PY -m demo_build.lid --out demo_data/lid --seed 2025
$PY -m demo_build.vtd_sessions --out demo_data/vtd --seed 2025

# 2. The frame-level bird encoder: CNN14 layout, narrow, trained from scratch by the SPEC A.5
#    recipe on the SL division (the Training_Set recordings; the demo pool is the Validation_Set).
$IML prepare dcase --source demo_data/birds --out "$WORK/birds" --division sl
$IML encoder train --data "$WORK/birds" --out "$WORK/bird-encoder" --from-scratch \
    --widths 8,16,32,64,128,128 --hidden 128 --epochs 15 --steps-per-epoch 20 --batch-size 16 \
    --lr 1e-3 --seed 1 --device cpu
cp "$WORK/bird-encoder/encoder_best.pt" models/demo-birds-cnn14.pt

# 3. The utterance-level language encoder: a small ECAPA-TDNN on the encoder corpus (15 languages,
#    sentences and voices the LID pools do not have).
$IML prepare lid --source demo_data/lid/encoder --out "$WORK/lid-encoder"
$IML encoder train-utterance --data "$WORK/lid-encoder" --out "$WORK/lid-ecapa" --arch ecapa \
    --channels 256 --embedding-dim 128 --epochs 12 --seed 0 --device cpu
rm -rf models/demo-lid-ecapa
mkdir -p models/demo-lid-ecapa
for f in hyperparams.yaml embedding_model.ckpt classifier.ckpt label_encoder.ckpt \
    label_encoder.txt train_log.json; do
    cp "$WORK/lid-ecapa/$f" models/demo-lid-ecapa/
done

# 4. Checksums of everything committed.
find demo_data models -type f ! -path '*/.cache/*' ! -name SHA256SUMS ! -name '*.md' \
    ! -name rebuild.sh -print0 | sort -z | xargs -0 sha256sum > demo_data/SHA256SUMS
echo "rebuilt demo_data/ and models/; pools are built on first use (iml-tui demo)"
