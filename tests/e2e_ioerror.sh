#!/bin/sh
# A write error inside a collective save on one rank only (EIO from tests/failwrite.so, an
# LD_PRELOAD shim, for the temporary checkpoint file on the last rank) at np = 1, 2 and 4: every
# rank ends within the time bound (this used to hang with the others in the next collective),
# with one "fnn: error:" line naming the file, and the last good checkpoint stays latest and
# verifies; the failed save leaves no temporary file behind (the rank that saw the error removes
# it before the job ends); a restart removes a stale one (a save killed outright) and resumes. The shim logs each write it
# failed: the test checks that it intercepted what Open MPI's MPI-IO calls, so that a pass does
# not come from a write that never failed.
# The same under OMPI_MCA_io=ompio, the user's choice, which reports a failed write as a short
# success: EIO at np = 2 (the short count ends the job), and writes dropped with success
# (FAILWRITE_MODE=drop) at np = 2 and 4, which only the read-back of the saved file finds.
# ckpt_async (io/ckpt_async.h): a failed background write at np = 2 and 4 ends the job the same
# way; on a slow disk the steps after a save overlap its write; SIGKILL during background writes
# leaves the last committed checkpoint verifiable, and the run resumes from it.
SHIM=$(pwd)/build/tests/failwrite.so
dir=build/ioerror
bound=${IOERROR_TIMEOUT:-60}
. tests/lib.sh
data=$dir/data.h5
$FNN prepare --kind text --val-fraction 0.1 --out $data /usr/share/games/fortunes/computers > /dev/null || { say "FAIL: prepare"; exit 1; }

# case NP IO MODE PATTERN: a save that fails on the last rank in MODE (eio or drop) under the
# MPI-IO component IO (default: fnn's choice) ends with one error matching PATTERN.
case_() {
    np=$1 io=$2 mode=$3 pat=$4 async=${5:-false}
    what="np=$np io=$io $mode$( [ $async = true ] && echo ' ckpt_async')"
    ck=$dir/ck$np$io$mode$( [ $async = true ] && echo async )
    last=$((np - 1))
    rm -f $dir/shim.log
    # Step 10 saves normally; from step 20 on the last rank's writes to *.h5.tmp fail, and
    # only in the save of step 20: FAILWRITE_PATH names that file.
    start=$(date +%s)
    env $( [ $io = default ] || echo OMPI_MCA_io=$io ) FAILWRITE_RANK=$last FAILWRITE_MODE=$mode \
        FAILWRITE_PATH=step-00000020.h5.tmp FAILWRITE_LOG=$dir/shim.log \
        FAILWRITE_THREAD=$( [ $async = true ] && echo writer || echo any ) \
        timeout $bound $MPIRUN -np $np -x LD_PRELOAD=$SHIM -x FAILWRITE_RANK -x FAILWRITE_PATH \
        -x FAILWRITE_LOG -x FAILWRITE_MODE -x FAILWRITE_THREAD $FNN train --config configs/tiny.ini --set data=$data \
        --set ckpt_dir=$ck --set ckpt_every=10 --set steps=30 --set ckpt_async=$async > $dir/out.txt 2> $dir/err.txt
    rc=$? took=$(( $(date +%s) - start ))
    if [ ! -s $dir/shim.log ]; then
        fail "$what: the shim failed no write (it does not intercept what MPI-IO calls)"
    elif [ $rc -eq 0 ] || [ $rc -eq 124 ]; then
        fail "$what: exit $rc after ${took}s$( [ $rc -eq 124 ] && echo ' (hang: killed after the time bound)')"
    elif [ "$(grep -c 'fnn: error:' $dir/err.txt)" -ne 1 ] ||
         ! grep 'fnn: error:' $dir/err.txt | grep 'step-00000020.h5.tmp' | grep -q -- "$pat"; then
        fail "$what: expected one error naming step-00000020.h5.tmp ($pat), got: $(grep -m 3 . $dir/err.txt)"
    else
        say "ok   $what: exit $rc after ${took}s, $(wc -l < $dir/shim.log) writes failed: $(grep 'fnn: error:' $dir/err.txt)"
    fi
    # The failed save removed its partial temporary file: a full disk must not stay full.
    if ls $ck | grep -q 'h5.tmp$'; then
        fail "$what: the failed save left $(ls $ck | grep 'h5.tmp$')"
    else
        say "ok   $what: no temporary file left"
    fi
    if [ "$(cat $ck/latest 2> /dev/null)" = step-00000010.h5 ] &&
       timeout $bound $MPIRUN -np 1 $FNN inspect --verify $ck/step-00000010.h5 > /dev/null 2>&1; then
        say "ok   $what: latest is still the verified step-00000010.h5"
    else
        fail "$what: latest = $(cat $ck/latest 2> /dev/null), files: $(ls $ck)"
    fi
}
# restart NP IO: the job can go on, under the same component: a restart removes the stale
# temporary file planted and resumes from step 10, and saves step 20 again (OMPIO's default
# shared file pointer component hung in that open, on a semaphore the abort left taken).
restart() {
    np=$1 io=$2 mode=$3
    ck=$dir/ck$np$io$mode
    head -c 65536 /dev/zero > $ck/step-00000015.h5.tmp # what a save killed outright leaves
    if env $( [ $io = default ] || echo OMPI_MCA_io=$io ) timeout $bound $MPIRUN -np $np $FNN train \
           --config configs/tiny.ini --set data=$data --set ckpt_dir=$ck --set ckpt_every=10 \
           --set steps=30 --set resume=auto > $dir/out.txt 2>&1 &&
       grep -q "resumed from $ck/step-00000010.h5" $dir/out.txt &&
       grep -q "removed $ck/step-00000015.h5.tmp" $dir/out.txt &&
       [ "$(cat $ck/latest)" = step-00000030.h5 ] && ! ls $ck | grep -q 'h5.tmp$'; then
        say "ok   np=$np io=$io: the restart removed the stale temporary file, resumed from step 10 and reached step 30"
    else
        fail "np=$np io=$io: restart: exit $?, $(grep -m 3 'error\|removed' $dir/out.txt), files: $(ls $ck)"
    fi
}
for np in 1 2 4; do case_ $np default eio 'MPI_ERR_IO'; restart $np default eio; done
case_ 2 ompio eio 'short write'; restart 2 ompio eio
case_ 2 ompio drop 'read back after the save'
case_ 4 ompio drop 'read back after the save'
# ckpt_async: the failed write is the writer thread's pwrite on the last rank; the save of step
# 30 waits for it, and every rank ends with its error.
case_ 2 default eio 'cannot write (Input/output error)' true
case_ 4 default eio 'cannot write (Input/output error)' true

