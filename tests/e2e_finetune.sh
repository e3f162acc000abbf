#!/bin/sh
# Fine-tuning end to end: a byte-level LM trained at np=2 tp=2 becomes a classifier and a dense
# regressor at np=1 (every transferred tensor bit-identical to the checkpoint's, new Wf zero, the
# head of the new shape); frozen tensors stay bit-identical while training; head_only_steps
# switches at exactly step N; what cannot transfer is refused in one line.
set -u
FNN=build/fnn
dir=build/tiny_ft
fails=0
rm -rf $dir && mkdir -p $dir
say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; fails=$((fails + 1)); }
run() { timeout 120 "$@"; }
mpi() { np=$1; shift; run $MPIRUN -np "$np" "$@"; }
# Datasets of /params that two checkpoints hold with equal values (h5diff compares exactly).
same() { h5diff -q "$1" "$2" "/params/$3" "/params/$3" > /dev/null 2>&1; }
shape() { h5ls "$1/params/$2" | sed -n 's/.*Dataset {\(.*\)}.*/\1/p'; }
# Every element of a dataset is zero.
zero() { h5dump -d "/params/$2" -y -w 0 "$1" | sed -n '/DATA {/,$p' | grep -o -- '-\?[0-9][0-9.e+-]*' | awk '$1 != 0 { bad = 1 } END { exit bad }'; }
refuse() {
    what=$1; shift; name=$1; shift
    run "$@" > $dir/out.txt 2> $dir/err.txt; rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then fail "$what: exit $rc"; return; fi
    n=$(grep -c 'fnn: error:' $dir/err.txt)
    if [ "$n" -ne 1 ] || ! grep 'fnn: error:' $dir/err.txt | grep -q -- "$name"; then
        fail "$what: expected one error naming '$name', got: $(head -3 $dir/err.txt)"
    else
        say "ok   refused: $what: $(grep 'fnn: error:' $dir/err.txt)"
    fi
}

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
$FNN prepare --kind records --val-fraction 0.2 --out $dir/recs.h5 /usr/share/games/fortunes/science /usr/share/games/fortunes/love /usr/share/games/fortunes/art > /dev/null || fail "prepare records"
# A driven map: input u_t, target y_t = 0.8 y_{t-1} + 0.5 tanh(u_t).
awk 'BEGIN { srand(3); y = 0; for (i = 0; i < 3000; i++) { u = 2 * rand() - 1; y = 0.8 * y + 0.5 * (exp(2 * u) - 1) / (exp(2 * u) + 1); printf "%.6f,%.6f\n", u, y } }' > $dir/map.csv
$FNN prepare --kind csv --inputs 1 --val-fraction 0.2 --out $dir/map.h5 $dir/map.csv > /dev/null || fail "prepare csv"

cfg="--config configs/tiny.ini"
mpi 2 $FNN train $cfg --set tp=2 --set data=$dir/text.h5 --set ckpt_dir=$dir/lm > $dir/pre.txt 2>&1 || fail "pretrain np=2 tp=2"
ck=$dir/lm/step-00000020.h5

# lm -> classify at np=1. lr = 0: the checkpoint of step 1 holds the parameters as loaded.
mpi 1 $FNN train $cfg --set task=classify --set data=$dir/recs.h5 --set init_from=$ck --set new_head=true \
    --set lr=0 --set steps=1 --set ckpt_dir=$dir/cls > $dir/cls.txt 2>&1 || fail "lm -> classify"
got=$dir/cls/step-00000001.h5
for t in embed layer0/Wx layer0/Wh layer0/b layer1/Wx layer1/Wh layer1/b; do
    same $ck $got $t || fail "lm -> classify: $t differs from the checkpoint's"
    grep -qx "loaded $t" $dir/cls.txt || fail "lm -> classify: no 'loaded $t' line"
done
for t in layer0/Wf layer1/Wf; do
    zero $got $t && [ "$(shape $got $t)" = "32, 3" ] || fail "lm -> classify: $t is not a zero 32 x 3"
done
[ "$(shape $got head/Wo)" = "3, 32" ] && [ "$(shape $got head/bo)" = "3" ] || fail "lm -> classify: head $(shape $got head/Wo)"
grep -qx "new head/Wo (outputs 256 -> 3)" $dir/cls.txt && grep -qx "new layer1/Wf (outputs 256 -> 3; zero)" $dir/cls.txt \
    && say "ok   lm (np=2 tp=2) -> classify (np=1): 7 tensors bit-identical, Wf zero 32 x 3, head 3 x 32" || fail "lm -> classify lines: $(grep -E '^(new|loaded)' $dir/cls.txt)"

