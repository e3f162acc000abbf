#!/bin/sh
# A clean run is quiet: at np = 1, 2 (tp 1 and 2) and 4 (tp 2), fnn train, fnn eval, a train
# from init_from and one with the ridge head (head_ridge: a ScaLAPACK solve over the world, the
# orthogonal initialisation's QR over the TP group before it) exit 0 and print on stderr nothing
# but fnn's own lines. fnn's own lines are those it writes itself, every one of which begins
# "fnn: " (fnn: error: ..., fnn: warning: ...); any other line (a library's warning such as
# BLACS's "Trying to free non-existent system context handle", Open MPI's help messages) fails
# the check and is printed.
dir=build/e2e_quiet
data=data.h5
bound=120
. tests/lib.sh

head -c 6000 /usr/share/games/fortunes/computers > $dir/text.txt
$FNN prepare --kind text --val-fraction 0.2 --out $dir/$data $dir/text.txt > /dev/null || fail prepare

# Runs "$@" (its stdout to $dir/out.txt); it must exit 0 with no stderr line outside fnn's own.
quiet() {
    what=$1; shift
    "$@" > $dir/out.txt 2> $dir/err.txt; rc=$?
    grep -v '^fnn: ' $dir/err.txt > $dir/foreign.txt
    if [ $rc -ne 0 ]; then
        fail "$what: exit $rc: $(head -3 $dir/err.txt)"
    elif [ -s $dir/foreign.txt ]; then
        fail "$what: $(wc -l < $dir/foreign.txt) stderr lines not fnn's own:"
        head -n 10 $dir/foreign.txt | sed 's/^/    /'
    else
        say "ok   $what: stderr quiet ($(wc -l < $dir/err.txt) fnn lines)"
    fi
}

for layout in "1 1" "2 1" "2 2" "4 2"; do
    set -- $layout; np=$1; tp=$2; at="np=$np tp=$tp"; ck=$dir/ck$np$tp
    quiet "train $at" train $np --set tp=$tp --set ckpt_dir=$ck
    quiet "eval $at" mpi $np $FNN eval --checkpoint $ck/step-00000020.h5 --data $dir/$data --windows 8 --tp $tp
    quiet "init_from $at" train $np --set tp=$tp --set steps=3 --set init_from=$ck/step-00000020.h5 --set ckpt_dir=$dir/ft$np$tp
    quiet "ridge head $at" train $np --set tp=$tp --set steps=2 --set init_from=$ck/step-00000020.h5 \
        --set new_head=true --set head_ridge=true --set ckpt_dir=$dir/rh$np$tp
    grep -q '^ridge head: train' $dir/out.txt || fail "ridge head $at: no fit reported"
done

[ $fails -eq 0 ] && say "e2e_quiet: all checks passed" || say "e2e_quiet: $fails failed"
exit $((fails != 0))
