#!/bin/sh
# make finetune-demo: does pretraining pay on real data? Writes build/finetune-demo/results.md
# (the table of README.md "Fine-tuning results") and prints it.
#   a. a byte-level LM pretrained at np = 2 on the fortunes text of all but the held-out
#      categories (songs-poems for b; people, politics, science, work for c);
#   b. that LM fine-tuned at np = 1 on songs-poems vs the same model from scratch, same steps;
#   c. the category of a record (4 categories, 600 records each): ridge head on the frozen
#      pretrained features, head-only steps then full fine-tuning, from scratch, majority class;
#   d. a noisy driven Duffing oscillator (tools/duffing.sh): feedback of the previous observed
#      output vs none.
#   c', the rows of c again with nothing chosen on the reported validation split: the last 15% of
#      each category's training records are held out (select.h5) to choose ridge_lambda and, with
#      eval_every and early_stop, the checkpoint of the staged fine-tuning and of scratch, which
#      train on the rest.
# Every row is the validation split's measure as the run's last line (`val: ...`) prints it. A run
# that fails leaves its row saying why, and the script exits 1 after the table. KEEP_PRETRAIN=1
# reuses the pretrained checkpoint of an earlier run (and its log for row a) when there is one.
# The training runs write metrics (NAME.jsonl); fnn plot draws lm.png (a, b), classify.png (c') and
# classify-dropout.png (c'' beside c').
# c'', the rows (ii') and (iii') of c' with dropout, its p chosen on the held-out training records.
# ONLY="b c sel drop d" (any of them) runs those rows alone after a (sel: the rows c'; drop: c'').
set -u
out=build/finetune-demo
fortunes=/usr/share/games/fortunes
FNN=build/fnn
mkdir -p $out
rows=$out/rows.md
: > $rows
failed=0
want() { case " ${ONLY:-b c sel drop d} " in *" $1 "*) return 0 ;; esac; return 1; }

# One table row: run the command (log in $out/$2.log), then take measure $3 from its last
# "val:" line (or from the eval line for fnn eval). Columns: row, what, ranks, measure, value, s.
row() {
    label=$1; name=$2; what=$3; desc=$4; np=$5; shift 5
    log=$out/$name.log
    t0=$(date +%s)
    echo "== $label $desc"
    if "$@" > $log 2>&1; then
        value=$(grep -e '^val:' -e '^loss ' $log | tail -n 1 | sed -n "s/.*  $what \([^ ]*\).*/\1/p")
        tail -n 1 $log
    else
        value="not run: $(grep -m 1 'fnn: error' $log || tail -n 1 $log)"
        failed=$((failed + 1))
        echo "$value"
    fi
    echo "| $label | $desc | $np | $what | $value | $(( $(date +%s) - t0 )) |" >> $rows
}

