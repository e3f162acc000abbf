#!/bin/sh
# Fine-tuning end to end: a byte-level LM trained at np=2 tp=2 becomes a classifier and a dense
# regressor at np=1 (every transferred tensor bit-identical to the checkpoint's, new Wf zero, the
# head of the new shape); frozen tensors stay bit-identical while training; head_only_steps
# switches at exactly step N; what cannot transfer is refused in one line.
dir=build/tiny_ft
bound=120
. tests/lib.sh
# The values of a /params dataset, one a line.
vals() { h5dump -A 0 -d "/params/$2" -y -w 0 -m '%.9g' "$1" | sed -n '/DATA {/,$p' | grep -o -- '-\?[0-9][0-9.e+-]*'; }
# Datasets of /params that two checkpoints hold with equal values (h5diff compares exactly).
same() { h5diff -q "$1" "$2" "/params/$3" "/params/$3" > /dev/null 2>&1; }
shape() { h5ls "$1/params/$2" | sed -n 's/.*Dataset {\(.*\)}.*/\1/p'; }
# Every element of a dataset is zero.
zero() { h5dump -A 0 -d "/params/$2" -y -w 0 "$1" | sed -n '/DATA {/,$p' | grep -o -- '-\?[0-9][0-9.e+-]*' | awk '$1 != 0 { bad = 1 } END { exit bad }'; }

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

# lm -> regress with head_only_steps = 2: the new input projection layer0/Wx trains in the head
# stage with the head (it must not stay random), the transferred body stays bit-identical.
mpi 1 $FNN train $cfg --set task=regress --set data=$dir/map.h5 --set init_from=$ck --set new_head=true \
    --set head_only_steps=2 --set steps=2 --set lr=1e-2 --set ckpt_dir=$dir/regho > $dir/regho.txt 2>&1 || fail "lm -> regress, head_only_steps"
got=$dir/regho/step-00000002.h5; n=0
for t in layer0/Wh layer0/b layer1/Wx layer1/Wh layer1/b; do same $ck $got $t && n=$((n + 1)); done
[ $n -eq 5 ] && ! same $dir/reg/step-00000001.h5 $got layer0/Wx \
    && say "ok   lm -> regress, head_only_steps = 2: new layer0/Wx trained in the head stage, 5 body tensors bit-identical" || fail "lm -> regress head stage: $n of 5 body tensors unchanged, or layer0/Wx did not train"

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

# freeze (happy path): layer 0 and the embedding stay bit-identical through 5 Adam steps at
# np=2 (dp = 2), the rest moves.
cls="--set task=classify --set data=$dir/recs.h5 --set init_from=$ck --set new_head=true"
mpi 2 $FNN train $cfg $cls --set freeze=layer0,embed --set steps=5 --set lr=1e-2 --set ckpt_dir=$dir/frz > $dir/frz.txt 2>&1 || fail "freeze run"
got=$dir/frz/step-00000005.h5
n=0; for t in embed layer0/Wx layer0/Wh layer0/b; do same $ck $got $t && n=$((n + 1)); done
zero $got layer0/Wf && [ $n -eq 4 ] && ! same $ck $got layer1/Wh && ! zero $got layer1/Wf && ! h5ls $got/optim/m/layer0 > /dev/null 2>&1 \
    && say "ok   freeze = layer0,embed at np=2: 5 frozen tensors unchanged after 5 steps (no optimiser state saved), layer 1 trained" || fail "freeze: $n of 4 unchanged"

# head_only_steps = 3: steps 1-3 change only the head and Wf, step 4 the body too.
mpi 1 $FNN train $cfg $cls --set head_only_steps=3 --set steps=4 --set lr=1e-2 --set ckpt_dir=$dir/ho --set ckpt_every=1 --set ckpt_keep=4 --set metrics=$dir/ho.jsonl > $dir/ho.txt 2>&1 || fail "head_only run"
h3=$dir/ho/step-00000003.h5; h4=$dir/ho/step-00000004.h5
n3=0; n4=0; for t in embed layer0/Wx layer0/Wh layer0/b layer1/Wx layer1/Wh layer1/b; do
    same $ck $h3 $t && n3=$((n3 + 1)); same $ck $h4 $t || n4=$((n4 + 1)); done
[ $n3 -eq 7 ] && [ $n4 -eq 7 ] && ! zero $h3 layer1/Wf && ! same $dir/ho/step-00000002.h5 $h3 head/Wo && grep -q "^step 4: head_only_steps = 3 done" $dir/ho.txt \
    && say "ok   head_only_steps = 3: body bit-identical after step 3 (head and Wf moved), all 7 body tensors moved at step 4" || fail "head_only_steps: unchanged after 3: $n3 of 7, changed after 4: $n4 of 7"

