#!/bin/sh
# The optimiser state sharded over every DP replica (ZeRO stage 1, docs/parallel.md) end to end:
# fnn train at (tp, dp) = (1, 4) without node sharing (FNN_SHARE_DP=1: four "nodes", each rank
# keeping the moments of a quarter of the parameters) follows the one-rank loss and gradient
# norm; its step-10 checkpoint resumes at (2, 1), (1, 1) and (1, 4) shared (to float rounding)
# and at its own layout bit for bit (metrics and the step-20 /optim, h5diff exact); the one-rank
# and the (2, 1) checkpoints resume at (1, 4); the /optim datasets of a sharded and an unsharded
# save of the same step agree; and the peak resident memory (VmHWM) of a rank at dp = 4 is less
# than one rank's by 3/4 of the Adam moments.
dir=build/zero
data=text.h5
bound=180
. tests/lib.sh

# Step, loss and grad_norm of each line of a metrics file.
traj() { sed 's/[{},:"]/ /g' "$1" | awk '{ for (i = 1; i < NF; i++) { if ($i == "step") s = $(i + 1); if ($i == "loss") l = $(i + 1); if ($i == "grad_norm") g = $(i + 1) } print s, l, g }'; }
# The steps of metrics file $2 agree with the same steps of $1 to relative tol $3 (loss and
# grad norm); $4 steps must be compared.
traj_close() {
    traj "$1" > $dir/ta.txt; traj "$2" > $dir/tb.txt
    awk -v t="$3" -v want="$4" 'NR == FNR { l[$1] = $2; g[$1] = $3; next }
        { n++; if (!($1 in l)) bad++; else { a = $2 - l[$1]; b = $3 - g[$1]; if (a < 0) a = -a; if (b < 0) b = -b;
          if (a > t * l[$1] || b > t * g[$1]) { bad++; printf "step %d: loss %s grad norm %s, want %s %s\n", $1, $2, $3, l[$1], g[$1] } } }
        END { exit (bad > 0 || n != want) }' $dir/ta.txt $dir/tb.txt
}
# Every /optim dataset of two checkpoints agrees to relative $3 in the 2-norm of the difference.
. tests/h5close.sh
optim_close() { sets_close "$1" "$2" /optim "$3"; }
ck() { printf '%s/step-%08d.h5' "$1" "$2"; }
# Runs a command with FNN_SHARE_DP=1: no node sharing, every rank its own group.
unshared() { FNN_SHARE_DP=1; export FNN_SHARE_DP; "$@"; rc=$?; unset FNN_SHARE_DP; return $rc; }

$FNN prepare --kind text --val-fraction 0.1 --out $dir/$data /usr/share/games/fortunes/computers > /dev/null || fail prepare
steps="--set steps=20 --set ckpt_every=10"

# The uninterrupted runs: one rank, and (1, 4) with every rank its own group.
train 1 $steps --set ckpt_dir=$dir/one --set metrics=$dir/one.jsonl > $dir/one.txt 2>&1 || fail "train np=1"
unshared train 4 $steps --set ckpt_dir=$dir/z4 --set metrics=$dir/z4.jsonl > $dir/z4.txt 2>&1 || fail "train np=4 FNN_SHARE_DP=1"
traj_close $dir/one.jsonl $dir/z4.jsonl 1e-5 20 && say "ok   (1, 4) unshared: 20 losses and grad norms match one rank's" || fail "(1, 4) unshared trajectory"

# Resumed from the sharded step-10 checkpoint: at its own layout bit for bit, elsewhere to rounding.
resume() { # np, label, ckpt_dir, source checkpoint, then --set options
    np=$1; what=$2; out=$3; src=$4; shift 4
    train $np $steps --set ckpt_dir=$out --set resume=$src --set metrics=$out.jsonl "$@" > $out.txt 2>&1 || fail "resume $what"
    grep -q "resumed from $src at step 10" $out.txt || fail "resume $what: $(grep -m 1 'error\|resumed' $out.txt)"
}
unshared resume 4 "(1, 4) unshared" $dir/r44 $(ck $dir/z4 10)
[ "$(traj $dir/r44.jsonl)" = "$(traj $dir/z4.jsonl | tail -n 10)" ] && say "ok   (1, 4) unshared resumed at (1, 4) unshared: steps 11-20 bit for bit" || fail "resumed at the same layout differs"
h5diff -q $(ck $dir/z4 20) $(ck $dir/r44 20) /optim /optim > /dev/null 2>&1 && say "ok   and its step-20 /optim is the uninterrupted run's (h5diff exact)" || fail "resumed at the same layout: /optim differs"
for layout in "2 2 (2,1)" "1 1 (1,1)" "4 1 (1,4)_shared"; do
    set -- $layout
    resume $1 "$3" $dir/r$1$2 $(ck $dir/z4 10) --set tp=$2
    traj_close $dir/z4.jsonl $dir/r$1$2.jsonl 1e-5 10 && say "ok   (1, 4) unshared resumed at $3: steps 11-20 match" || fail "(1, 4) unshared resumed at $3"
