#!/usr/bin/env bash
# Sweep benchmark: times `blis sweep examples/sweeps/bench-500.yaml` (500 candidates of a
# 10,000-request, 8-replica scenario) RUNS times (default 3) and prints the median wall time; then
# checks that 4 shard processes merged give exactly the single run's ranking.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BIN=${BIN:-./target/release/blis}
FILE=${FILE:-examples/sweeps/bench-500.yaml}
OUT=${OUT:-target/bench-sweep}
mkdir -p "$OUT"
times=()
for i in $(seq "$RUNS"); do
  TIMEFORMAT="%R %U %S"
  t=$( { time "$BIN" sweep --no-progress --output json "$FILE" > "$OUT/single.json" 2>/dev/null; } 2>&1 )
  read -r real user sys <<< "$t"
  echo "run $i: $real s wall, $(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}') s CPU"
  times+=("$real")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median wall time of %d runs: %.2f s (target < 6 s on 2 cores)\n", NR, a[int((NR+1)/2)]}'
start=$(date +%s.%N)
for i in 0 1 2 3; do
  "$BIN" sweep --no-progress --threads 1 --shard "$i/4" "$FILE" > "$OUT/shard-$i.json" &
done
wait
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN {printf "4 shard processes: %.2f s wall\n", e - s}'
"$BIN" sweep --output json "$FILE" --merge "$OUT"/shard-{0,1,2,3}.json > "$OUT/merged.json"
if cmp -s "$OUT/single.json" "$OUT/merged.json"; then
  echo "sharded ranking: identical to the single run"
else
  echo "sharded ranking differs from the single run ($OUT/single.json vs $OUT/merged.json)" >&2
  exit 1
fi
