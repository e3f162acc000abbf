#!/bin/sh
# Validation during training (eval_every), the best checkpoint (ckpt_keep_best) and early stopping
# (early_stop), at np = 1 and 2. The references are independent of the training code: the score
# logged at a step equals `fnn eval` of that step's checkpoint on the same windows (and batch, so
# that the sums run in the same order: equal to the 9 printed digits); the best checkpoint and the
# stopping evaluation are recomputed here from the logged scores. The validation split is digits
# after English text, so at a constant lr = 1e-2 its loss rises (after a few steps) as the model learns the
# text: the best score comes early, and early stopping must end the run before its steps.
dir=build/evalbest
bound=120
. tests/lib.sh
data=div.h5

text=/usr/share/games/fortunes/computers
# The last tenth of the file (the validation split) is digits.
{ cat $text; n=$(($(wc -c < $text) / 9)); awk -v n=$n 'BEGIN { for (i = 0; i < n; i++) printf "%d", (i * 7) % 10 }'; } > $dir/div.txt
$FNN prepare --kind text --out $dir/$data $dir/div.txt > /dev/null || fail "prepare"
$FNN prepare --kind text --val-fraction 0 --out $dir/noval.h5 $text > /dev/null || fail "prepare noval"

# "step loss" of every `eval step` line of $1.
scores() { sed -n 's/^eval step \([0-9]*\): val loss \([^ ]*\) over .*/\1 \2/p' "$1"; }
# The step of the lowest score (the first of equals).
best_of() { awk 'NR == 1 || $2 < b { b = $2; s = $1 } END { print s }'; }

for np in 1 2; do
    ck=$dir/ck$np
    train $np --set lr=1e-2 --set lr_min=1e-2 --set eval_windows=8 --set eval_every=2 --set steps=12 --set ckpt_dir=$ck --set ckpt_every=2 \
        --set ckpt_keep=1 --set ckpt_keep_best=true --set metrics=$dir/m$np.jsonl > $dir/t$np.txt 2>&1 || fail "np $np: train"
    scores $dir/t$np.txt > $dir/s$np.txt
    [ "$(cut -d' ' -f1 $dir/s$np.txt | tr '\n' ' ')" = "2 4 6 8 10 12 " ] && say "ok   np $np: scored at steps 2 .. 12" || fail "np $np: scored at $(cut -d' ' -f1 $dir/s$np.txt | tr '\n' ' ')"
    # The metrics file holds the same scores, with the task's measures.
    python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$dir/m$np.jsonl') if 'val_loss' in l]
