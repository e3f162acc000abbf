#!/bin/sh
# The start-up line (run/startup.c): fnn train prints its phases, with init's QR and normal
# parts on a fresh start and "checkpoint load" when resuming, at 1 and 2 ranks; fnn bench --init
# orthogonal spends time in the QR where --init normal spends none (the option takes effect), and
# a bad --init is refused in one line.
dir=build/startup
data=text.h5
. tests/lib.sh

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
num='[0-9][0-9]*\.[0-9][0-9]'
fresh="^start-up $num s: setup $num, data $num, allocation $num, init $num (QR $num, normal $num)\$"
for np in 1 2; do
    train $np --set steps=2 --set tp=$np --set ckpt_dir=$dir/ck$np > $dir/fresh$np.txt 2>&1 || fail "np=$np: train failed"
    [ "$(grep -c '^start-up' $dir/fresh$np.txt)" -eq 1 ] && grep -q "$fresh" $dir/fresh$np.txt \
        && say "ok   np=$np fresh start: $(grep '^start-up' $dir/fresh$np.txt)" \
        || fail "np=$np fresh start: $(grep '^start-up' $dir/fresh$np.txt || echo 'no start-up line')"
    train $np --set steps=3 --set tp=$np --set ckpt_dir=$dir/ck$np --set resume=auto > $dir/resume$np.txt 2>&1 || fail "np=$np: resume failed"
    grep -q "^start-up $num s: setup $num, data $num, allocation $num, checkpoint load $num\$" $dir/resume$np.txt \
        && say "ok   np=$np resume: $(grep '^start-up' $dir/resume$np.txt)" \
        || fail "np=$np resume: $(grep '^start-up' $dir/resume$np.txt || echo 'no start-up line')"
done

# The QR's seconds: above 0 with the orthogonal init of two 512 x 512 matrices, exactly 0 without.
qr_of() { sed -n 's/^start-up .*(QR \([0-9.]*\), normal .*/\1/p' "$1"; }
for init in orthogonal normal; do
    mpi 1 $FNN bench --hidden 512 --layers 2 --batch 2 --seq-len 2 --steps 1 --ceilings no --init $init \
        > $dir/bench_$init.txt 2>&1 || fail "bench --init $init failed"
done
qo=$(qr_of $dir/bench_orthogonal.txt) qn=$(qr_of $dir/bench_normal.txt)
[ -n "$qo" ] && [ -n "$qn" ] && awk -v a="$qo" -v b="$qn" 'BEGIN { exit !(a > 0 && b == 0) }' \
    && say "ok   bench --init orthogonal: QR $qo s, --init normal: QR $qn s" \
    || fail "bench QR seconds: orthogonal '$qo', normal '$qn'"
refuse "bench --init bogus" "--init bogus: expected orthogonal, identity or normal" \
    mpi 1 $FNN bench --init bogus

[ $fails -eq 0 ] && say "e2e_startup: all checks passed" || say "e2e_startup: $fails failed"
[ $fails -eq 0 ]
