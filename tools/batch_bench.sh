#!/usr/bin/env bash
# hemo batch against hemo predict on the same 500 CT-ICH slices (BENCHMARKS.md):
#   bash tools/batch_bench.sh ../shared/data/ct-ich
# Prints wall seconds per run and the largest resident memory of one Ray worker (sampled every second).
set -eu
data=${1:-../shared/data/ct-ich}
work=$(mktemp -d)
mkdir -p "$work/in"
find -L "$data/Patients_CT" -name '*.jpg' ! -name '*_HGE_Seg.jpg' | sort | head -500 | cat -n | while read -r n f; do
  ln -s "$(realpath "$f")" "$work/in/$(printf %04d "$n").jpg"
done
echo "slices: $(ls "$work/in" | wc -l)"
start=$(date +%s.%N)
python -m hemo predict "$work/in" --csv "$work/predict.csv" 2>/dev/null
echo "predict: $(echo "$(date +%s.%N) - $start" | bc) s"
for workers in 1 2; do
  ( peak=0; while sleep 1; do
      rss=$(ps -eo rss,args | awk '/ray::SliceWorker|ray::MapWorker/ && !/awk/ {print $1}' | sort -n | tail -1)
      [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss && echo "$peak" > "$work/peak$workers"
    done ) & sampler=$!
  start=$(date +%s.%N)
  python -m hemo batch "$work/in" --out "$work/batch$workers.parquet" --workers "$workers" 2>/dev/null
  echo "batch --workers $workers: $(echo "$(date +%s.%N) - $start" | bc) s, worker peak RSS $(( $(cat "$work/peak$workers" 2>/dev/null || echo 0) / 1024 )) MiB"
  kill $sampler
done
rm -rf "$work"
