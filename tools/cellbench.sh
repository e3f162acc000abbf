#!/bin/sh
# tools/cellbench.sh [ROUNDS] [BEFORE]: the cells against each other on a machine whose speed
# drifts from one minute to the next. Each round runs `fnn bench` once per cell (every cell that
# fnn train --help lists, and BEFORE's cell CELLBENCH_BEFORE_CELL, e.g. an older build), in an
# order that rotates from round to round, at every "H L B" of CELLBENCH_SHAPES; then per shape the
# median GFLOP/s of each and its ratio to the first cell's (elman) median. GFLOP/s are those `fnn bench` prints (model_flops per
# wall second), so the ratios compare the fractions of one kernel ceiling.
#
#   tools/cellbench.sh 8 /path/to/older/fnn > cellbench.txt
#
# Environment: FNN (default build/fnn), CELLBENCH_SHAPES (default "1024 1 32;2048 2 32"),
# CELLBENCH_BEFORE_CELL (default gru), CELLBENCH_STEPS (default 3).
set -eu
rounds=${1:-4}
before=${2:-}
fnn=${FNN:-build/fnn}
steps=${CELLBENCH_STEPS:-3}
runs=$($fnn train --help | sed -n 's/^  cell  *[a-z]* (\([a-z|]*\)).*/\1/p' | tr '|' ' ')
[ -n "$before" ] && runs="$runs before"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
shapes=${CELLBENCH_SHAPES:-"1024 1 32;2048 2 32"}
r=1
while [ $r -le "$rounds" ]; do
    echo "$shapes" | tr ';' '\n' | while read -r H L B; do
        # Rotate the order so that no cell always runs first (after an idle spell) or last.
        set -- $runs
        i=$((r % $#))
        while [ $i -gt 0 ]; do x=$1; shift; set -- "$@" "$x"; i=$((i - 1)); done
        for run in "$@"; do
            bin=$fnn cell=$run
            [ "$run" = before ] && bin=$before cell=${CELLBENCH_BEFORE_CELL:-gru}
            gf=$($bin bench --cell "$cell" --hidden "$H" --layers "$L" --batch "$B" --seq-len 64 \
                --steps "$steps" --threads 1 --ceilings no < /dev/null 2>&1 | sed -n 's/.* \([0-9.]*\) GFLOP\/s per rank.*/\1/p')
            echo "round $r H=$H L=$L B=$B $run ${gf:-failed}" | tee -a "$log"
        done
    done
    r=$((r + 1))
done
echo "medians over $rounds rounds (GFLOP/s, and against ${runs%% *}):"
# Failed runs ("failed") are left out of the medians; the columns in the order of $runs.
awk -v runs="$runs" '$7 != "failed" { key = $3 " " $4 " " $5; v[key, $6] = v[key, $6] " " $7; if (!(key in keys)) order[++nk] = key; keys[key] = 1 }
     function median(s,    a, n, i, j, t) {
         n = split(s, a, " ")
         for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
         return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
     }
     END {
         nr = split(runs, run, " ")
         for (i = 1; i <= nk; i++) {
             k = order[i]; e = median(v[k, run[1]]); line = k ":"
             for (j = 1; j <= nr; j++) {
                 if (v[k, run[j]] == "") { line = line "  " run[j] " failed"; continue }
                 m = median(v[k, run[j]]); line = line sprintf("  %s %.1f", run[j], m)
                 if (e > 0) line = line sprintf(" (%.0f%%)", 100 * m / e)
             }
             print line
         }
     }' "$log"
