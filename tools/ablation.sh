#!/usr/bin/env bash
# Issue 7's ablation, one change per row, every row under the same fixed-epoch out-of-fold protocol
# (patient-grouped 5-fold CV, no early stopping on held-out patients), then calibration, the study
# scores and the operating points from each row's out-of-fold predictions:
#   bash tools/ablation.sh ctich.npz runs/ablation [EPOCHS] [EXTRA]
# EPOCHS (default 4) is the fine-tuning budget per fold; EXTRA is added to every row (e.g.
# "--freeze-below block4a" on a CPU, where it halves the backward pass). A finished fold is skipped
# on a re-run, so the script resumes where it stopped. Rows run one after another; on a GPU with
# room for several, run the rows' lines in parallel instead.
set -eu
data=${1:?a .npz from 'python -m hemo cache'}
out=${2:-runs/ablation}
epochs=${3:-4}
extra=${4:-}
base="--folds 5 --epochs $epochs --warmup-epochs 1 --schedule cosine --lr 3e-4 $extra"
declare -A rows=(
  [base]=""
  [masks]="--mask-weight 1"
  [robust]="--robust"
  [masks-robust]="--mask-weight 1 --robust"
)
for row in base masks robust masks-robust; do
  # shellcheck disable=SC2086
  python -m hemo cv "$data" $base ${rows[$row]} --out "$out/$row" --json "$out/$row.json"
  python -m hemo calibrate "$out/$row" --json "$out/$row-calibrate.json"
done
