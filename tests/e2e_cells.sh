#!/bin/sh
# Every cell of the registry (as fnn train --help lists the values of `cell`) end to end, at
# np = 2: a checkpoint given to a run of the next cell (resume or init_from) is refused with one
# line naming both cells; activation = relu is refused by name for a cell with its own
# nonlinearities, and trains where the refusals say it applies; an LM carrying its state trains,
# and resumed from its step-10 checkpoint ends with parameters, moments and carried state
# identical to the uninterrupted run's (h5diff, exact); with several gates, freezing one gate's
# tensor keeps its gradient out of the norm; eval and sample work on its checkpoint.
dir=build/cellse2e
data=text.h5
. tests/lib.sh

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
cells=$($FNN train --help | sed -n 's/^  cell  *[a-z]* (\([a-z|]*\)).*/\1/p' | tr '|' ' ')
[ -n "$cells" ] || fail "no cells in fnn train --help"
say "cells: $cells"
set -- $cells
first=$1 acts= applies=

for cell in $cells; do
    shift
    other=${1:-$first}
    # Uninterrupted, and resumed at step 10 into another directory: the same step-20 file.
    run="--set cell=$cell --set carry_state=true --set ckpt_every=10"
    train 2 $run --set ckpt_dir=$dir/$cell > $dir/$cell.txt 2>&1 || fail "train $cell"
    train 2 $run --set ckpt_dir=$dir/$cell-resumed --set resume=$dir/$cell/step-00000010.h5 \
        > $dir/$cell-resumed.txt 2>&1 || fail "resume $cell"
    a=$dir/$cell/step-00000020.h5; b=$dir/$cell-resumed/step-00000020.h5
    for set in /params /optim/m /optim/v /train/state; do
        if h5diff -q $a $b $set $set > $dir/diff.txt 2>&1; then
            say "ok   $cell resumed at step 10: $set at step 20 identical to the uninterrupted run's"
        else
            fail "$cell resumed at step 10: $set differs: $(head -3 $dir/diff.txt)"
        fi
    done

    refuse "$cell checkpoint resumed as $other" "$a was made for another model: cell = $cell there, $other here\$" \
        train 2 --set cell=$other --set resume=$a --set ckpt_dir=$dir/x
    refuse "$cell checkpoint as init_from of $other" "init_from = $a: cell = $cell there, $other here\$" \
        train 2 --set cell=$other --set init_from=$a --set ckpt_dir=$dir/y

    # activation: refused by name, or the cell is among those the refusals say it applies to.
    if train 2 --set cell=$cell --set activation=relu --set steps=2 > $dir/act.txt 2> $dir/act_err.txt; then
        acts="$acts $cell"
    else
        refuse "$cell with activation = relu" "activation = relu: the $cell cell has its own nonlinearities (activation applies to cell = [a-z|]*)\$" \
            train 2 --set cell=$cell --set activation=relu
        applies=$(sed -n 's/.*applies to cell = \([a-z|]*\)).*/\1/p' $dir/err.txt | tr '|' ' ')
    fi

    # A frozen gate stays out of the gradient norm (its rows' gradient is formed with the other
    # gates' of the same columns): freezing layer0/Wh_<first gate> lowers the step-1 norm below
    # freezing the embedding alone, and freezing every gate's Wh lowers it further.
    gate=$(h5ls $a/params/layer0 | sed -n 's/^Wh_\([a-z]*\) .*/\1/p' | head -1)
    if [ -n "$gate" ]; then
        for f in embed layer0/Wh_$gate,embed layer0/Wh,embed; do
            train 1 --set cell=$cell --set init_from=$a --set freeze=$f --set steps=1 --set log_every=1 \
                --set metrics=$dir/freeze.jsonl > /dev/null 2>&1 || fail "$cell init_from with freeze = $f"
            sed -n 's/.*"grad_norm": \([^,]*\),.*/\1/p' $dir/freeze.jsonl
        done > $dir/norms.txt
        if awk 'NR == 1 { a = $1 } NR == 2 { b = $1 } NR == 3 { c = $1 } END { exit !(NR == 3 && a > b && b > c) }' $dir/norms.txt; then
            say "ok   $cell step-1 gradient norms: freeze embed > + layer0/Wh_$gate > + every gate's Wh: $(tr '\n' ' ' < $dir/norms.txt)"
        else
            fail "$cell gradient norms with freeze = embed, + layer0/Wh_$gate, + layer0/Wh not decreasing: $(tr '\n' ' ' < $dir/norms.txt)"
        fi
    fi

    mpi 1 $FNN eval --checkpoint $a --data $dir/text.h5 > $dir/eval.txt || fail "eval $cell"
    grep -q '^loss [0-9.]* .*bpc [0-9.]*' $dir/eval.txt && say "ok   eval of the $cell checkpoint: $(head -1 $dir/eval.txt)" ||
        fail "eval of the $cell checkpoint printed: $(head -3 $dir/eval.txt)"
    mpi 1 $FNN sample --checkpoint $a --length 40 --prompt "Unix " > $dir/sample.txt || fail "sample $cell"
    n=$(wc -c < $dir/sample.txt)
    [ "$n" -ge 40 ] && say "ok   sample of the $cell checkpoint: $n bytes" || fail "$cell sample gave $n bytes"
done
if [ -n "$acts" ] && [ "$(echo $acts)" = "$(echo ${applies:-$acts})" ]; then
    say "ok   activation = relu trains with cell =$acts, where the refusals say it applies"
else
    fail "activation = relu trains with cell =$acts, the refusals say it applies to $applies"
fi

say "e2e_cells: $fails failures"
[ $fails -eq 0 ]
