#!/bin/sh
# make stream-bench: the streamed loader at corpus sizes past 2^31 bytes (README, Performance,
# Streamed data). For each size in SIZES (GB, default "1 3 6") it generates a text corpus under a
# mktemp directory in DIR (default /tmp; its free space is checked first), prepares it (peak
# resident memory of fnn prepare, from /usr/bin/time), deletes the corpus, and trains on it at
# NP ranks (default 2) for STEPS steps: tokens/s (the median of the metrics' per-step figures,
# the first 10 steps left out) and the peak resident memory per rank that fnn train reports.
# With BEFORE=path/to/fnn (a build of main before streaming), sizes the old prepare accepts
# (below 2^31 bytes) are prepared by it too and trained on by both binaries in ROUNDS alternating
# rounds (before, after, before, ...) on the same file, so both see the same machine load.
# Everything it made is removed at the end.
set -eu
FNN=${FNN:-build/fnn}
BEFORE=${BEFORE:-}
SIZES=${SIZES:-1 3 6}
NP=${NP:-2}
STEPS=${STEPS:-300}
ROUNDS=${ROUNDS:-3}
MPIRUN=${MPIRUN:-mpirun}
SET=${SET:---set hidden=128 --set batch=16 --set seq_len=64}
base=${DIR:-/tmp}
largest=0
for s in $SIZES; do [ "$s" -gt "$largest" ] && largest=$s; done
# The corpus and its prepared file exist together for a moment: twice the largest, and a GB spare.
need=$(( (2 * largest + 1) * 1024 * 1024 ))
avail=$(df -Pk "$base" | awk 'NR == 2 { print $4 }')
if [ "$avail" -lt "$need" ]; then
    echo "stream_bench: $base has $((avail / 1024 / 1024)) GB free, needs $((need / 1024 / 1024)) GB" >&2
    exit 1
fi
dir=$(mktemp -d "$base/fnn-stream.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM

echo "stream_bench: $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n), $(nproc) cores, $NP ranks, $SET"
echo "load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
# 64 MiB of text to repeat: the fortunes, shifted by a byte per copy so windows differ.
for f in /usr/share/games/fortunes/*; do
    case $f in *.dat|*.u8) ;; *) [ -f "$f" ] && cat "$f" ;; esac
done > "$dir/seed"
while [ "$(stat -c %s "$dir/seed")" -lt 67108864 ]; do
    { tail -c +2 "$dir/seed"; cat "$dir/seed"; } > "$dir/seed2" && mv "$dir/seed2" "$dir/seed"
done

corpus() { # bytes -> $dir/corpus.txt
    n=$(( $1 / 67108864 + 1 ))
    i=0
    while [ $i -lt $n ]; do cat "$dir/seed"; i=$((i + 1)); done | head -c "$1" > "$dir/corpus.txt"
}

prepare() { # binary out -> "peak_MiB seconds"
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$dir/time" "$1" prepare --kind text --val-fraction 0.001 \
        --out "$2" "$dir/corpus.txt" > "$dir/prepare.log" 2>&1 || { cat "$dir/prepare.log"; return 1; }
    echo "$(( $(cat "$dir/time") / 1024 )) $(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $t0 }")"
}

train() { # binary data -> "tokens_per_s peak"
    $MPIRUN -np "$NP" "$1" train --config configs/tiny.ini --set data="$2" --set steps="$STEPS" \
        --set log_every="$STEPS" --set metrics="$dir/metrics.json" $SET > "$dir/train.log" 2>&1 \
        || { tail -n 5 "$dir/train.log"; return 1; }
    tps=$(sed -n 's/.*"step": *\([0-9]*\),.*"tokens_per_s": *\([0-9.e+]*\).*/\1 \2/p' "$dir/metrics.json" \
          | awk '$1 > 10 { print $2 }' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    peak=$(sed -n 's/^memory: peak resident (VmHWM) \([^ ]* [^ ]*\) per rank.*/\1/p' "$dir/train.log")
    echo "$tps $peak"
}

for s in $SIZES; do
    bytes=$(( s * 1000000000 ))
    corpus "$bytes"
    set -- $(prepare "$FNN" "$dir/after.h5")
    echo "$s GB ($bytes bytes): prepare after: peak $1 MiB, $2 s"
    old=
    if [ -n "$BEFORE" ] && [ "$bytes" -lt 2147483648 ]; then
        set -- $(prepare "$BEFORE" "$dir/before.h5")
        echo "$s GB: prepare before: peak $1 MiB, $2 s"
        old=1
    fi
    rm -f "$dir/corpus.txt"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        [ -n "$old" ] && echo "$s GB round $r: train before: $(train "$BEFORE" "$dir/before.h5") (tokens/s, peak per rank)"
        echo "$s GB round $r: train after:  $(train "$FNN" "$dir/after.h5") (tokens/s, peak per rank)"
        [ -n "$old" ] || break # without a before binary one round says it
        r=$((r + 1))
    done
    rm -f "$dir/after.h5" "$dir/before.h5"
done
echo "load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
