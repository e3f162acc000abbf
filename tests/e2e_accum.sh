#!/bin/sh
# accum_steps end to end: fnn train of one global batch (4) on 2 ranks in one pass per step and on
# 1 rank in 2 micro-batches (the same rows, drawn by global row), with carried state, the mix and
# noise, and validation during training, prints the same losses and gradient norms at every step
# and the same validation loss, to float rounding (the trajectories of every cell and task at
# np 1, 2, 4: tests/test_accum.c); an accum_steps that does not divide a replica's rows, or
# below 1, is refused at np = 2 with one line naming the key and the values.
dir=build/accumE2e
data=text.h5
. tests/lib.sh

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
run="--set carry_state=true --set feedback_source=mix --set teacher_prob=0.5 --set feedback_noise=0.3 --set eval_every=10 --set eval_windows=6"
# step, loss and grad_norm of each step's metrics line, and each validation loss
steps() { python3 -c "
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    print(r['step'], *(repr(r[k]) for k in ('loss', 'grad_norm', 'val_loss') if k in r))" "$1"; }

train 2 $run --set metrics=$dir/m21.jsonl > $dir/t21.txt 2>&1 || fail "train np=2 accum_steps=1"
train 1 $run --set accum_steps=2 --set metrics=$dir/m12.jsonl > $dir/t12.txt 2>&1 || fail "train np=1 accum_steps=2"
steps $dir/m21.jsonl > $dir/s21.txt
steps $dir/m12.jsonl > $dir/s12.txt
# The worst relative difference of the two runs' numbers, line by line ("mismatched": other
# steps or keys).
worst=$(python3 -c "
import sys
a, b = (open(f).read().split('\\n') for f in sys.argv[1:])
if len(a) != len(b) or len(a) < 20: print('mismatched'); sys.exit()
w = 0
for x, y in zip(a, b):
    x, y = x.split(), y.split()
    if len(x) != len(y) or x[:1] != y[:1]: print('mismatched'); sys.exit()
    w = max([w] + [abs(float(p) - float(q)) / max(abs(float(p)), abs(float(q))) for p, q in zip(x[1:], y[1:])])
print('%.2e' % w)" $dir/s21.txt $dir/s12.txt)
if [ "$worst" != mismatched ] && awk -v w="$worst" 'BEGIN { exit !(w <= 1e-5) }'; then
    say "ok   np=1 accum_steps=2 follows np=2: $(wc -l < $dir/s21.txt) steps and scores, worst relative difference $worst"
else
    fail "np=1 accum_steps=2 differs from np=2 (worst $worst): $(diff $dir/s21.txt $dir/s12.txt | head -3)"
fi

refuse "not dividing a replica's rows" "accum_steps = 3 does not divide the 2 rows of each of the 2 data-parallel replicas (batch = 4)" train 2 --set accum_steps=3
refuse "more than a replica's rows" "accum_steps = 4 does not divide the 2 rows" train 2 --set accum_steps=4
refuse "zero" "accum_steps" train 2 --set accum_steps=0

say "e2e_accum: $fails failures"
[ $fails -eq 0 ]