# lm -> regress (dense input): layer0/Wx is new, no embedding; Wh, b and layer 1 transfer.
mpi 1 $FNN train $cfg --set task=regress --set data=$dir/map.h5 --set init_from=$ck --set new_head=true \
    --set lr=0 --set steps=1 --set ckpt_dir=$dir/reg > $dir/reg.txt 2>&1 || fail "lm -> regress"
got=$dir/reg/step-00000001.h5
for t in layer0/Wh layer0/b layer1/Wx layer1/Wh layer1/b; do same $ck $got $t || fail "lm -> regress: $t differs"; done
[ "$(shape $got layer0/Wx)" = "32, 1" ] && ! h5ls $got/params/embed > /dev/null 2>&1 && zero $got layer0/Wf \
    && grep -q "^new layer0/Wx (input tokens (embed 16) -> dense (1 inputs))" $dir/reg.txt && grep -q "^dropped embed" $dir/reg.txt \
    && say "ok   lm -> regress: new layer0/Wx 32 x 1, no embedding, 5 tensors bit-identical" || fail "lm -> regress: $(grep -E '^(new|dropped)' $dir/reg.txt)"

# classify -> classify with other classes (2 instead of 3), at np=2 tp=2 from the np=1 classifier.
$FNN prepare --kind records --val-fraction 0.2 --out $dir/recs2.h5 /usr/share/games/fortunes/science /usr/share/games/fortunes/love > /dev/null
mpi 2 $FNN train $cfg --set tp=2 --set task=classify --set data=$dir/recs2.h5 --set init_from=$dir/cls/step-00000001.h5 --set new_head=true \
    --set lr=0 --set steps=1 --set ckpt_dir=$dir/cls2 > $dir/cls2.txt 2>&1 || fail "classify -> classify"
for t in embed layer0/Wx layer0/Wh layer1/Wh; do same $ck $dir/cls2/step-00000001.h5 $t || fail "classify -> classify: $t differs"; done
[ "$(shape $dir/cls2/step-00000001.h5 head/Wo)" = "2, 32" ] && grep -qx "new head/Wo (outputs 3 -> 2)" $dir/cls2.txt \
    && say "ok   classify (3 classes) -> classify (2) at np=2 tp=2" || fail "classify -> classify head"

# Same task, no new head: every tensor loads (the happy path of init_from).
mpi 1 $FNN train $cfg --set data=$dir/text.h5 --set init_from=$ck --set lr=0 --set steps=1 --set ckpt_dir=$dir/same > $dir/same.txt 2>&1 || fail "init_from lm -> lm"
n=0; for t in embed layer0/Wx layer0/Wh layer0/Wf layer0/b layer1/Wx layer1/Wh layer1/Wf layer1/b head/Wo head/bo; do
    same $ck $dir/same/step-00000001.h5 $t && n=$((n + 1)); done
[ $n -eq 11 ] && ! grep -q '^new ' $dir/same.txt && say "ok   init_from lm -> lm: all 11 tensors loaded bit-identical" || fail "init_from lm -> lm: $n of 11"

# Refusals: one line naming both values by name.
refuse "init_from other hidden" "hidden = 32 there, 16 here" $FNN train $cfg --set hidden=16 --set data=$dir/text.h5 --set init_from=$ck
refuse "init_from other layers" "layers = 2 there, 1 here" $FNN train $cfg --set layers=1 --set data=$dir/text.h5 --set init_from=$ck
refuse "init_from other activation" "activation = tanh there, relu here" $FNN train $cfg --set activation=relu --set data=$dir/text.h5 --set init_from=$ck
refuse "task change without new_head" "task = lm there, classify here" $FNN train $cfg --set task=classify --set data=$dir/recs.h5 --set init_from=$ck
refuse "token -> dense without new_head" "input = tokens (embed 16) there, dense (1 inputs) here" \
    $FNN train $cfg --set task=regress --set data=$dir/map.h5 --set init_from=$ck
refuse "other embedding without new_head" "input = tokens (embed 16) there, tokens (embed 8) here" \
    $FNN train $cfg --set embed=8 --set data=$dir/text.h5 --set init_from=$ck
refuse "init_from other layers at np=2" "layers = 2 there, 3 here" $MPIRUN -np 2 $FNN train $cfg --set tp=2 --set layers=3 --set data=$dir/text.h5 --set init_from=$ck

[ $fails -eq 0 ] && say "e2e_finetune: all checks passed" || say "e2e_finetune: $fails failed"
exit $((fails != 0))