print('\n'.join('%d %.9g %s' % (r['step'], r['val_loss'], 'val_bpc' in r and 'val_accuracy' in r and r['val_windows'] == 8) for r in rows))" > $dir/mv$np.txt || fail "np $np: metrics unreadable"
    awk '{ print $0, "True" }' $dir/s$np.txt | cmp -s - $dir/mv$np.txt && say "ok   np $np: metrics lines hold the logged scores and measures" || fail "np $np: metrics $(tr '\n' ';' < $dir/mv$np.txt) vs log $(tr '\n' ';' < $dir/s$np.txt)"
    # fnn eval of the last checkpoint on the same windows and batch: the same score.
    mpi $np $FNN eval --checkpoint $ck/step-00000012.h5 --data $dir/$data --windows 8 --batch 4 > $dir/e$np.txt || fail "np $np: eval"
    want=$(sed -n 's/^loss \([^ ]*\) .*/\1/p' $dir/e$np.txt); got=$(awk '$1 == 12 { print $2 }' $dir/s$np.txt)
    [ -n "$want" ] && [ "$want" = "$got" ] && say "ok   np $np: step 12's score $got = fnn eval's" || fail "np $np: step 12 scored $got, fnn eval $want"
    # The best: the lowest logged score's checkpoint, kept though ckpt_keep = 1 pruned its neighbours.
    b=$(best_of < $dir/s$np.txt); name=$(printf 'step-%08d.h5' $b)
    [ "$b" -lt 12 ] || fail "np $np: construction: the best score is the last ($b), pruning not exercised"
    [ "$(head -n 1 $ck/best)" = "$name" ] && [ -f $ck/$name ] && say "ok   np $np: best names $name, the lowest score, and it survived ckpt_keep = 1" || fail "np $np: best '$(head -n 1 $ck/best 2>/dev/null)', expected $name (present: $(ls $ck | tr '\n' ' '))"
    [ "$(ls $ck | grep -c '^step-')" -eq 2 ] || fail "np $np: expected the latest and the best only: $(ls $ck | tr '\n' ' ')"
    mpi $np $FNN eval --checkpoint $ck/$name --data $dir/$data --windows 8 --batch 4 > $dir/eb$np.txt || fail "np $np: eval best"
    want=$(sed -n 's/^loss \([^ ]*\) .*/\1/p' $dir/eb$np.txt); got=$(awk -v b=$b '$1 == b { print $2 }' $dir/s$np.txt)
    [ -n "$want" ] && [ "$want" = "$got" ] && say "ok   np $np: the best checkpoint evaluates to its logged score $got" || fail "np $np: best scored $got, fnn eval $want"
    # Resumed, the best score is known: later (worse) scores do not replace the best, and early_stop
    # = 4 counts the 3 scores since the best before the resume (it stops at the first one after).
    train $np --set lr=1e-2 --set lr_min=1e-2 --set eval_windows=8 --set eval_every=2 --set steps=20 --set ckpt_dir=$ck --set ckpt_every=2 \
        --set ckpt_keep=1 --set ckpt_keep_best=true --set early_stop=4 --set resume=auto > $dir/r$np.txt 2>&1 || fail "np $np: resume"
    cat $dir/s$np.txt > $dir/all$np.txt; scores $dir/r$np.txt >> $dir/all$np.txt
    b2=$(best_of < $dir/all$np.txt); name2=$(printf 'step-%08d.h5' $b2)
    # Otherwise a resumed run that forgot the best score would pass.
    [ "$b2" = "$b" ] || fail "np $np: construction: a resumed score improved on step $b's"
    [ "$(head -n 1 $ck/best)" = "$name2" ] && [ -f $ck/$name2 ] && say "ok   np $np: after resume best names $name2, the lowest of all scores" || fail "np $np: after resume best '$(head -n 1 $ck/best)', expected $name2 (present: $(ls $ck | tr '\n' ' '))"
    stop=$(awk -v p=4 'BEGIN { b = "" } { if (b == "" || $2 < b) { b = $2; k = 0 } else if (++k == p) { print $1; exit } }' $dir/all$np.txt)
    [ -n "$stop" ] && [ "$(tail -n 1 $dir/all$np.txt | cut -d' ' -f1)" = "$stop" ] && [ "$stop" -lt 20 ] &&
        grep -q "^early stop at step $stop: no improvement in 4 evaluations" $dir/r$np.txt && say "ok   np $np: resumed, early_stop = 4 stopped at step $stop" ||
        fail "np $np: resumed early stop: expected at '$stop', scores $(tr '\n' ';' < $dir/all$np.txt)"

    # With carried state (an LSTM's h and c, and f), scoring leaves the training rows' state as it
    # was: the training losses are those of a run that scores nothing.
    for e in 0 3; do
        train $np --set cell=lstm --set carry_state=true --set steps=8 --set eval_windows=8 --set eval_every=$e \
            --set metrics=$dir/c$e.jsonl > $dir/c$e.txt 2>&1 || fail "np $np: carry_state, eval_every = $e"
        grep '"loss"' $dir/c$e.jsonl | sed 's/, "tokens_per_s.*//' > $dir/cl$e.txt
    done
    [ "$(grep -c '^eval step' $dir/c3.txt)" -eq 3 ] && [ "$(wc -l < $dir/cl0.txt)" -eq 8 ] && cmp -s $dir/cl0.txt $dir/cl3.txt &&
        say "ok   np $np: carry_state: 3 scores, the 8 training losses unchanged" || fail "np $np: carry_state: losses with scores differ: $(diff $dir/cl0.txt $dir/cl3.txt | head -2 | tr '\n' ' ')"

    # Early stopping after P = 2 scores without improvement, where the logged scores say.
    train $np --set lr=1e-2 --set lr_min=1e-2 --set eval_windows=8 --set eval_every=2 --set early_stop=2 --set steps=40 \
        --set metrics=$dir/es$np.jsonl > $dir/es$np.txt 2>&1; rc=$?
    scores $dir/es$np.txt > $dir/ess$np.txt
    stop=$(awk 'BEGIN { b = "" } { if (b == "" || $2 < b) { b = $2; k = 0 } else if (++k == 2) { print $1; exit } }' $dir/ess$np.txt)
    last=$(tail -n 1 $dir/ess$np.txt | cut -d' ' -f1)
    steps=$(grep -c '"loss"' $dir/es$np.jsonl)
    if [ $rc -eq 0 ] && [ -n "$stop" ] && [ "$stop" -lt 40 ] && [ "$last" = "$stop" ] && [ "$steps" = "$stop" ] &&
        [ "$(grep -c "^early stop at step $stop: no improvement in 2 evaluations" $dir/es$np.txt)" -eq 1 ] &&
        tail -n 1 $dir/es$np.txt | grep -q '^val: '; then
        say "ok   np $np: early_stop = 2 stopped at step $stop, exit 0"
    else
        fail "np $np: early stop: exit $rc, expected at step '$stop', last score at $last, $steps steps: $(grep '^early' $dir/es$np.txt)"
    fi
done

# Bad input: one line naming the key, at np 2.
refuse "eval_every without eval_windows" "eval_every = 2 needs eval_windows" train 2 --set eval_every=2
refuse "eval_every without a validation split" "eval_every = 2: .*noval.h5 has no validation window" \
    mpi 2 $FNN train --config configs/tiny.ini --set data=$dir/noval.h5 --set eval_every=2 --set eval_windows=4
refuse "early_stop without eval_every" "early_stop = 3 needs eval_every" train 2 --set early_stop=3
refuse "ckpt_keep_best without eval_every" "ckpt_keep_best = true needs eval_every" train 2 --set ckpt_keep_best=true --set ckpt_dir=$dir/x
refuse "ckpt_keep_best without ckpt_dir" "ckpt_keep_best = true needs ckpt_dir" train 2 --set ckpt_keep_best=true --set eval_every=2 --set eval_windows=4

say "e2e_evalbest: $fails failures"
[ $fails -eq 0 ]