done
# The reverse: the one-rank and the (2, 1) checkpoints resumed at (1, 4) unshared.
unshared resume 4 "one rank at (1, 4)" $dir/r14 $(ck $dir/one 10)
traj_close $dir/one.jsonl $dir/r14.jsonl 1e-5 10 && say "ok   one rank resumed at (1, 4) unshared: steps 11-20 match" || fail "one rank resumed at (1, 4)"
optim_close $(ck $dir/one 20) $(ck $dir/r14 20) 1e-4 && say "ok   and its step-20 /optim matches one rank's" || fail "one rank resumed at (1, 4): /optim"
train 2 --set tp=2 $steps --set ckpt_dir=$dir/t2 > $dir/t2.txt 2>&1 || fail "train np=2 tp=2"
unshared resume 4 "(2, 1) at (1, 4)" $dir/r24 $(ck $dir/t2 10)
traj_close $dir/one.jsonl $dir/r24.jsonl 1e-5 10 && say "ok   (2, 1) resumed at (1, 4) unshared: steps 11-20 match one rank's" || fail "(2, 1) resumed at (1, 4)"

# The same step saved sharded (each of 4 ranks writing the moments it owns) and unsharded (one
# rank holding them all): the same datasets, their values apart by the rounding of the sums.
optim_close $(ck $dir/one 10) $(ck $dir/z4 10) 1e-4 && say "ok   /optim of the step-10 checkpoint: (1, 4) unshared equals one rank's to 1e-4" || fail "/optim sharded vs unsharded"
[ "$(h5ls -r $(ck $dir/one 10)/optim)" = "$(h5ls -r $(ck $dir/z4 10)/optim)" ] || fail "/optim datasets differ in names or shapes"
# With two replicas every sum has two terms, which add alike in any order: the node-shared save
# (2 x 1) and the unshared one (1 x 2) are then equal bit for bit.
train 2 $steps --set ckpt_dir=$dir/s2 > /dev/null 2>&1 || fail "train np=2 shared"
unshared train 2 $steps --set ckpt_dir=$dir/u2 > /dev/null 2>&1 || fail "train np=2 unshared"
h5diff -q $(ck $dir/s2 20) $(ck $dir/u2 20) /optim /optim > /dev/null 2>&1 && say "ok   (1, 2): /optim of the shared and the unshared run equal (h5diff exact)" || fail "(1, 2) shared and unshared /optim differ"

# Peak memory: a model whose Adam moments (8 bytes per parameter) dwarf the rest of a small
# step. A rank at dp = 4 keeps a quarter of them, so its VmHWM is less than one rank's by 3/4 of
# the moments, after the difference of two runs of a 32-unit model takes out what MPI itself
# costs at 4 ranks. The smallest rank counts: Open MPI's non-blocking reduce-scatter (libnbc)
# reduces onto one rank of dpx_comm, which holds temporaries beside (docs/parallel.md).
big="--set hidden=2048 --set init=normal --set steps=1 --set threads=1"
# In one full suite the np = 4 run left no time-peak-kib line to read. A run that fails (an fnn
# error, MPI_Abort) still leaves rank 0's line, so every /usr/bin/time of that job was killed
# from outside (the time bound or the job's teardown); its output was not kept. A run without
# the line is now shown (on stderr, in the log) and made once more, and a missing value reads 0
# (the check then fails) rather than shifting the fields.
bound=300
peak() { # np, hidden options: the smallest VmHWM of the ranks, KiB
    got=$(peak_once "$@")
    if [ "${got%% *}" = 0 ]; then
        say "note: np=$1 $2 $3 left no time-peak-kib line (exit $(cat $dir/peak.rc)): $(tail -n 3 $dir/peak.txt)" >&2
        got=$(peak_once "$@")
    fi
    echo "$got"
}
peak_once() {
    np=$1; shift
    unshared mpi $np /usr/bin/time -f 'time-peak-kib %M' $FNN train --config configs/tiny.ini --set data=$dir/$data "$@" > $dir/peak.txt 2>&1
    echo $? > $dir/peak.rc
    awk '$1 == "time-peak-kib" { if (m == "" || $2 < m) m = $2 } /parameters per rank/ { for (i = 1; i < NF; i++) if ($(i + 1) == "parameters") p = $i } END { print (m == "" ? 0 : m), (p == "" ? 0 : p) }' $dir/peak.txt
}
set -- $(peak 1 $big) $(peak 4 $big) $(peak 1 --set steps=1) $(peak 4 --set steps=1)
one=$1 params=$2 four=$3 base1=$5 base4=$7
awk -v one=$one -v four=$four -v b1=$base1 -v b4=$base4 -v p=$params 'BEGIN {
    saved = (one - four) - (b1 - b4); want = 8 * p * 3 / 4 / 1024;
    printf "VmHWM: one rank %d KiB, a rank of 4 %d KiB (32 units: %d, %d); saved %.0f KiB, 3/4 of %d parameters'"'"' moments %.0f KiB\n", one, four, b1, b4, saved, p, want;
    exit !(saved > 0.85 * want && saved < 1.15 * want) }' && say "ok   a rank at dp = 4 holds a quarter of the moments (VmHWM)" || fail "VmHWM does not show the moments sharded: one rank $one KiB, a rank of 4 $four KiB"

say "e2e_zero: $fails failures"
[ $fails -eq 0 ]
