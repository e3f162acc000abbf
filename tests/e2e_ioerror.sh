#!/bin/sh
# A write error inside a collective save on one rank only (EIO from tests/failwrite.so, an
# LD_PRELOAD shim, for the temporary checkpoint file on the last rank) at np = 2 and 4: every
# rank ends within the time bound (this used to hang with the others in the next collective),
# with one "fnn: error:" line naming the file, and the last good checkpoint stays latest and
# verifies; a restart then removes the temporary file and resumes. The shim logs each write it
# failed: the test checks that it intercepted what Open MPI's MPI-IO calls, so that a pass does
# not come from a write that never failed.
set -u
FNN=$(pwd)/build/fnn
SHIM=$(pwd)/build/tests/failwrite.so
dir=build/ioerror
bound=${IOERROR_TIMEOUT:-60}
fails=0
rm -rf $dir && mkdir -p $dir
say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; fails=$((fails + 1)); }
data=$dir/data.h5
$FNN prepare --kind text --val-fraction 0.1 --out $data /usr/share/games/fortunes/computers > /dev/null || { say "FAIL: prepare"; exit 1; }

for np in 2 4; do
    ck=$dir/ck$np
    last=$((np - 1))
    # Step 10 saves normally; from step 20 on the last rank's writes to *.h5.tmp fail, and
    # only in the save of step 20: FAILWRITE_PATH names that file.
    start=$(date +%s)
    FAILWRITE_RANK=$last FAILWRITE_PATH=step-00000020.h5.tmp FAILWRITE_LOG=$dir/shim$np.log \
        timeout $bound $MPIRUN -np $np -x LD_PRELOAD=$SHIM -x FAILWRITE_RANK -x FAILWRITE_PATH \
        -x FAILWRITE_LOG $FNN train --config configs/tiny.ini --set data=$data --set ckpt_dir=$ck \
        --set ckpt_every=10 --set steps=30 > $dir/out.txt 2> $dir/err.txt
    rc=$? took=$(( $(date +%s) - start ))
    if [ ! -s $dir/shim$np.log ]; then
        fail "np=$np: the shim failed no write (it does not intercept what MPI-IO calls)"
    elif [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
        fail "np=$np: exit $rc after ${took}s$( [ $rc -eq 124 ] && echo ' (hang: killed after the time bound)')"
    elif [ "$(grep -c 'fnn: error:' $dir/err.txt)" -ne 1 ] ||
         ! grep 'fnn: error:' $dir/err.txt | grep -q 'step-00000020.h5.tmp'; then
        fail "np=$np: expected one error naming step-00000020.h5.tmp, got: $(grep -m 3 . $dir/err.txt)"
    else
        say "ok   np=$np: exit $rc after ${took}s, $(wc -l < $dir/shim$np.log) writes failed: $(grep 'fnn: error:' $dir/err.txt)"
    fi
    if [ "$(cat $ck/latest 2> /dev/null)" = step-00000010.h5 ] &&
       timeout $bound $MPIRUN -np 1 $FNN inspect --verify $ck/step-00000010.h5 > /dev/null 2>&1; then
        say "ok   np=$np: latest is still the verified step-00000010.h5"
    else
        fail "np=$np: latest = $(cat $ck/latest 2> /dev/null), files: $(ls $ck)"
    fi
    # The job can go on: a restart removes the temporary file and resumes from step 10.
    if timeout $bound $MPIRUN -np $np $FNN train --config configs/tiny.ini --set data=$data \
           --set ckpt_dir=$ck --set ckpt_every=10 --set steps=30 --set resume=auto \
           > $dir/out.txt 2>&1 &&
       grep -q 'removed .*step-00000020.h5.tmp' $dir/out.txt &&
       [ "$(cat $ck/latest)" = step-00000030.h5 ] && ! ls $ck | grep -q tmp; then
        say "ok   np=$np: the restart removed the temporary file and reached step 30"
    else
        fail "np=$np: restart: $(grep -m 3 'error\|removed' $dir/out.txt), files: $(ls $ck)"
    fi
done
[ $fails -eq 0 ] && say "all passed" || { say "$fails failed"; exit 1; }