# Data. Classes of c: the first 600 records of each category, so the majority class is 25%.
held="songs-poems people politics science work"
pre=$(ls $fortunes/* | grep -v -e '\.dat$' -e '\.u8$')
for h in $held; do pre=$(echo "$pre" | grep -v "/$h\$"); done
$FNN prepare --kind text --val-fraction 0.05 --out $out/pretrain.h5 $pre
$FNN prepare --kind text --val-fraction 0.1 --out $out/songs.h5 $fortunes/songs-poems
mkdir -p $out/categories
for c in people politics science work; do
    awk '{ print } /^%$/ { if (++k == 600) exit }' $fortunes/$c > $out/categories/$c
done
$FNN prepare --kind records --val-fraction 0.15 --out $out/categories.h5 \
    $out/categories/people $out/categories/politics $out/categories/science $out/categories/work
# The training records of categories.h5 (the first 600 - floor(600 x 0.15) = 510 of each file),
# their last 15% held out for the choices of c'.
mkdir -p $out/select
for c in people politics science work; do
    awk '{ print } /^%$/ { if (++k == 510) exit }' $out/categories/$c > $out/select/$c
done
$FNN prepare --kind records --val-fraction 0.15 --out $out/select.h5 \
    $out/select/people $out/select/politics $out/select/science $out/select/work
sh tools/duffing.sh 20000 1 > $out/duffing.csv
$FNN prepare --kind csv --inputs 1 --val-fraction 0.2 --out $out/duffing.h5 $out/duffing.csv

# a. Pretraining.
rm -rf $out/lm
if [ "${KEEP_PRETRAIN:-0}" = 1 ] && [ -f $out/pretrain/latest ] && [ -f $out/pretrain.log ]; then
    value=$(grep '^val:' $out/pretrain.log | sed -n 's/.*  bpc \([^ ]*\).*/\1/p')
    echo "| a | pretrained LM, val split of the pretraining text (earlier run) | 2 | bpc | $value | - |" >> $rows
else
    rm -rf $out/pretrain
    row a pretrain bpc "pretrained LM, val split of the pretraining text" 2 \
        $MPIRUN -np 2 $FNN train --config configs/pretrain.ini --set eval_every=250 --set metrics=$out/pretrain.jsonl
fi
ckpt=$out/pretrain/$(cat $out/pretrain/latest 2>/dev/null)

# b. Held-out category: songs-poems.
if want b; then
    row b lm-pretrained bpc "songs-poems: pretrained LM as it is (no step on songs-poems)" 1 \
        $FNN eval --checkpoint $ckpt --data $out/songs.h5
    row b lm-finetune bpc "songs-poems: pretrained LM fine-tuned, 400 steps" 1 \
        $FNN train --config configs/finetune-lm.ini --set init_from=$ckpt --set eval_every=50 --set metrics=$out/lm-finetune.jsonl
    row b lm-scratch bpc "songs-poems: same model from scratch, 400 steps" 1 \
        $FNN train --config configs/finetune-lm.ini --set init_from= --set ckpt_dir= --set eval_every=50 --set metrics=$out/lm-scratch.jsonl
fi

# c. Category of a record.
if want c; then
    row "c (i)" cls-ridge accuracy "ridge head on frozen pretrained features (no gradient step; ridge_lambda 1e-3)" 2 \
        $MPIRUN -np 2 $FNN train --config configs/finetune-classify.ini --set init_from=$ckpt \
        --set head_ridge=true --set steps=0
    # A build without the closed-form head accepts head_ridge and trains nothing: no row then.
    if [ -f $out/cls-ridge.log ] && ! grep -q '^ridge head:' $out/cls-ridge.log; then
        sed -i '$ d' $rows
        echo "| c (i) | ridge head on frozen pretrained features | 2 | accuracy | not run: no ridge fit in this build | - |" >> $rows
        failed=$((failed + 1))
    fi
    row "c (ii)" cls-finetune accuracy "new head alone 100 steps, then everything, 400 steps in all" 2 \
        $MPIRUN -np 2 $FNN train --config configs/finetune-classify.ini --set init_from=$ckpt
    row "c (iii)" cls-scratch accuracy "same architecture from scratch, 400 steps" 2 \
        $MPIRUN -np 2 $FNN train --config configs/finetune-classify.ini --set init_from= \
        --set new_head=false --set head_only_steps=0 --set body_lr_scale=1 --set l2_init=0
    # The majority class of the val split, as the run of row (iii) counts it (its confusion rows).
    maj=$(grep '^val:' $out/cls-scratch.log | sed -n 's/.*  majority \([^ ]*\).*/\1/p')
    echo "| c (iv) | majority class of the val split (classes balanced) | - | accuracy | ${maj:-not run} | 0 |" >> $rows
fi

# Rows c' and c'': train on select.h5 (the training records less the held-out ones), scoring those
# every 20 steps and stopping after 5 scores without a better one (early_train), then score the
# checkpoint of the best held-out loss once on the reported validation split (best_eval).
early_train() {
    run=$out/$1; shift
    rm -rf $run
    $MPIRUN -np 2 $FNN train --config configs/finetune-classify.ini --set data=$out/select.h5 \
        --set eval_every=20 --set early_stop=5 --set ckpt_dir=$run --set ckpt_keep_best=true \
        --set metrics=$run.jsonl "$@"
}
best_eval() { $FNN eval --checkpoint $out/$1/$(head -n 1 $out/$1/best) --data $out/categories.h5; }
early() { early_train "$@" && best_eval $1; }
scratch="--set init_from= --set new_head=false --set head_only_steps=0 --set body_lr_scale=1 --set l2_init=0"

# c'. ridge_lambda: the most accurate on the held-out training records of a fit on the others
# (among equals, the lowest loss).
if want sel; then
    for lambda in 1e-3 1e-2 1e-1 1 10 100 1e3 1e4; do
        $MPIRUN -np 2 $FNN train --config configs/finetune-classify.ini --set init_from=$ckpt --set head_ridge=true \
            --set steps=0 --set data=$out/select.h5 --set ridge_lambda=$lambda > $out/select-ridge-$lambda.log 2>&1 &&
            grep '^val:' $out/select-ridge-$lambda.log | sed -n "s/.*  loss \([^ ]*\)  accuracy \([^ ]*\).*/$lambda \2 \1/p"
    done > $out/select-ridge.txt
    best_lambda=$(sort -k2,2gr -k3,3g $out/select-ridge.txt | head -n 1 | cut -d' ' -f1)
    echo "ridge_lambda on the held-out training records (lambda accuracy loss):"; cat $out/select-ridge.txt
    row "c (i')" cls-ridge-select accuracy "ridge head, ridge_lambda ${best_lambda:-(none)} chosen on held-out training records" 2 \
        $MPIRUN -np 2 $FNN train --config configs/finetune-classify.ini --set init_from=$ckpt \
        --set head_ridge=true --set steps=0 --set ridge_lambda=${best_lambda:-none}
    row "c (ii')" cls-finetune-select accuracy "as (ii), the checkpoint of the best held-out score (eval_every 20, early_stop 5)" 2 \
        early cls-finetune-select --set init_from=$ckpt
    row "c (iii')" cls-scratch-select accuracy "as (iii), the checkpoint of the best held-out score (eval_every 20, early_stop 5)" 2 \
        early cls-scratch-select $scratch
fi

# c''. The runs of c' (ii', iii') with dropout. Each of them trains at every (dropout,
# dropout_recurrent) of the grid; the one of the lowest best held-out loss (the score its early
# stopping chose a checkpoint by, on the held-out training records) is scored once on the reported
# split, the others never are. Inputs of the head are dropped (dropout; the model has one layer)
# and, in half the grid, the recurrent input too (dropout_recurrent, one mask per window).
if want drop; then
    for kind in finetune scratch; do
        [ $kind = finetune ] && args="--set init_from=$ckpt" || args=$scratch
        for p in "0.2 0" "0.3 0" "0.2 0.2" "0.3 0.3" "0.4 0.4" "0.5 0.5"; do
            set -- $p
            name=cls-$kind-drop-$1-$2
            t0=$(date +%s)
            # Word splitting of $args is meant: it holds several options.
            # shellcheck disable=SC2086
            early_train $name $args --set dropout=$1 --set dropout_recurrent=$2 > $out/$name.log 2>&1 &&
                echo "$1 $2 $(sed -n 2p $out/$name/best) $(sed -n 1p $out/$name/best | sed 's/step-0*\([0-9]*\).h5/\1/') $(sed -n 's/^early stop at step \([0-9]*\).*/\1/p' $out/$name.log) $(( $(date +%s) - t0 ))" ||
                failed=$((failed + 1))
        done > $out/select-drop-$kind.txt
        # A run that fails is missing from the choice and counts as failed.
        echo "dropout on the held-out training records, $kind (dropout dropout_recurrent best-loss at-step stopped-at s):"
        cat $out/select-drop-$kind.txt
    done
    pick() { sort -k3,3g $out/select-drop-$1.txt | head -n 1; }
    set -- $(pick finetune)
    drop_finetune=cls-finetune-drop-${1:-none}-${2:-none}
    row "c (ii'')" cls-finetune-drop accuracy "as (ii'), dropout ${1:-?} dropout_recurrent ${2:-?} chosen on held-out training records" 2 \
        best_eval $drop_finetune
    set -- $(pick scratch)
    drop_scratch=cls-scratch-drop-${1:-none}-${2:-none}
    row "c (iii'')" cls-scratch-drop accuracy "as (iii'), dropout ${1:-?} dropout_recurrent ${2:-?} chosen on held-out training records" 2 \
        best_eval $drop_scratch
fi

# d. Dense regression: the fed-back previous position, or none.
if want d; then
    row d duffing-target mse "feedback = all, feedback_source = target (previous observed x)" 1 \
        $FNN train --config configs/regress-duffing.ini
    row d duffing-model mse "feedback = all, feedback_source = model (its own previous output)" 1 \
        $FNN train --config configs/regress-duffing.ini --set feedback_source=model
    row d duffing-none mse "feedback = none" 1 \
        $FNN train --config configs/regress-duffing.ini --set feedback=none
    # Baselines on the same windows of 64 rows: x_t predicted by x_{t-1} (the training mean at the
    # first row of a window, where nothing has been observed), and by the training mean.
    awk -F, -v cut=16000 -v T=64 '
        NR <= cut { s += $2; n++; next }
        { i = NR - cut - 1; if (i >= int((20000 - cut) / T) * T) next; m = s / n
          p = i % T ? prev : m; e += ($2 - p)^2; f += ($2 - m)^2; k++; prev = $2 }
        END { printf "| d | baseline: previous observed x (mean at a window'"'"'s first row) | - | mse | %.6g | 0 |\n", e / k
              printf "| d | baseline: the training mean | - | mse | %.6g | 0 |\n", f / k }' $out/duffing.csv >> $rows
