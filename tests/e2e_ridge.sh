#!/bin/sh
# The closed-form head through build/fnn (head_ridge = true): the fit at (np, tp) = (1,1), (2,2),
# (4,2), (4,1) gives the same training loss; the head it saves is the one `fnn eval` scores to that
# loss; gradient steps start from it; lm -> classify and regress fit; and every bad input (no
# new_head, a classifier whose Wf feeds back the head, a system that is not positive definite at
# np = 1, 2, 4) ends with one line, a non-zero exit and no hang.
dir=build/ridge_e2e
bound=120
. tests/lib.sh
ridge_loss() { sed -n 's/^ridge head: train \(loss\|mse\) \([^ ]*\).*/\2/p' "$1"; }

# A small text (about 300 windows of 16 steps) and a tiny language model trained on it.
head -c 6000 /usr/share/games/fortunes/computers > $dir/text.txt
$FNN prepare --kind text --val-fraction 0.2 --out $dir/data.h5 $dir/text.txt > /dev/null || fail prepare
tiny="--config configs/tiny.ini --set data=$dir/data.h5"
mpi 1 $FNN train $tiny --set ckpt_dir=$dir/pre > $dir/pre.txt 2>&1 || fail "pretrain"
pre=$dir/pre/step-00000020.h5
ft="$tiny --set init_from=$pre --set new_head=true --set head_ridge=true"

# The fit at four layouts, steps = 0: the head is saved as step 0.
for layout in "1 1" "2 2" "4 2" "4 1"; do
    set -- $layout
    out=$dir/fit.np$1.tp$2.txt
    mpi $1 $FNN train $ft --set steps=0 --set tp=$2 --set ckpt_dir=$dir/fit$1$2 > $out 2>&1 || fail "fit np=$1 tp=$2: $(tail -2 $out)"
    loss=$(ridge_loss $out)
    [ -n "$loss" ] || fail "fit np=$1 tp=$2 printed no training loss"
    if [ "$1" = 1 ]; then ref=$loss; say "ok   fit np=1: $(grep 'ridge head:' $out | tr '\n' ' ')"
    elif close "$loss" "$ref" 1e-5; then say "ok   fit np=$1 tp=$2: train loss $loss (np=1: $ref)"
    else fail "fit np=$1 tp=$2: train loss $loss, np=1 $ref"; fi
done
mpi 1 $FNN eval --checkpoint $dir/fit11/step-00000000.h5 --data $dir/data.h5 --split train > $dir/eval.txt || fail "eval of the fitted head"
ev=$(sed -n 's/^loss \([^ ]*\) .*/\1/p' $dir/eval.txt)
close "$ev" "$ref" 1e-6 && say "ok   fnn eval of the saved head: $ev" || fail "eval of the saved head $ev, fit printed $ref"

# Gradient steps start from the fitted head: with lr = 0 it is still the fitted head after them,
# and with lr > 0 the first step's loss is the fitted head's on that batch.
mpi 2 $FNN train $ft --set steps=2 --set lr=0 --set tp=2 --set ckpt_dir=$dir/lr0 > $dir/lr0.txt 2>&1 || fail "steps after the fit"
mpi 1 $FNN eval --checkpoint $dir/lr0/step-00000002.h5 --data $dir/data.h5 --split train > $dir/eval2.txt || fail "eval after steps"
ev2=$(sed -n 's/^loss \([^ ]*\) .*/\1/p' $dir/eval2.txt)
close "$ev2" "$ref" 1e-6 && say "ok   two steps at lr = 0 keep the fitted head: $ev2" || fail "after steps at lr = 0: $ev2, fit $ref"
# Resuming from the fitted step-0 checkpoint continues from its head: no second fit.
mpi 1 $FNN train $ft --set steps=1 --set lr=0 --set ckpt_dir=$dir/fit11 --set resume=auto > $dir/res0.txt 2>&1 || fail "resume from step 0: $(tail -2 $dir/res0.txt)"
grep -q "^resumed from .*step-00000000.h5 at step 0" $dir/res0.txt && ! grep -q "^ridge head:" $dir/res0.txt \
    && say "ok   resume from the fitted step-0 checkpoint: no second fit" || fail "resume from step 0 fitted the head again: $(grep -E '^(resumed|ridge head)' $dir/res0.txt)"
