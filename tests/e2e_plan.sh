#!/bin/sh
# The memory plan end to end: its peak against the peak resident memory the kernel measured
# (VmHWM summed over a node's ranks, within 10%) for bench and train at several layouts, where
# the model is large enough (H = 2048, an LSTM of H = 1024) to dominate the process's baseline;
# where the node's DP replicas share a window (a page counts in every rank that touched it), the
# memory at the end split among the ranks (Pss) against the plan's steady part. Then the
# refusals: a run that does not fit memory_limit and one where nothing fits, each at np = 1 and 4,
# a malformed memory_limit, fnn plan for a layout the config's tp does not allow, within the
# time bound (no rank left waiting).
dir=build/plan
data=text.h5
bound=120
. tests/lib.sh

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare

# ratio WHAT FIELD: the number before " of the plan's FIELD" on the "memory:" line of out.txt
# lies in [0.9, 1.1].
ratio() {
    r=$(sed -n "s/.* \([0-9.]*\) of the plan's $2.*/\1/p" $dir/out.txt | head -1)
    if [ -z "$r" ]; then fail "$1: no memory line: $(tail -2 $dir/out.txt)"; return; fi
    if awk -v r=$r 'BEGIN { exit !(r >= 0.9 && r <= 1.1) }'; then say "ok   $1: measured / plan $r"
    else fail "$1: measured / plan $r: $(grep '^memory:' $dir/out.txt)"; fi
}
bench() { np=$1; h=$2; shift 2; mpi $np $FNN bench --hidden $h --layers 2 --seq-len 16 --batch 8 --steps 1 --ceilings no "$@" > $dir/out.txt 2>&1 || fail "bench $*: exit $?"; }

bench 1 2048; ratio "bench np=1" peak
bench 2 2048 --tp 2; ratio "bench np=2 tp=2" peak
# Unshared replicas reduce by message: Open MPI's temporaries of the in-flight reductions.
export FNN_SHARE_DP=1
bench 2 2048; ratio "bench np=2 dp=2 unshared" peak
unset FNN_SHARE_DP
bench 2 1024 --cell lstm; ratio "bench np=2 dp=2 shared window, lstm H=1024 (Pss)" steady
# train: orthogonal init (the QR's transient) and a checkpoint at the end.
big="--set hidden=2048 --set layers=1 --set steps=1 --set seq_len=16 --set batch=8 --set log_every=1"
train 1 $big --set ckpt_dir=$dir/ck1 > $dir/out.txt 2>&1 || fail "train np=1: exit $?"
ratio "train np=1 orthogonal init, checkpoint" peak
train 2 $big --set tp=2 --set ckpt_dir=$dir/ck2 > $dir/out.txt 2>&1 || fail "train np=2: exit $?"
ratio "train np=2 tp=2 orthogonal init, checkpoint" peak

# fnn plan prints the plan a run prints (but for the baseline, measured by each process).
mpi 1 $FNN plan --config configs/tiny.ini --set data=$dir/$data $big --set tp=2 --set ckpt_dir=$dir/ck2 --np 2 > $dir/plan.txt 2>&1 || fail "plan: exit $?"
grep -q '^fits this node' $dir/plan.txt || fail "plan: no verdict: $(tail -1 $dir/plan.txt)"
rows='^memory plan:|^  (parameters|gradients|optimiser|packed|activations|state|init|checkpoint|DP)'
grep -E "$rows" $dir/plan.txt > $dir/plan.rows
grep -E "$rows" $dir/out.txt > $dir/train.rows
if cmp -s $dir/plan.rows $dir/train.rows; then say "ok   fnn plan --np 2 prints train's plan at np 2"
else fail "fnn plan differs from train's plan: $(diff $dir/plan.rows $dir/train.rows | head -4)"; fi

# Refusals, the same line on every rank, before the model is allocated.
for np in 1 4; do
    refuse "np=$np: memory_limit below the plan" "the run needs .* per node .* memory_limit allows 0.10 GB: .* helps most" \
        train $np $big --set batch=8 --set memory_limit=100M
    refuse "np=$np: memory_limit below the baseline" "memory_limit = 1024 bytes per node: .* nothing fits" \
        train $np --set memory_limit=1K
done
# The config's values are read by rank 0 and broadcast (tests/e2e_cli.sh): one rank suffices.
refuse "malformed memory_limit" "key 'memory_limit': '2X' is not a size" train 1 --set memory_limit=2X
refuse "negative memory_limit" "key 'memory_limit': '-1G' is not a size" train 1 --set memory_limit=-1G
refuse "plan: np not a multiple of tp" "fnn plan: 3 ranks are not a multiple of tp = 2" \
    mpi 1 $FNN plan --config configs/tiny.ini --set data=$dir/$data --set tp=2 --np 3
refuse "plan: tp not dividing hidden" "fnn plan: hidden = 100 is not divisible by tp = 3" \
    mpi 1 $FNN plan --config configs/tiny.ini --set data=$dir/$data --set hidden=100 --set tp=3 --np 3
refuse "plan: does not fit" "the run needs .* memory_limit allows" \
    mpi 1 $FNN plan --config configs/tiny.ini --set data=$dir/$data $big --set memory_limit=50M
refuse "plan under mpirun -np 4" "fnn plan runs as one process" \
    mpi 4 $FNN plan --config configs/tiny.ini --set data=$dir/$data

[ $fails -eq 0 ] && say "e2e_plan: all checks passed" || say "e2e_plan: $fails failed"
[ $fails -eq 0 ]
