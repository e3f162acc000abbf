#!/bin/sh
# precision = bf16 end to end (issue 19, docs/model.md, Precision): a short language model on
# the fortunes text at bf16 ends within 2% of the float32 run's loss (the mean of the last 10
# steps; a bf16 run that equals float32's exactly never ran bf16 products); its checkpoints say
# precision = bf16 in /config; a bf16 checkpoint resumed at fp32, and the reverse, end within
# 2% of the uninterrupted runs. Without AVX512_BF16 (or with FNN_CPU_HIDE=avx512bf16, on 2
# ranks) precision = bf16 is refused with one line naming the feature; on such a CPU the rest
# is skipped with a SKIPPED: line.
dir=build/bf16e2e
data=text.h5
bound=120
. tests/lib.sh

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
refuse "bf16 on 2 ranks without avx512bf16" "precision = bf16: not available here, it needs avx512bf16\$" \
    run env FNN_CPU_HIDE=avx512bf16 $MPIRUN -x FNN_CPU_HIDE -np 2 $FNN train --config configs/tiny.ini \
    --set data=$dir/$data --set precision=bf16
# The mean loss of the last 10 steps of a metrics file.
tail_loss() { tail -n 10 "$1" | sed -n 's/.*"loss": \([^,]*\),.*/\1/p' | awk '{ s += $1; n++ } END { if (n) printf "%.6f\n", s / n }'; }
lm="--set hidden=64 --set steps=60 --set log_every=60 --set ckpt_every=30"
if ! train 1 $lm --set precision=bf16 --set steps=1 > $dir/probe.txt 2>&1; then
    if grep -q "precision = bf16: not available here" $dir/probe.txt; then
        say "SKIPPED: this CPU has no bf16 kernels ($(grep -o 'it needs .*' $dir/probe.txt | head -1))"
        exit $((fails != 0))
    fi
    fail "bf16 probe run: $(grep -v '^ *$' $dir/probe.txt | tail -2)"
fi
for p in fp32 bf16; do
    train 1 $lm --set precision=$p --set metrics=$dir/$p.jsonl --set ckpt_dir=$dir/$p > $dir/$p.txt 2>&1 ||
        fail "train at $p: $(tail -2 $dir/$p.txt)"
done
l32=$(tail_loss $dir/fp32.jsonl); l16=$(tail_loss $dir/bf16.jsonl)
if close "$l16" "$l32" 0.02 && [ "$(cut -d, -f2 $dir/bf16.jsonl)" != "$(cut -d, -f2 $dir/fp32.jsonl)" ]; then
    say "ok   60 steps on fortunes: mean loss of the last 10 at bf16 $l16, at fp32 $l32"
else
    fail "60 steps on fortunes: mean loss of the last 10 at bf16 '$l16', at fp32 '$l32' (within 2% and not the same trajectory wanted)"
fi
grep -q '^precision = bf16$' $dir/bf16.txt || fail "the bf16 run's log does not show precision = bf16"
for p in fp32 bf16; do
    got=$(h5dump -a /config/precision $dir/$p/step-00000060.h5 2>/dev/null | sed -n 's/.*(0): "\(.*\)".*/\1/p')
    [ "$got" = $p ] && say "ok   $p checkpoint: /config/precision = $got" || fail "$p checkpoint: /config/precision = '$got'"
done
# Each run's step-30 checkpoint continued at the other precision: the masters carry over.
for pair in "bf16 fp32" "fp32 bf16"; do
    set -- $pair
    train 1 $lm --set precision=$2 --set resume=$dir/$1/step-00000030.h5 --set metrics=$dir/$1-$2.jsonl \
        --set ckpt_dir=$dir/$1-$2 > $dir/$1-$2.txt 2>&1 || fail "$1 checkpoint resumed at $2: $(tail -2 $dir/$1-$2.txt)"
    got=$(tail_loss $dir/$1-$2.jsonl); want=$(tail_loss $dir/$1.jsonl)
    close "$got" "$want" 0.02 && say "ok   $1 checkpoint of step 30 resumed at $2: mean loss of steps 51-60 $got, uninterrupted $1 $want" ||
        fail "$1 checkpoint of step 30 resumed at $2: mean loss of steps 51-60 '$got', uninterrupted $1 '$want'"
done
exit $((fails != 0))
