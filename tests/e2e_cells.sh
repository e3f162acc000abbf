#!/bin/sh
# Gated cells end to end, at np = 2: a GRU checkpoint given to an LSTM run (resume or init_from)
# is refused with one line naming both cells; a gated cell with activation = relu is refused by
# name; an LSTM LM carrying its state trains, and resumed from its step-10 checkpoint ends with
# parameters and carried state (h, f, c) identical to the uninterrupted run's (h5diff, exact);
# freezing one gate's tensor keeps its gradient out of the norm; eval and sample work on its
# checkpoint.
dir=build/cellse2e
data=text.h5
. tests/lib.sh

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare

train 2 --set cell=gru --set steps=4 --set ckpt_dir=$dir/gru > $dir/gru.txt 2>&1 || fail "train gru"
gru=$dir/gru/step-00000004.h5
refuse "gru checkpoint resumed as lstm" "$gru was made for another model: cell = gru there, lstm here\$" \
    train 2 --set cell=lstm --set resume=$gru --set ckpt_dir=$dir/x
refuse "gru checkpoint as init_from of lstm" "init_from = $gru: cell = gru there, lstm here\$" \
    train 2 --set cell=lstm --set init_from=$gru --set ckpt_dir=$dir/y
refuse "lstm with activation = relu" "activation = relu: the lstm cell has its own nonlinearities" \
    train 2 --set cell=lstm --set activation=relu

# Uninterrupted, and resumed at step 10 into another directory: the same step-20 file.
lstm="--set cell=lstm --set carry_state=true --set ckpt_every=10"
train 2 $lstm --set ckpt_dir=$dir/lstm > $dir/lstm.txt 2>&1 || fail "train lstm"
train 2 $lstm --set ckpt_dir=$dir/resumed --set resume=$dir/lstm/step-00000010.h5 > $dir/resumed.txt 2>&1 ||
    fail "resume lstm"
a=$dir/lstm/step-00000020.h5; b=$dir/resumed/step-00000020.h5
for set in /params /optim/m /optim/v /train/state; do
    if h5diff -q $a $b $set $set > $dir/diff.txt 2>&1; then
        say "ok   lstm resumed at step 10: $set at step 20 identical to the uninterrupted run's"
    else
        fail "lstm resumed at step 10: $set differs: $(head -3 $dir/diff.txt)"
    fi
done
h5ls $a/train/state | grep -q '^c1 ' || fail "no /train/state/c1 in $a: $(h5ls $a/train/state)"

# A frozen gate stays out of the gradient norm (its rows' gradient is formed with the other gates'
# of the same columns): freezing layer0/Wh_f lowers the step-1 norm below freezing the embedding
# alone, and freezing every gate's Wh lowers it further.
for f in embed layer0/Wh_f,embed layer0/Wh,embed; do
    train 1 --set cell=lstm --set init_from=$a --set freeze=$f --set steps=1 --set log_every=1 \
        --set metrics=$dir/freeze.jsonl > /dev/null 2>&1 || fail "init_from with freeze = $f"
    sed -n 's/.*"grad_norm": \([^,]*\),.*/\1/p' $dir/freeze.jsonl
done > $dir/norms.txt
if awk 'NR == 1 { a = $1 } NR == 2 { b = $1 } NR == 3 { c = $1 } END { exit !(NR == 3 && a > b && b > c) }' $dir/norms.txt; then
    say "ok   step-1 gradient norms: freeze embed > + layer0/Wh_f > + every gate's Wh: $(tr '\n' ' ' < $dir/norms.txt)"
else
    fail "gradient norms with freeze = embed, + layer0/Wh_f, + layer0/Wh not decreasing: $(tr '\n' ' ' < $dir/norms.txt)"
fi

mpi 1 $FNN eval --checkpoint $a --data $dir/text.h5 > $dir/eval.txt || fail "eval lstm"
grep -q '^loss [0-9.]* .*bpc [0-9.]*' $dir/eval.txt && say "ok   eval of the lstm checkpoint: $(head -1 $dir/eval.txt)" ||
    fail "eval of the lstm checkpoint printed: $(head -3 $dir/eval.txt)"
mpi 1 $FNN sample --checkpoint $a --length 40 --prompt "Unix " > $dir/sample.txt || fail "sample lstm"
n=$(wc -c < $dir/sample.txt)
[ "$n" -ge 40 ] && say "ok   sample of the lstm checkpoint: $n bytes" || fail "sample gave $n bytes"

say "e2e_cells: $fails failures"
[ $fails -eq 0 ]