mpi 2 $FNN train $ft --set steps=5 --set tp=2 > $dir/steps.txt 2>&1 && grep -q "^step 5/5" $dir/steps.txt || fail "fine-tuning after the fit: $(tail -2 $dir/steps.txt)"

# A classifier on a language model's features and regress on a driven sine, fitted at np = 2.
recs="/usr/share/games/fortunes/science /usr/share/games/fortunes/love"
$FNN prepare --kind records --val-fraction 0.2 --out $dir/recs.h5 $recs > /dev/null || fail "prepare records"
# The transfer makes the classifier's Wf new and zero, so the states do not see the head.
mpi 2 $FNN train --config configs/tiny.ini --set data=$dir/recs.h5 --set task=classify --set tp=2 --set init_from=$pre --set new_head=true --set head_ridge=true --set steps=0 > $dir/lmcls.txt 2>&1 && grep -q "ridge head: train loss .* accuracy" $dir/lmcls.txt && say "ok   lm -> classify: $(grep 'accuracy' $dir/lmcls.txt)" || fail "lm -> classify fit: $(tail -2 $dir/lmcls.txt)"
awk 'BEGIN { for (i = 0; i < 600; i++) { u = sin(i * 0.1); printf "%.6f,%.6f\n", u, sin(i * 0.1 + 0.5) * 0.8 } }' > $dir/wave.csv
$FNN prepare --kind csv --inputs 1 --val-fraction 0.2 --out $dir/wave.h5 $dir/wave.csv > /dev/null || fail "prepare csv"
reg="--config configs/tiny.ini --set data=$dir/wave.h5 --set task=regress --set feedback_source=target"
mpi 1 $FNN train $reg --set ckpt_dir=$dir/reg > /dev/null 2>&1 || fail "pretrain regress"
mpi 2 $FNN train $reg --set init_from=$dir/reg/step-00000020.h5 --set new_head=true --set head_ridge=true --set steps=0 > $dir/reg.txt 2>&1 && grep -q "ridge head: train mse" $dir/reg.txt && say "ok   regress: $(grep 'mse' $dir/reg.txt)" || fail "regress fit: $(tail -2 $dir/reg.txt)"

# Bad input.
refuse "head_ridge without new_head" "new_head" run $FNN train $tiny --set init_from=$pre --set head_ridge=true
mpi 1 $FNN train --config configs/tiny.ini --set data=$dir/recs.h5 --set task=classify --set ckpt_dir=$dir/clsfb > /dev/null 2>&1 || fail "pretrain classify with feedback"
refuse "classifier whose Wf feeds back the head" "task = classify" run $FNN train --config configs/tiny.ini --set data=$dir/recs.h5 --set task=classify --set init_from=$dir/clsfb/step-00000020.h5 --set new_head=true --set head_ridge=true
# One window of 16 steps: 16 rows for 32 hidden units, a singular Gram matrix.
head -c 30 $dir/text.txt > $dir/short.txt
printf '0123456789' >> $dir/short.txt
$FNN prepare --kind text --val-fraction 0.25 --out $dir/short.h5 $dir/short.txt > /dev/null || fail "prepare short"
for np in 1 2 4; do
    refuse "not positive definite at np=$np" "ridge_lambda = 1e-30" mpi $np $FNN train $ft --set data=$dir/short.h5 --set ridge_lambda=1e-30
done

[ $fails -eq 0 ] && say "e2e_ridge: all checks passed" || say "e2e_ridge: $fails failed"
exit $((fails != 0))
