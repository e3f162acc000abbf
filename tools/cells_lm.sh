#!/bin/sh
# make cells-lm: the fortunes language model with each cell at (about) equal parameter counts and
# equal wall-clock: every cell first times 30 steps, then trains for as many steps as fit in
# BUDGET seconds (cosine schedule run to its end), and is evaluated on the validation split.
# Prints one table row per cell: hidden size, parameters, steps, seconds, validation bpc.
set -e
FNN=${FNN:-build/fnn}
BUDGET=${BUDGET:-120}
out=${OUT:-build/cells-lm}
fortunes=/usr/share/games/fortunes
mkdir -p $out
files=$(ls $fortunes/* | grep -v -e '\.dat$' -e '\.u8$')
[ -f $out/fortunes.h5 ] || $FNN prepare --kind text --val-fraction 0.05 --out $out/fortunes.h5 $files > /dev/null
common="--config configs/demo.ini --set data=$out/fortunes.h5 --set log_every=1000000 --set ckpt_every=0 --set eval_windows=0"
# Every cell that fnn train --help lists, at the smallest hidden size (a multiple of 8) whose
# parameters (fnn plan) reach those of the first cell at H = 512: ~0.55 M each (embed 32, 256
# outputs fed back; elman 512, gru 280, lstm 232, mgu 352).
cells=$($FNN train --help | sed -n 's/^  cell  *[a-z]* (\([a-z|]*\)).*/\1/p' | tr '|' ' ')
params() { $FNN plan $common --set cell=$1 --set hidden=$2 | sed -n 's/^memory plan: \([0-9.]*\) M parameters.*/\1/p'; }
target=$(params ${cells%% *} 512)
set --
for cell in $cells; do
    H=8
    while awk -v p=$(params $cell $H) -v t=$target 'BEGIN { exit !(p < t) }'; do H=$((H + 8)); done
    set -- "$@" $cell $H
done
printf "| cell | hidden | parameters | steps | train s | val bpc |\n|---|---|---|---|---|---|\n"
while [ $# -gt 0 ]; do
    cell=$1 H=$2
    shift 2
    rm -rf $out/$cell
    $FNN train $common --set cell=$cell --set hidden=$H --set steps=30 --set warmup=0 \
        --set metrics=$out/$cell.time.jsonl --set ckpt_dir= > /dev/null
    # the median step time of steps 6..30 (the first ones warm caches and pack weights)
    step_s=$(sed -n '6,30s/.*"step_s": \([^,]*\),.*/\1/p' $out/$cell.time.jsonl | sort -g | sed -n 13p)
    steps=$(awk -v b=$BUDGET -v s=$step_s 'BEGIN { printf "%d", b / s }')
    t0=$(date +%s.%N)
    $FNN train $common --set cell=$cell --set hidden=$H --set steps=$steps \
        --set warmup=$((steps / 30)) --set metrics=$out/$cell.jsonl --set ckpt_dir=$out/$cell > /dev/null
    t1=$(date +%s.%N)
    ck=$out/$cell/$(cat $out/$cell/latest)
    params=$($FNN inspect $ck | sed -n "s/^parameters: //p")
    bpc=$($FNN eval --checkpoint $ck --data $out/fortunes.h5 --windows 512 --json | sed 's/.*"bpc": \([^,}]*\).*/\1/')
    printf "| %s | %d | %s | %d | %.0f | %.3f |\n" $cell $H "$params" $steps \
        $(awk -v a=$t0 -v b=$t1 'BEGIN { print b - a }') $bpc
done
