# The start and helpers of the end-to-end scripts; sourced after they set dir (their scratch
# folder, emptied here), data (when they call train) and optionally bound (the time limit of run
# and mpi in seconds, 60). FNN is absolute so that a script may cd; train runs fnn train on the
# tiny config over $dir's dataset $data.
set -u
FNN=$(pwd)/build/fnn
fails=0
rm -rf $dir && mkdir -p $dir
say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; fails=$((fails + 1)); }
run() { timeout ${bound:-60} "$@"; }
mpi() { np=$1; shift; run $MPIRUN -np "$np" "$@"; }
train() { np=$1; shift; mpi $np $FNN train --config configs/tiny.ini --set data=$dir/$data "$@"; }
# |a - b| <= t max(|a|, |b|), a not empty: numbers that agree to relative t.
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a; n = b < 0 ? -b : b; if (n > m) m = n; exit !(a != "" && d <= t * m) }'; }
# A run that must fail (not time out) with one "fnn: error:" line matching the pattern $2; the
# command is run as given (prefix run or mpi for a time bound).
refuse() {
    what=$1; pat=$2; shift 2
    "$@" > $dir/out.txt 2> $dir/err.txt; rc=$?
    if [ $rc -eq 0 ] || [ $rc -eq 124 ]; then fail "$what: exit $rc"; return 1; fi
    n=$(grep -c 'fnn: error:' $dir/err.txt)
    if [ "$n" -ne 1 ] || ! grep 'fnn: error:' $dir/err.txt | grep -q -- "$pat"; then
        fail "$what: expected one error matching '$pat', got: $(grep -v '^ *$' $dir/err.txt | head -3)"
        return 1
    fi
    say "ok   $what: $(grep 'fnn: error:' $dir/err.txt)"
}