# ckpt_async on a slow disk (each background write of rank 0 to a .h5.tmp takes 0.1 s): the steps
# after a save run while its file is written. Step 10's save stalls the run a fraction of the time
# its background write takes, and steps 11-20 run before that write has committed (at step 20).
ck=$dir/slow
FAILWRITE_RANK=0 FAILWRITE_MODE=slow FAILWRITE_THREAD=writer timeout $bound $MPIRUN -np 2 \
    -x LD_PRELOAD=$SHIM -x FAILWRITE_RANK -x FAILWRITE_MODE -x FAILWRITE_THREAD $FNN train \
    --config configs/tiny.ini --set data=$data --set ckpt_dir=$ck --set ckpt_every=10 --set steps=20 \
    --set ckpt_async=true --set log_every=1 --set metrics=$dir/slow.jsonl > $dir/out.txt 2> $dir/err.txt
line=$(grep "checkpoint $ck/step-00000010.h5 (stall" $dir/out.txt)
stall=$(echo "$line" | sed -n 's/.*stall \([0-9.]*\) s.*/\1/p')
wrote=$(echo "$line" | sed -n 's/.*background in \([0-9.]*\) s.*/\1/p')
steps=$(sed -n 's/.*"step": *\([0-9]*\).*"step_s": *\([0-9.e+-]*\).*/\1 \2/p' $dir/slow.jsonl |
        awk '$1 > 10 && $1 <= 20 { n++; s += $2 } END { printf "%d %.3f", n, s }')
before=$(awk '/^step 1[1-9]\//{ n++ } /checkpoint .*step-00000010.h5 \(stall/ { print n + 0; exit }' $dir/out.txt)
if [ -n "$stall" ] && [ -n "$wrote" ] && awk -v s=$stall -v w=$wrote 'BEGIN { exit !(w >= 1 && s < w / 2) }' &&
   [ "$before" = 9 ] && [ "$(cat $ck/latest 2> /dev/null)" = step-00000020.h5 ]; then
    say "ok   ckpt_async on a slow disk: step 10's save stalled ${stall}s, its file took ${wrote}s in the background, while steps 11-19 ran (steps 11-20: $steps s) before it committed"
else
    fail "ckpt_async on a slow disk: stall '$stall', write '$wrote', steps logged before the commit '$before', latest $(cat $ck/latest 2> /dev/null): $(grep -m 3 'error' $dir/err.txt)"
fi

# SIGKILL during background writes (slow, so that the kill lands inside one): the last committed
# checkpoint is untouched and verifies, and a run resumes from it. Three kills at different moments.
for k in 1 2 3; do
    ck=$dir/kill$k
    FAILWRITE_RANK=1 FAILWRITE_MODE=slow FAILWRITE_THREAD=writer $MPIRUN -np 2 -x LD_PRELOAD=$SHIM \
        -x FAILWRITE_RANK -x FAILWRITE_MODE -x FAILWRITE_THREAD $FNN train --config configs/tiny.ini --set data=$data --set ckpt_dir=$ck \
        --set ckpt_every=4 --set steps=100000 --set ckpt_async=true > $dir/kill.txt 2>&1 &
    job=$!
    trap 'kill -9 $job 2> /dev/null' EXIT
    i=0
    while [ ! -s $ck/latest ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    sleep 0.$((k * 3))
    kill -9 $(pgrep -P $job) $job 2> /dev/null
    wait $job 2> /dev/null
    inflight=$(ls $ck | grep -c 'h5.tmp$') # a save the kill cut short left its temporary file
    trap - EXIT
    last=$(cat $ck/latest 2> /dev/null)
    if [ -n "$last" ] && [ "$inflight" -ge 1 ] &&
       timeout $bound $MPIRUN -np 1 $FNN inspect --verify $ck/$last > /dev/null 2>&1; then
        say "ok   SIGKILL $k with a background write in flight: latest $last verifies"
    else
        fail "SIGKILL $k: latest '$last', in flight $inflight, files: $(ls $ck)"
    fi
done
step=$(echo $last | sed 's/step-0*\([0-9]*\).h5/\1/')
if timeout $bound $MPIRUN -np 2 $FNN train --config configs/tiny.ini --set data=$data --set ckpt_dir=$ck \
       --set ckpt_every=4 --set steps=$((step + 2)) --set ckpt_async=true --set resume=auto > $dir/out.txt 2>&1 &&
   grep -q "resumed from $ck/$last" $dir/out.txt; then
    say "ok   after the kills: resumed from $last and finished"
else
    fail "resume after the kills: $(grep -m 3 'error\|resumed' $dir/out.txt)"
fi
[ $fails -eq 0 ] && say "all passed" || { say "$fails failed"; exit 1; }