fi

# The curves: losses and tokens/s against the step.
if want b; then
    # A kept pretraining of a run before the metrics has none.
    if [ -f $out/pretrain.jsonl ]; then
        set -- --names "pretraining (a),fine-tuned (b),scratch (b)" $out/pretrain.jsonl
    else
        set -- --names "fine-tuned (b),scratch (b)"
    fi
    $FNN plot --out $out/lm.png "$@" $out/lm-finetune.jsonl $out/lm-scratch.jsonl || failed=$((failed + 1))
fi
if want sel; then
    $FNN plot --out $out/classify.png --names "staged fine-tuning (ii'),scratch (iii')" \
        $out/cls-finetune-select.jsonl $out/cls-scratch-select.jsonl || failed=$((failed + 1))
fi
if want drop; then
    # Beside the runs of c' without dropout when there are some (an earlier ONLY=sel run's).
    names="staged + dropout (ii''),scratch + dropout (iii'')"
    set -- $out/$drop_finetune.jsonl $out/$drop_scratch.jsonl
    if [ -f $out/cls-finetune-select.jsonl ] && [ -f $out/cls-scratch-select.jsonl ]; then
        names="staged (ii'),scratch (iii'),$names"
        set -- $out/cls-finetune-select.jsonl $out/cls-scratch-select.jsonl "$@"
    fi
    $FNN plot --out $out/classify-dropout.png --names "$names" "$@" || failed=$((failed + 1))
fi

{
    echo "| row | run | ranks | measure (val) | value | s |"
    echo "|---|---|---|---|---|---|"
    cat $rows
} > $out/results.md
echo
cat $out/results.md
[ $failed -eq 0 ] || { echo "$failed runs failed: their rows say why"; exit 1; }