# The body's first Adam step (step 4) is a fresh first step, lr g / (|g| + eps): every element
# moves by lr of step 4 (no more; 99% within 1e-3 of it), whatever the 3 steps before it.
# Adam's bias correction counted from step 1 would move it by 0.58 lr.
lr4=$(sed -n 's/^{"step": 4, .*"lr": \([^,]*\),.*/\1/p' $dir/ho.jsonl)
first() { vals $h3 $1 > $dir/v0; vals $h4 $1 > $dir/v1
    paste $dir/v0 $dir/v1 | awk -v lr="$lr4" '{ r = ($2 - $1) / lr; if (r < 0) r = -r; if (r > 1 + 1e-4) big++; if (r > 1 - 1e-3) near++; n++ }
        END { printf "%d of %d", near, n; exit !(lr > 0 && big == 0 && near >= 0.99 * n) }'; }
for t in layer0/Wx layer0/Wh layer1/Wh layer1/Wx; do
    got=$(first $t) && say "ok   head_only_steps = 3: $t's first Adam step at step 4 is lr $lr4 per element ($got)" || fail "head_only_steps: $t's first step is not lr g/|g|: $got within 1e-3 of lr $lr4"
done

# body_lr_scale = 0.5, one SGD step: every transferred tensor moves by half the step of
# body_lr_scale = 1 (to 2 float32 spacings of the largest of p and the two results), the new head
# by the same step.
sgd="--set optimizer=sgd --set momentum=0 --set lr=0.5 --set clip=0 --set steps=1"
mpi 1 $FNN train $cfg $cls $sgd --set ckpt_dir=$dir/s1 > /dev/null 2>&1 || fail "sgd s=1"
mpi 1 $FNN train $cfg $cls $sgd --set body_lr_scale=0.5 --set ckpt_dir=$dir/s05 > /dev/null 2>&1 || fail "sgd s=0.5"
ratio() { vals $ck $1 > $dir/v0; vals $dir/s1/step-00000001.h5 $1 > $dir/v1; vals $dir/s05/step-00000001.h5 $1 > $dir/v2
    paste $dir/v0 $dir/v1 $dir/v2 | awk -v r=$2 '{ d1 = $2 - $1; d2 = $3 - $1; e = d2 - r * d1; if (e < 0) e = -e; u = 0; for (i = 1; i <= 3; i++) u = ($i > u ? $i : -$i > u ? -$i : u); u = u * 2.4e-7 + 1e-12; if (e > u) bad++; if (d1 != 0) moved++ } END { exit !(bad == 0 && moved > 0) }'; }
ratio layer1/Wh 0.5 && ratio embed 0.5 && ratio layer0/b 0.5 && same $dir/s1/step-00000001.h5 $dir/s05/step-00000001.h5 head/Wo \
    && say "ok   body_lr_scale = 0.5: transferred tensors move half as far in one SGD step, the head the same" || fail "body_lr_scale step"

# l2_init and staged unfreezing resume bit for bit: 6 steps straight, or 3 then resume = auto;
# theta0 is in the checkpoint.
l2="$cls --set l2_init=0.5 --set head_only_steps=2 --set freeze=embed --set body_lr_scale=0.5 --set steps=6 --set lr=1e-2"
mpi 2 $FNN train $cfg $l2 --set ckpt_dir=$dir/l2a --set metrics=$dir/l2a.jsonl > /dev/null 2>&1 || fail "l2 run"
mpi 2 $FNN train $cfg $l2 --set ckpt_dir=$dir/l2b --set metrics=$dir/l2b.jsonl --set ckpt_every=3 > /dev/null 2>&1
rm -f $dir/l2b/step-00000006.h5 && printf 'step-00000003.h5' > $dir/l2b/latest
mpi 2 $FNN train $cfg $l2 --set ckpt_dir=$dir/l2b --set resume=auto --set metrics=$dir/l2c.jsonl > $dir/l2c.txt 2>&1 || fail "l2 resume"
h5dump -a /finetune/optim_start $dir/l2b/step-00000003.h5 | grep -q 'layer1/Wh=2,' || fail "optim_start does not record layer1/Wh's start at step 2: $(h5dump -a /finetune/optim_start $dir/l2b/step-00000003.h5 | grep -o '"[^"]*"')"
h5ls $dir/l2b/step-00000003.h5/finetune/theta0/layer1 2>/dev/null | grep -q Wh && ! h5ls $dir/l2b/step-00000003.h5/finetune/theta0/head > /dev/null 2>&1 || fail "theta0 not saved for exactly the transferred tensors"
[ "$(tail -n 1 $dir/l2a.jsonl | cut -d, -f2)" = "$(tail -n 1 $dir/l2c.jsonl | cut -d, -f2)" ] && h5diff -q $dir/l2a/step-00000006.h5 $dir/l2b/step-00000006.h5 /params /params > /dev/null \
    && say "ok   l2_init + head_only_steps + body_lr_scale: resume at step 3 equals 6 straight steps bit for bit" || fail "l2 resume differs: $(tail -n 1 $dir/l2a.jsonl) / $(tail -n 1 $dir/l2c.jsonl)"
# l2_init pulls towards the checkpoint: after the same steps, layer1/Wh is nearer to it.
mpi 2 $FNN train $cfg $cls --set head_only_steps=2 --set freeze=embed --set body_lr_scale=0.5 --set steps=6 --set lr=1e-2 --set ckpt_dir=$dir/l20 > /dev/null 2>&1
dist() { vals $ck layer1/Wh > $dir/v0; vals $1 layer1/Wh > $dir/v1; paste $dir/v0 $dir/v1 | awk '{ s += ($1 - $2)^2 } END { print s }'; }
awk -v a="$(dist $dir/l2a/step-00000006.h5)" -v b="$(dist $dir/l20/step-00000006.h5)" 'BEGIN { exit !(a < b) }' \
    && say "ok   l2_init = 0.5 keeps layer1/Wh nearer the checkpoint ($(dist $dir/l2a/step-00000006.h5) < $(dist $dir/l20/step-00000006.h5))" || fail "l2_init does not pull towards theta0"

# Refusals: one line naming both values by name.
refuse "init_from other hidden" "hidden = 32 there, 16 here" run $FNN train $cfg --set hidden=16 --set data=$dir/text.h5 --set init_from=$ck
refuse "init_from other layers" "layers = 2 there, 1 here" run $FNN train $cfg --set layers=1 --set data=$dir/text.h5 --set init_from=$ck
refuse "init_from other activation" "activation = tanh there, relu here" run $FNN train $cfg --set activation=relu --set data=$dir/text.h5 --set init_from=$ck
refuse "task change without new_head" "task = lm there, classify here" run $FNN train $cfg --set task=classify --set data=$dir/recs.h5 --set init_from=$ck
refuse "token -> dense without new_head" "input = tokens (embed 16) there, dense (1 inputs) here" run \
    $FNN train $cfg --set task=regress --set data=$dir/map.h5 --set init_from=$ck
refuse "other embedding without new_head" "input = tokens (embed 16) there, tokens (embed 8) here" run \
    $FNN train $cfg --set embed=8 --set data=$dir/text.h5 --set init_from=$ck
refuse "init_from other layers at np=2" "layers = 2 there, 3 here" mpi 2 $FNN train $cfg --set tp=2 --set layers=3 --set data=$dir/text.h5 --set init_from=$ck

refuse "head_only_steps without new_head" "head_only_steps = 3: no new head, Wf or input to train (set new_head = true)" run \
    $FNN train $cfg --set data=$dir/text.h5 --set init_from=$ck --set head_only_steps=3
refuse "head_only_steps with the head frozen" "head_only_steps = 3: no new head, Wf or input to train (freeze names them)" run \
    $MPIRUN -np 2 $FNN train $cfg $cls --set head_only_steps=3 --set freeze=head,layer0/Wf,layer1/Wf
refuse "freeze of everything" "freeze = layer0,layer1,head,embed: leaves nothing to train" run \
    $MPIRUN -np 2 $FNN train $cfg $cls --set freeze=layer0,layer1,head,embed
refuse "freeze of nothing there" "freeze = layer2: no tensor or layer 'layer2'" run $FNN train $cfg $cls --set freeze=layer2
refuse "body_lr_scale = 0" "body_lr_scale = 0: must be in (0, 1]" run $FNN train $cfg $cls --set body_lr_scale=0
refuse "body_lr_scale > 1" "body_lr_scale = 1.5: must be in (0, 1]" run $FNN train $cfg $cls --set body_lr_scale=1.5
refuse "l2_init < 0" "l2_init = -1: must be >= 0" run $FNN train $cfg $cls --set l2_init=-1
refuse "l2_init without init_from" "l2_init = 0.5 needs init_from" run $FNN train $cfg --set data=$dir/text.h5 --set l2_init=0.5
refuse "head_only_steps without init_from" "head_only_steps = 2 needs init_from" run $FNN train $cfg --set data=$dir/text.h5 --set head_only_steps=2
# finetune_ckpt writes /finetune/optim_state (no moments for frozen tensors) only with init_from.
refuse "freeze without init_from" "freeze = layer0 needs init_from" run $FNN train $cfg --set data=$dir/text.h5 --set freeze=layer0

[ $fails -eq 0 ] && say "e2e_finetune: all checks passed" || say "e2e_finetune: $fails failed"
exit $((fails != 0))
