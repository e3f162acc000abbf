#!/bin/sh
# The training draws end to end (feedback_source = mix with teacher_prob falling from 0.9 to
# 0.1, feedback_noise = 0.3, dropout = 0.2 and dropout_recurrent = 0.2): train's closing
# evaluation and fnn eval of its checkpoint (which never sees those keys) give the same
# measures, so evaluation draws no noise, teachers or dropout masks; np = 2 (dp 2 and tp 2)
# follows np = 1's 20 losses; a resume at step 10 continues bit for bit (the draws are keyed by
# the step); bad values are refused at np = 2 with one line.
dir=build/feedbacke2e
data=text.h5
. tests/lib.sh
field() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
draws="--set feedback_source=mix --set teacher_prob=0.9 --set teacher_prob_end=0.1 --set feedback_noise=0.3
       --set dropout=0.2 --set dropout_recurrent=0.2"

train 1 $draws --set seq_len=32 --set eval_windows=1000000 --set ckpt_dir=$dir/ck1 \
    --set metrics=$dir/m1.jsonl > $dir/t1.txt 2>&1 || fail "train np=1"
mpi 1 $FNN eval --json --checkpoint $dir/ck1/step-00000020.h5 --data $dir/$data > $dir/e1.json || fail "eval"
want="bpc $(field $dir/e1.json "['bpc']" | awk '{ printf "%.4f", $1 }')"
last=$(tail -n 1 $dir/t1.txt)
case "$last" in *"$want"*) say "ok   train's closing evaluation = fnn eval: $last" ;; *) fail "train ends with '$last', fnn eval gives '$want'" ;; esac

for tp in 1 2; do
    train 2 $draws --set seq_len=32 --set tp=$tp --set metrics=$dir/m2$tp.jsonl > /dev/null 2>&1 || fail "train np=2 tp=$tp"
    paste -d' ' $dir/m1.jsonl $dir/m2$tp.jsonl | sed 's/[{},:"]/ /g' | awk '{ a = $4; for (i = 5; i <= NF; i++) if ($i == "loss") b = $(i + 1); d = a - b; if (d < 0) d = -d; if (d > 1e-5 * a) bad++; n++ } END { exit (bad > 0 || n != 20) }' \
        && say "ok   np=2 tp=$tp: 20 losses match one rank's" || fail "np=2 tp=$tp trajectory differs from one rank's"
done

train 2 $draws --set ckpt_dir=$dir/ckr --set ckpt_every=10 --set metrics=$dir/mr.jsonl > /dev/null 2>&1 || fail "train for resume"
rm -f $dir/ckr/step-00000020.h5 && printf 'step-00000010.h5' > $dir/ckr/latest
train 2 $draws --set ckpt_dir=$dir/ckr --set resume=auto --set metrics=$dir/mr2.jsonl > $dir/resume.txt 2>&1 || fail "resume"
grep -q "resumed from $dir/ckr/step-00000010.h5 at step 10" $dir/resume.txt || fail "resume message"
[ "$(tail -n 1 $dir/mr.jsonl | cut -d, -f2)" = "$(tail -n 1 $dir/mr2.jsonl | cut -d, -f2)" ] && say "ok   resume continues bit for bit" || fail "resume differs: $(tail -n 1 $dir/mr.jsonl) / $(tail -n 1 $dir/mr2.jsonl)"

refuse "teacher_prob without mix" "teacher_prob = 0.5 needs feedback_source = mix" train 2 --set teacher_prob=0.5
refuse "teacher_prob_end out of range" "teacher_prob_end = 1.5: must be in \[0, 1\], or -1" train 2 --set feedback_source=mix --set teacher_prob_end=1.5
refuse "infinite noise" "key 'feedback_noise': 'inf' is not a finite number" train 2 --set feedback_noise=inf
refuse "dropout of 1" "dropout = 1: must be in \[0, 1)" train 2 --set dropout=1
refuse "negative recurrent dropout" "dropout_recurrent = -0.1: must be in \[0, 1)" train 2 --set dropout_recurrent=-0.1
refuse "mix for classify" "feedback_source = mix needs per-step targets" train 2 --set feedback_source=mix --set task=classify

say "e2e_feedback: $fails failures"
[ $fails -eq 0 ]
