#!/bin/sh
# The guarded checkpoint directory and training loop, end to end at 1, 2 and 4 ranks: symlinks
# planted at the temporary names, two jobs on one ckpt_dir, a fresh run into another run's
# directory, an uncreatable or unwritable ckpt_dir, a diverging step (nothing saved, the previous
# checkpoint stays latest), nonfinite = skip, the step watchdog against a stopped rank, metrics
# on a full disk, eval of a non-finite loss. Each case: exit status, time bound, the message.
dir=build/guard
data=data.h5
. tests/lib.sh
# Ranks' pids of the job whose mpirun is $1, as "pid rank" lines.
ranks_of() {
    for p in $(pgrep -P "$1"); do
        r=$(tr '\0' '\n' < /proc/$p/environ 2> /dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
        [ -n "$r" ] && echo "$p $r"
    done
}
wait_for_step() { for i in $(seq 150); do grep -q "^step $2/" "$1" && return 0; sleep 0.1; done; return 1; }

$FNN prepare --kind text --val-fraction 0.1 --out $dir/data.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare

refuse "resume = auto without ckpt_dir" "resume = auto needs ckpt_dir" train 1 --set resume=auto
refuse "nonfinite = maybe" "key 'nonfinite': 'maybe' is not one of stop|skip" train 1 --set nonfinite=maybe
refuse "nonfinite_max = 0" "nonfinite_max = 0: must be >= 1" train 1 --set nonfinite_max=0
refuse "step_timeout = -1" "step_timeout = -1: must be >= 0" train 1 --set step_timeout=-1

for np in 1 2 4; do
    ck=$dir/ck$np
    # An uncreatable and an unwritable ckpt_dir are refused before any step is taken.
    : > $dir/afile
    refuse "np=$np uncreatable ckpt_dir" "ckpt_dir = $dir/afile/ck: cannot create the directory" \
        train $np --set ckpt_dir=$dir/afile/ck
    grep -q '^step' $dir/out.txt && fail "np=$np: trained before refusing the ckpt_dir"
    if [ "$(id -u)" = 0 ]; then ro=/sys/kernel; else ro=$dir/ro; mkdir -p $ro; chmod 555 $ro; fi
    refuse "np=$np unwritable ckpt_dir" "ckpt_dir = $ro: cannot create files in it" train $np --set ckpt_dir=$ro
    grep -q '^step' $dir/out.txt && fail "np=$np: trained before refusing the ckpt_dir"

    # Links planted at the temporary names are never written through: one left before the
    # start is removed at start-up, those planted while the job runs (ranks stopped meanwhile)
    # at the next saves' names are replaced by new files; their targets stay as they were.
    mkdir -p $ck
    printf 'precious 1\n' > $dir/victim1; printf 'precious 2\n' > $dir/victim2
    cp $dir/victim1 $dir/victim1.orig; cp $dir/victim2 $dir/victim2.orig
    ln -s ../victim1 $ck/step-00000099.h5.tmp
    rm -f $dir/t.txt # the background job truncates it only once it starts
    $MPIRUN -np $np $FNN train --config configs/tiny.ini --set data=$dir/data.h5 --set ckpt_dir=$ck --set steps=100000 \
        --set ckpt_every=1 --set ckpt_keep=1 --set log_every=1 --set step_timeout=20 > $dir/t.txt 2>&1 &
    mpid=$!
    wait_for_step $dir/t.txt 3 || fail "np=$np: the job did not start: $(grep 'fnn: error' $dir/t.txt)"
    pids=$(ranks_of $mpid | cut -d' ' -f1)
    [ $(echo $pids | wc -w) = $np ] || fail "np=$np: found ranks '$pids'"
    kill -STOP $pids
    k=$(sed -n 's|^step \([0-9]*\)/.*|\1|p' $dir/t.txt | tail -n 1)
    for i in 1 2 3; do ln -s ../victim1 $ck/step-$(printf %08d $((k + i))).h5.tmp; done
    ln -sf ../victim2 $ck/latest.tmp
    kill -CONT $pids
    wait_for_step $dir/t.txt $((k + 4)) || fail "np=$np: no step after the links were planted"
    kill -USR1 $mpid; wait $mpid; rc=$?
    if [ $rc -eq 75 ] && grep -q "removed $ck/step-00000099.h5.tmp" $dir/t.txt &&
        cmp -s $dir/victim1 $dir/victim1.orig && cmp -s $dir/victim2 $dir/victim2.orig &&
        [ -f $ck/$(cat $ck/latest) ] && [ -z "$(find $ck -name '*.tmp')" ] && [ -z "$(find $ck -type l)" ]; then
        say "ok   np=$np: links at step-N.h5.tmp (steps $((k + 1))-$((k + 3))) and latest.tmp replaced, their targets untouched"
    else
        fail "np=$np: symlinks: exit $rc, $(ls -l $ck | tr '\n' ' ') victim1: $(cat $dir/victim1)"
    fi
    if [ $np = 2 ]; then
        mkdir -p $dir/lk && ln -s ../victim1 $dir/lk/lock
        refuse "np=$np symlink at the lock file" "lk/lock: cannot open the lock file (it is a symbolic link)" \
            train $np --set ckpt_dir=$dir/lk
        cmp -s $dir/victim1 $dir/victim1.orig || fail "np=$np: the lock file's link target was written"
    fi

    # A fresh run into another run's directory is refused; ckpt_overwrite starts over.
    old=$(cat $ck/latest)
    refuse "np=$np fresh run into another run's ckpt_dir" "holds checkpoints of another run ($old, run id" \
        train $np --set ckpt_dir=$ck --set steps=5
    [ -f $ck/$old ] && [ "$(cat $ck/latest)" = $old ] || fail "np=$np: the refused run touched $ck"
    train $np --set ckpt_dir=$ck --set steps=5 --set ckpt_keep=1 --set ckpt_overwrite=true > $dir/t.txt 2>&1 \
        || fail "np=$np: ckpt_overwrite: $(grep 'fnn: error' $dir/t.txt)"
    if [ ! -e $ck/$old ] && [ "$(cat $ck/latest)" = step-00000005.h5 ] &&
        grep -q "removed $ck/$old" $dir/t.txt; then
        say "ok   np=$np: ckpt_overwrite = true removed the other run's $old"
    else
        fail "np=$np: ckpt_overwrite: $(ls $ck | tr '\n' ' ')"
    fi

    # A diverging step (lr = 1e38 from step 6): step 7's loss is NaN; nothing is saved, the
    # step-5 checkpoint stays latest and is not pruned with ckpt_keep = 1.
    tp=1; [ $np = 4 ] && tp=2
    refuse "np=$np tp=$tp diverging step" "step 7: loss -\?nan, gradient norm -\?nan: the parameters diverged" \
        train $np --set tp=$tp --set ckpt_dir=$ck --set resume=auto --set ckpt_every=4 --set ckpt_keep=1 --set lr=1e38
    [ "$(ls $ck | tr '\n' ' ')" = "latest lock step-00000005.h5 " ] && [ "$(cat $ck/latest)" = step-00000005.h5 ] \
        && say "ok   np=$np: after the diverging step the directory holds step-00000005.h5 as latest" \
        || fail "np=$np: after divergence: $(ls $ck | tr '\n' ' ') latest $(cat $ck/latest)"
    # Metrics on a full disk end the run with an error, not exit 0.
    [ $np = 2 ] || refuse "np=$np metrics on a full disk" "metrics = /dev/full: cannot write (No space left on device)" \
        train $np --set metrics=/dev/full --set steps=3
    # lr = 1e39 makes step 6's update overflow to Inf with a finite loss: the save is refused.
    [ $np = 1 ] && continue
    refuse "np=$np tp=$tp non-finite parameters at a save" "step 6: the parameters or optimiser moments are not finite" \
        train $np --set tp=$tp --set ckpt_dir=$ck --set resume=auto --set ckpt_every=1 --set ckpt_keep=1 --set lr=1e39
    [ "$(ls $ck | tr '\n' ' ')" = "latest lock step-00000005.h5 " ] && [ "$(cat $ck/latest)" = step-00000005.h5 ] \
        || fail "np=$np: after the refused save: $(ls $ck | tr '\n' ' ')"

done

# Two jobs on one ckpt_dir: the second is refused naming the first's host and pid; once the
# first has ended, the lock is free again.
ck=$dir/ckj
$MPIRUN -np 2 $FNN train --config configs/tiny.ini --set data=$dir/data.h5 --set ckpt_dir=$ck --set steps=100000 \
    --set log_every=1 > $dir/a.txt 2>&1 &
apid=$!
if wait_for_step $dir/a.txt 2; then
    holder=$(ranks_of $apid | awk '$2 == 0 { print $1 }')
    refuse "second job on a locked ckpt_dir" "ckpt_dir = $ck is in use by another job (host $(hostname) pid $holder;" \
        train 2 --set ckpt_dir=$ck --set resume=auto
else
    fail "the first job did not start: $(grep 'fnn: error' $dir/a.txt)"
fi
kill -USR1 $apid; wait $apid # forwarded to the ranks: checkpoint and stop
last=$(cat $ck/latest); n=$(echo "$last" | sed 's/step-0*\([0-9]*\)\.h5/\1/')
# A copy of another run's checkpoint, older by name, is not this run's to prune (ckpt_keep = 1).
cp $dir/ck1/step-00000005.h5 $ck/step-00000000.h5
train 2 --set ckpt_dir=$ck --set resume=auto --set steps=$((n + 2)) --set ckpt_every=1 --set ckpt_keep=1 > $dir/t.txt 2>&1 \
    && grep -q "resumed from $ck/$last" $dir/t.txt \
    && say "ok   the lock is released when the first job ends: resumed from $last" || fail "after the first job: $(grep 'fnn: error' $dir/t.txt)"
[ "$(ls $ck | tr '\n' ' ')" = "latest lock step-00000000.h5 $(cat $ck/latest) " ] \
    && say "ok   pruning with ckpt_keep = 1 kept only the newest of this run and the other run's file" \
    || fail "lineage pruning: $(ls $ck | tr '\n' ' ')"

# nonfinite = skip: steps 7-9 (NaN after the lr = 1e38 update of step 6) leave the parameters as
# they were, a checkpoint taken meanwhile holds step 6's parameters, the 4th in a row stops.
ck=$dir/cks
train 2 --set ckpt_dir=$ck --set steps=5 > /dev/null 2>&1
refuse "nonfinite = skip, nonfinite_max = 3" "step 10: .* 4 non-finite steps in a row exceed nonfinite_max = 3" \
    train 2 --set ckpt_dir=$ck --set resume=auto --set ckpt_every=2 --set ckpt_keep=5 --set lr=1e38 \
    --set nonfinite=skip --set nonfinite_max=3 --set metrics=$dir/skip.jsonl
[ "$(grep -c 'update skipped' $dir/out.txt)" = 3 ] || fail "skip: $(grep -c 'update skipped' $dir/out.txt) skipped steps"
[ "$(grep -c '"skipped": true' $dir/skip.jsonl)" = 3 ] || fail "skip: metrics $(cat $dir/skip.jsonl)"
h5diff $ck/step-00000006.h5 $ck/step-00000008.h5 /params /params > /dev/null \
    && ! h5diff $ck/step-00000005.h5 $ck/step-00000006.h5 /params /params > /dev/null \
    && [ "$(cat $ck/latest)" = step-00000008.h5 ] \
    && say "ok   nonfinite = skip: steps 7, 8 left the parameters of step 6; step 8 saved and latest" \
    || fail "skip: the parameters of step 8 differ from step 6's"

# eval of a checkpoint whose finite weights (about 1e38 after one step at lr = 1e38; the next
# step's NaN stops that run) overflow.
train 1 --set ckpt_dir=$dir/cke --set steps=5 > /dev/null 2>&1
train 1 --set ckpt_dir=$dir/cke --set resume=auto --set ckpt_every=1 --set lr=1e38 > /dev/null 2>&1
for np in 1 2; do
    refuse "np=$np eval of a non-finite loss" "step-00000006.h5: the loss on $dir/data.h5 is -\?nan" \
        mpi $np $FNN eval --checkpoint $dir/cke/step-00000006.h5 --data $dir/data.h5 --windows 8
done

# The watchdog: one rank stopped (SIGSTOP) in mid-run; the job ends within step_timeout + 5 s
# naming the stopped rank. No watchdog fires in the runs above that set it (step_timeout = 20).
for np in 2 4; do
    S=3; victim=$((np - 1))
    rm -f $dir/wd.txt
    $MPIRUN -np $np $FNN train --config configs/tiny.ini --set data=$dir/data.h5 --set steps=1000000 --set log_every=1 \
        --set step_timeout=$S > $dir/wd.txt 2>&1 &
    mpid=$!
    wait_for_step $dir/wd.txt 3 || fail "np=$np watchdog run did not start"
    vpid=$(ranks_of $mpid | awk -v r=$victim '$2 == r { print $1 }')
    [ -n "$vpid" ] || fail "np=$np: no rank $victim found"
    kill -STOP $vpid; t0=$(date +%s)
    ( sleep 30; kill -KILL $mpid $vpid 2> /dev/null ) & guard=$!
    wait $mpid; rc=$?; t=$(($(date +%s) - t0))
    kill $guard 2> /dev/null
    msg=$(grep -m 1 'fnn: error:' $dir/wd.txt)
    if [ $rc -ne 0 ] && [ $t -le $((S + 5)) ] && echo "$msg" | grep -q "stopped: rank $victim (host $(hostname), pid $vpid)"; then
        say "ok   np=$np watchdog: exit $rc ${t}s after SIGSTOP to rank $victim: $msg"
    else
        fail "np=$np watchdog: exit $rc after ${t}s: $msg"
    fi
    kill -KILL $vpid 2> /dev/null
done

# SIGUSR1 during the setup (once the ckpt_dir lock is taken: the data, init_from and the
# head_ridge fit follow) stops the run before step 1 with exit 75 and a step-0 checkpoint;
# resume = auto continues from it, without a second fit, to the same parameters as a run that
# was never stopped.
ck=$dir/cksig; rm -rf $ck $dir/cksigref
ft="--set init_from=$dir/ck1/step-00000005.h5 --set new_head=true --set head_ridge=true --set steps=3"
train 2 $ft --set ckpt_dir=$dir/cksigref > $dir/sigref.txt 2>&1 || fail "signal in setup: the reference run: $(grep 'fnn: error' $dir/sigref.txt)"
$MPIRUN -np 2 $FNN train --config configs/tiny.ini --set data=$dir/data.h5 $ft --set ckpt_dir=$ck > $dir/sig.txt 2>&1 &
mpid=$!
for i in $(seq 1000); do [ -e $ck/lock ] && break; sleep 0.01; done
kill -USR1 $mpid; wait $mpid; rc=$?
if [ $rc -eq 75 ] && grep -q "^signal received before step 1: checkpoint and stop" $dir/sig.txt && ! grep -q '^step 1/' $dir/sig.txt &&
    [ "$(cat $ck/latest)" = step-00000000.h5 ]; then
    say "ok   SIGUSR1 during the setup: exit 75, step-00000000.h5 written, no step taken"
else
    fail "SIGUSR1 during the setup: exit $rc, $(grep -E '^(signal|step 1/)|fnn: error' $dir/sig.txt | head -2), $(ls $ck | tr '\n' ' ')"
fi
train 2 $ft --set ckpt_dir=$ck --set resume=auto > $dir/sig2.txt 2>&1 || fail "resume after the signal in setup: $(grep 'fnn: error' $dir/sig2.txt)"
grep -q "^resumed from $ck/step-00000000.h5 at step 0" $dir/sig2.txt && ! grep -q "^ridge head:" $dir/sig2.txt \
    && h5diff -q $ck/step-00000003.h5 $dir/cksigref/step-00000003.h5 /params /params > /dev/null \
    && say "ok   resumed from step 0 without a second fit: step 3 equals the unstopped run's bit for bit" \
    || fail "resume after the signal in setup differs: $(grep -E '^(resumed|ridge head)' $dir/sig2.txt)"

[ $fails -eq 0 ] && say "e2e_guard: all passed" || say "e2e_guard: $fails failed"
[ $fails -eq 0 ]
