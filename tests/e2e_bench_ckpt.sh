#!/bin/sh
# fnn bench --ckpt at 1 and 2 ranks on a small model: it saves, loads back exactly what it saved
# (it checks that itself and fails otherwise), prints save and load GB/s beside the raw ones and
# the stall of a synchronous save against ckpt_async's, and leaves no file behind.
dir=build/e2e_bench_ckpt
bound=120
. tests/lib.sh
for np in 1 2; do
    if mpi $np $FNN bench --ckpt --gib 0.02 --reps 2 --dir $dir > $dir/out.txt 2>&1 &&
        grep -q "ranks=$np (tp $np).*save [0-9.]* GB/s = [0-9]*% of raw write+fsync [0-9.]* GB/s; load [0-9.]* GB/s = [0-9]*% of raw read" $dir/out.txt &&
        grep -q "stall per save: synchronous [0-9.]* s, ckpt_async [0-9.]* s (its file committed after [0-9.]* s)" $dir/out.txt &&
        [ -z "$(ls $dir | grep -v out.txt)" ]; then
        say "ok   np=$np: $(grep '^bench' $dir/out.txt)"
    else
        fail "np=$np: $(tail -3 $dir/out.txt) files: $(ls $dir)"
    fi
done
timeout 60 $FNN bench --ckpt --gib 0.01 --dir $dir/missing > $dir/out.txt 2>&1
if [ $? -ne 0 ] && grep -q "fnn: error: $dir/missing/bench-ckpt.raw: raw write failed" $dir/out.txt; then
    say "ok   refused: a --dir that does not exist"
else
    fail "a missing --dir: $(cat $dir/out.txt | head -3)"
fi
rm -rf $dir
[ $fails -eq 0 ]
