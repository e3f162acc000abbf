#!/bin/sh
# bptt_memory end to end: fnn train at np = 2 (tp 2, and dp 2) with the mix, noise and carried
# state prints the same loss and gradient norm at every step with segments of sqrt(seq_len) and
# of 5 steps (not dividing seq_len) as when it keeps every step (the gradients are bit-identical,
# tests/test_bptt.c); bad values are refused at np = 4 with one line naming the key.
dir=build/bpttE2e
data=text.h5
. tests/lib.sh

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
run="--set seq_len=32 --set carry_state=true --set feedback_source=mix --set teacher_prob=0.5 --set feedback_noise=0.3"
# step, loss and grad_norm of each metrics line
steps() { python3 -c "import json, sys; [print(r['step'], repr(r['loss']), repr(r['grad_norm'])) for r in map(json.loads, open(sys.argv[1]))]" "$1"; }

for tp in 2 1; do
    for k in all sqrt 5; do
        train 2 $run --set tp=$tp --set bptt_memory=$k --set metrics=$dir/m$tp$k.jsonl > $dir/t$tp$k.txt 2>&1 || fail "train tp=$tp bptt_memory=$k"
        steps $dir/m$tp$k.jsonl > $dir/s$tp$k.txt
    done
    for k in sqrt 5; do
        if [ -s $dir/s${tp}all.txt ] && cmp -s $dir/s${tp}all.txt $dir/s$tp$k.txt; then
            say "ok   np=2 tp=$tp bptt_memory=$k: $(wc -l < $dir/s$tp$k.txt) steps' loss and gradient norm equal all's"
        else
            fail "np=2 tp=$tp bptt_memory=$k differs from all: $(diff $dir/s${tp}all.txt $dir/s$tp$k.txt | head -2)"
        fi
    done
done

refuse "segments longer than seq_len" "bptt_memory = 33: must be all, sqrt or a number of steps 1..seq_len (32)" train 4 --set seq_len=32 --set bptt_memory=33
refuse "zero" "bptt_memory = 0: must be" train 4 --set bptt_memory=0
refuse "negative" "bptt_memory = -4: must be" train 4 --set bptt_memory=-4
refuse "not a number" "bptt_memory = half: must be" train 4 --set bptt_memory=half
refuse "with the ridge fit" "bptt_memory = sqrt with head_ridge = true" train 4 --set bptt_memory=sqrt --set init_from=x.h5 --set new_head=true --set head_ridge=true

say "e2e_bptt: $fails failures"
[ $fails -eq 0 ]
