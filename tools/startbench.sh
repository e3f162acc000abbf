#!/bin/sh
# tools/startbench.sh [ROUNDS] [BEFORE]: fnn train's start-up with the orthogonal initialisation,
# at H = 4096 and 8192 (L = 2), on one rank and on two (tp 1 x dp 2, tp 2 x dp 1), of this build
# and of BEFORE (an older fnn binary), interleaved: each round runs every configuration once per
# binary, the order of the binaries alternating from round to round. A run trains one step (batch
# 4, seq_len 16) on the fortunes text. Per run: the wall and CPU seconds (user + system, all
# ranks) from launch to exit, the start-up line's total, allocation, QR and normal draws (a binary
# that prints no start-up line gives its wall and CPU time only), and the load average; then per
# configuration the medians. On a machine shared with other jobs the CPU seconds of a one-rank run
# move less than its wall time.
#
#   tools/startbench.sh 3 /path/to/older/fnn > startbench.txt
#
# Environment: FNN (default build/fnn), MPIRUN (as the Makefile's), STARTBENCH_H (default
# "4096 8192"), STARTBENCH_LAYOUTS (default "1 1;2 1;2 2": np tp).
set -eu
rounds=${1:-3}
before=${2:-}
fnn=${FNN:-build/fnn}
mpirun=${MPIRUN:-mpirun}
dir=build/startbench
mkdir -p $dir
data=$dir/fortunes.h5
[ -f $data ] || $fnn prepare --kind text --out $data /usr/share/games/fortunes/computers \
    /usr/share/games/fortunes/science /usr/share/games/fortunes/wisdom > /dev/null
log=$dir/runs.txt
: > $log
bins="after"
[ -n "$before" ] && bins="before after"
r=1
while [ $r -le "$rounds" ]; do
    for H in ${STARTBENCH_H:-4096 8192}; do
        echo "${STARTBENCH_LAYOUTS:-1 1;2 1;2 2}" | tr ';' '\n' | while read -r np tp; do
            set -- $bins
            [ $((r % 2)) -eq 0 ] && [ $# -eq 2 ] && set -- $2 $1
            for which in "$@"; do
                bin=$fnn
                [ "$which" = before ] && bin=$before
                launch=$bin
                [ "$np" -gt 1 ] && launch="$mpirun -np $np $bin"
                out=$(/usr/bin/time -f 'time %e %U %S' $launch train --config configs/tiny.ini \
                    --set data=$data --set hidden=$H --set layers=2 --set tp=$tp --set steps=1 \
                    < /dev/null 2>&1) || echo "$out" >&2
                times=$(echo "$out" | sed -n 's/^time //p')
                line=$(echo "$out" | grep '^start-up' || true)
                total=$(echo "$line" | sed -n 's/^start-up \([0-9.]*\) s.*/\1/p')
                alloc=$(echo "$line" | sed -n 's/.*allocation \([0-9.]*\).*/\1/p')
                qr=$(echo "$line" | sed -n 's/.*QR \([0-9.]*\).*/\1/p')
                normal=$(echo "$line" | sed -n 's/.*normal \([0-9.]*\).*/\1/p')
                printf 'round %d H=%d np=%d tp=%d %s wall %s cpu %s start-up %s allocation %s QR %s normal %s load %s\n' \
                    $r $H $np $tp $which "${times%% *}" "$(echo "$times" | awk '{ print $2 + $3 }')" \
                    "${total:--}" "${alloc:--}" "${qr:--}" "${normal:--}" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a $log
            done
        done
    done
    r=$((r + 1))
done
echo "medians over $rounds rounds (seconds):"
echo "| H | np | tp x dp | build | wall | cpu | start-up | allocation | QR | normal | load |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
awk '{ key = $3 " " $4 " " $5 " " $6; split($3, h, "="); split($4, n, "="); split($5, t, "=")
       k[key] = h[2] " | " n[2] " | " t[2] " x " n[2] / t[2] " | " $6
       for (f = 7; f < NF; f += 2) if ($(f + 1) != "-") v[key, $f, ++c[key, $f]] = $(f + 1) }
     function med(key, f,    m, i, j, x, a) {
         m = c[key, f]; if (!m) return "-"
         for (i = 1; i <= m; i++) a[i] = v[key, f, i]
         for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
         return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
     END { for (key in k) printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", k[key], med(key, "wall"),
           med(key, "cpu"), med(key, "start-up"), med(key, "allocation"), med(key, "QR"),
           med(key, "normal"), med(key, "load") }' $log | sort -t'|' -k2n -k3n -k4 -k5
