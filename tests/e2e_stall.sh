#!/bin/sh
# The step watchdog's default (step_timeout = auto, docs/config.md) against a stalled rank, at 2
# ranks: a rank stopped by SIGSTOP in mid-run ends the job within the automatic limit (10 x the
# slowest step so far, at least the floor, scaled down here to 3 s by FNN_STEP_TIMEOUT_FLOOR),
# with one line naming the step and the stopped rank, exit non-zero, and no rank left behind; a
# job suspended and resumed as a whole goes on; step_timeout = 0 stays off (a rank stopped for
# longer than the floor resumes and the run goes on); malformed values are refused with one line.
# The save watchdog (ckpt_timeout) against a rank stopped in a save, with and without ckpt_async,
# and against a write that hangs.
dir=build/stall
data=data.h5
. tests/lib.sh
floor=3
# Every process started here, killed by pid whatever happens (a stopped rank never ends alone).
pids=
trap 'for p in $pids; do kill -KILL $p 2> /dev/null; done' EXIT
ranks_of() {
    for p in $(pgrep -P "$1"); do
        r=$(tr '\0' '\n' < /proc/$p/environ 2> /dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
        [ -n "$r" ] && echo "$p $r"
    done
}
# The last "step N/" line of $1, after at least step $2 (up to 2 minutes on a loaded machine).
wait_for_step() {
    for i in $(seq 1200); do
        n=$(sed -n 's|^step \([0-9]*\)/.*|\1|p' "$1" | tail -n 1)
        [ -n "$n" ] && [ "$n" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
alive() { [ -e /proc/$1 ] && ! grep -q '^[0-9]* ([^)]*) Z' /proc/$1/stat 2> /dev/null; }
last_step() { sed -n 's|^step \([0-9]*\)/.*|\1|p' "$1" | tail -n 1; }

$FNN prepare --kind text --val-fraction 0.1 --out $dir/data.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
# configs/tiny.ini turns the watchdog off (step_timeout = 0) for the other tests; this copy
# leaves the key out, so the runs below get the default.
cfg=$dir/default.ini
grep -v '^[[:space:]]*step_timeout' configs/tiny.ini > $cfg
run="$FNN train --config $cfg --set data=$dir/data.h5 --set steps=100000000 --set log_every=1"

refuse "step_timeout = -1" "step_timeout = -1: must be >= 0 or auto" train 1 --set step_timeout=-1
refuse "step_timeout = soon" "key 'step_timeout': 'soon' is not a number of seconds or auto" train 1 --set step_timeout=soon
refuse "FNN_STEP_TIMEOUT_FLOOR = 0" "FNN_STEP_TIMEOUT_FLOOR = 0: must be a number of seconds > 0" \
    env FNN_STEP_TIMEOUT_FLOOR=0 timeout 60 $MPIRUN -np 2 $run --set steps=5

# The default against a stopped rank 1.
env FNN_STEP_TIMEOUT_FLOOR=$floor $MPIRUN -np 2 $run > $dir/auto.txt 2>&1 &
mpid=$!; pids="$pids $mpid"
# Past the warm-up (the first 3 steps are not timed against a limit) and a few timed steps.
if ! wait_for_step $dir/auto.txt 10; then
    fail "auto: no step 10 within 120 s: $(grep -m 2 'error' $dir/auto.txt)"
else
    grep -q '^step_timeout = auto$' $dir/auto.txt || fail "auto: the config echo does not say step_timeout = auto"
    rpids=$(ranks_of $mpid | cut -d' ' -f1); pids="$pids $rpids"
    vpid=$(ranks_of $mpid | awk '$2 == 1 { print $1 }')
    kill -STOP $vpid; t0=$(date +%s%N); stopped_after=$(last_step $dir/auto.txt)
    # Up to 90 s (the watchdog off, the job would run on): then killed, and the check fails.
    for i in $(seq 900); do alive $mpid || break; sleep 0.1; done
    t=$(( ($(date +%s%N) - t0) / 1000000 ))
    kill -KILL $mpid 2> /dev/null; wait $mpid; rc=$?
    # mpirun may exit before its last SIGKILL has landed: up to 10 s for the ranks to go (a
    # zombie, dead but not yet reaped by its new parent, counts as gone).
    for i in $(seq 100); do
        left=; for p in $vpid $rpids; do alive $p && left="$left $p"; done
        [ -z "$left" ] && break; sleep 0.1
    done
    [ -n "$left" ] && left="$left ($(ps -o pid=,stat=,comm= -p "$(echo $left | tr ' ' ,)" | tr '\n' ' '))"
    n=$(grep -c 'fnn: error:' $dir/auto.txt)
    msg=$(grep -m 1 'fnn: error:' $dir/auto.txt)
    # "... auto (10 x the slowest step so far, S s, at least F s): step N has not finished on
    # rank 0 (host H) after L s; stopped: rank 1 (host H, pid P)"
    slowest=$(echo "$msg" | sed -n 's/.*slowest step so far, \([0-9.e+-]*\) s, at least \([0-9.e+-]*\) s).*/\1/p')
    least=$(echo "$msg" | sed -n 's/.*, at least \([0-9.e+-]*\) s).*/\1/p')
    limit=$(echo "$msg" | sed -n 's/.* after \([0-9.e+-]*\) s; .*/\1/p')
    step=$(echo "$msg" | sed -n 's/.*: step \([0-9]*\) has not finished on rank 0 .*/\1/p')
    # The limit is max(floor, 10 x slowest) to the message's 3 digits; the job ends within it
    # and mpirun's kill (about 2 s); the step is the one the stopped rank left unfinished: the
    # last printed step, or the next (rank 0 prints a step before its last collective).
    if [ $rc -ne 0 ] && [ $rc -ne 137 ] && [ "$n" -eq 1 ] && [ -z "$left" ] && [ -n "$limit" ] && [ -n "$step" ] &&
        echo "$msg" | grep -q "^fnn: error: step_timeout = auto (10 x the slowest step so far, .*stopped: rank 1 (host $(hostname), pid $vpid)$" &&
        awk -v s="$slowest" -v f="$least" -v l="$limit" -v t=$t -v fl=$floor -v st="$step" -v k="$stopped_after" 'BEGIN {
            want = 10 * s; if (want < f) want = f
            d = l - want; if (d < 0) d = -d
            exit !(f == fl && d <= 0.01 * want + 0.001 && t / 1000 <= l + 5 && (st == k || st == k + 1)) }'; then
        say "ok   np=2 default step_timeout: exit $rc $((t / 1000)).$((t % 1000 / 100))s after SIGSTOP to rank 1 (limit $limit s), no rank left: $msg"
    else
        fail "np=2 default step_timeout: exit $rc after ${t} ms, $n error lines, ranks left:${left:- none}, stopped after step $stopped_after: $msg"
    fi
fi

# The whole job suspended and resumed (SIGSTOP, then SIGCONT, to every rank: what Slurm's
# `scontrol suspend` and gang scheduling do) for longer than the automatic limit (10 x steps of
# well under 1 s, floor 1 s): the watchdogs wake late, give the step a new limit, and the run goes
# on; SIGUSR1 then stops it (exit 75).
env FNN_STEP_TIMEOUT_FLOOR=1 $MPIRUN -np 2 $run --set ckpt_dir=$dir/cks > $dir/susp.txt 2>&1 &
mpid=$!; pids="$pids $mpid"
if ! wait_for_step $dir/susp.txt 10; then
    fail "suspend: no step 10 within 120 s: $(grep -m 2 'error' $dir/susp.txt)"
else
    rpids=$(ranks_of $mpid | cut -d' ' -f1); pids="$pids $rpids"
    kill -STOP $rpids; sleep 15; k=$(last_step $dir/susp.txt); kill -CONT $rpids
    wait_for_step $dir/susp.txt $((k + 5)) || fail "suspend: no step after the job resumed: $(grep -m 1 'fnn: error' $dir/susp.txt)"
    kill -USR1 $mpid; wait $mpid; rc=$?
    [ $rc -eq 75 ] && ! grep -q 'fnn: error' $dir/susp.txt &&
        say "ok   np=2 default step_timeout: the whole job suspended for 15 s at step $k resumed (then $(last_step $dir/susp.txt)); SIGUSR1: exit 75" ||
        fail "np=2 suspended job: exit $rc: $(grep -m 1 'fnn: error' $dir/susp.txt)"
fi

# step_timeout = 0: off. A rank stopped for twice the floor resumes, the run goes on, and a
# SIGUSR1 then stops it as usual (exit 75).
env FNN_STEP_TIMEOUT_FLOOR=1 $MPIRUN -np 2 $run --set step_timeout=0 --set ckpt_dir=$dir/ck0 > $dir/off.txt 2>&1 &
mpid=$!; pids="$pids $mpid"
if ! wait_for_step $dir/off.txt 10; then
    fail "off: no step 10 within 120 s: $(grep -m 2 'error' $dir/off.txt)"
else
    vpid=$(ranks_of $mpid | awk '$2 == 1 { print $1 }'); pids="$pids $(ranks_of $mpid | cut -d' ' -f1)"
    kill -STOP $vpid; sleep 2; k=$(last_step $dir/off.txt); sleep 2; kill -CONT $vpid
    wait_for_step $dir/off.txt $((k + 5)) || fail "off: no step after the rank resumed: $(grep -m 1 'fnn: error' $dir/off.txt)"
    kill -USR1 $mpid; wait $mpid; rc=$?
    [ $rc -eq 75 ] && ! grep -q 'fnn: error' $dir/off.txt &&
        say "ok   np=2 step_timeout = 0: a rank stopped for 4 s resumed (step $k, then $(last_step $dir/off.txt)), no watchdog; SIGUSR1: exit 75" ||
        fail "np=2 step_timeout = 0: exit $rc: $(grep -m 1 'fnn: error' $dir/off.txt)"
fi


# ckpt_timeout (auto, its floor scaled down to 3 s by FNN_CKPT_TIMEOUT_FLOOR; configs/tiny.ini's
# step_timeout = 0 leaves only the save watchdog): rank 1 stopped inside the save of step 20 (its
# writes to that file slowed to 0.1 s each by tests/failwrite.c, so that the stop lands in one)
# ends the job within the limit and mpirun's kill, with one line naming the save and the stopped
# rank; "latest" still names step 10's checkpoint, which verifies. $1: ckpt_async (with true the
# stalled write is the background one of the last step, which the end of the run waits for).
refuse "ckpt_timeout = soon" "key 'ckpt_timeout': 'soon' is not a number of seconds or auto" train 1 --set ckpt_timeout=soon
SHIM=$(pwd)/build/tests/failwrite.so
save_stall() {
    ck=$dir/ck-$1; rm -f $dir/slow.log
    env FNN_CKPT_TIMEOUT_FLOOR=$floor FAILWRITE_RANK=1 FAILWRITE_MODE=slow FAILWRITE_PATH=step-00000020.h5.tmp \
        FAILWRITE_LOG=$dir/slow.log FAILWRITE_THREAD=$( [ $1 = true ] && echo writer || echo any ) \
        $MPIRUN -np 2 -x LD_PRELOAD=$SHIM -x FAILWRITE_RANK -x FAILWRITE_MODE -x FAILWRITE_PATH -x FAILWRITE_LOG \
        -x FAILWRITE_THREAD $FNN train --config configs/tiny.ini --set data=$dir/data.h5 --set ckpt_dir=$ck \
        --set ckpt_every=10 --set steps=$( [ $1 = true ] && echo 20 || echo 30 ) --set ckpt_async=$1 > $dir/save.txt 2>&1 &
    mpid=$!; pids="$pids $mpid"
    # The ranks' pids first: the stop must follow the first slowed write at once (ckpt_async's
    # writer has only some 8 of them).
    for i in $(seq 600); do [ "$(ranks_of $mpid | wc -l)" -eq 2 ] && break; sleep 0.1; done
    rpids=$(ranks_of $mpid | cut -d' ' -f1); pids="$pids $rpids"
    vpid=$(ranks_of $mpid | awk '$2 == 1 { print $1 }')
    for i in $(seq 1200); do [ -s $dir/slow.log ] && break; sleep 0.05; done
    [ -s $dir/slow.log ] && [ -n "$vpid" ] || { fail "ckpt_async=$1: no save of step 20 within 60 s: $(grep -m 1 error $dir/save.txt)"; return; }
    kill -STOP $vpid; t0=$(date +%s%N)
    # Up to 60 s (the save unwatched, the job would hang): then killed, and the check fails.
    for i in $(seq 600); do alive $mpid || break; sleep 0.1; done
    t=$(( ($(date +%s%N) - t0) / 1000000 ))
    kill -KILL $mpid 2> /dev/null; wait $mpid; rc=$?
    for i in $(seq 100); do
        left=; for p in $rpids; do alive $p && left="$left $p"; done
        [ -z "$left" ] && break; sleep 0.1
    done
    n=$(grep -c 'fnn: error:' $dir/save.txt)
    msg=$(grep -m 1 'fnn: error:' $dir/save.txt)
    limit=$(echo "$msg" | sed -n 's/.* after \([0-9.e+-]*\) s; .*/\1/p')
    if [ $rc -ne 0 ] && [ $rc -ne 137 ] && [ "$n" -eq 1 ] && [ -z "$left" ] && [ "$limit" = $floor ] && [ $t -le $(( (floor + 5) * 1000 )) ] &&
        echo "$msg" | grep -q "^fnn: error: ckpt_timeout = auto (.* MiB at 4 MiB/s, 10 x the slowest save so far, .* s, at least $floor s): the checkpoint save of step 20 has not finished on rank 0 (host $(hostname)) after $floor s; stopped: rank 1 (host $(hostname), pid $vpid)$" &&
        [ "$(cat $ck/latest)" = step-00000010.h5 ] && [ ! -e $ck/step-00000020.h5 ] &&
        run $MPIRUN -np 1 $FNN inspect --verify $ck/step-00000010.h5 > /dev/null 2>&1; then
        say "ok   np=2 ckpt_async=$1: rank 1 stopped in the save of step 20: exit $rc $((t / 1000)).$((t % 1000 / 100))s after SIGSTOP, no rank left, latest step 10 verifies: $msg"
    else
        fail "np=2 ckpt_async=$1 stalled save: exit $rc after ${t} ms, $n error lines, ranks left:${left:- none}, latest $(cat $ck/latest): $msg"
    fi
}
save_stall false
save_stall true

# A write that does not return in time (a hung filesystem), no rank stopped: ckpt_timeout = 2,
# rank 1's writes to step 20's file take 0.1 s each (about 80 of them: 8 s, where step 10's save
# took well under 1 s). The job ends in the save, naming it; step 10 stays the latest.
ck=$dir/ck-hung; rm -f $dir/slow.log
env FAILWRITE_RANK=1 FAILWRITE_MODE=slow FAILWRITE_PATH=step-00000020.h5.tmp FAILWRITE_LOG=$dir/slow.log \
    timeout 60 $MPIRUN -np 2 -x LD_PRELOAD=$SHIM -x FAILWRITE_RANK -x FAILWRITE_MODE -x FAILWRITE_PATH -x FAILWRITE_LOG \
    $FNN train --config configs/tiny.ini --set data=$dir/data.h5 --set ckpt_dir=$ck --set ckpt_every=10 \
    --set steps=20 --set ckpt_timeout=2 > $dir/hung.txt 2>&1; rc=$?
msg=$(grep -m 1 'fnn: error:' $dir/hung.txt); writes=$(wc -l < $dir/slow.log)
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$writes" -lt 60 ] && [ "$(grep -c 'fnn: error:' $dir/hung.txt)" -le 2 ] &&
    echo "$msg" | grep -q "^fnn: error: ckpt_timeout = 2 s: the checkpoint save of step 20 has not finished on rank [01] (host $(hostname)) after 2 s; " &&
    [ "$(cat $ck/latest)" = step-00000010.h5 ] && [ ! -e $ck/step-00000020.h5 ]; then
    say "ok   np=2 ckpt_timeout = 2: a save whose writes hang ($writes of them delayed) ends the job, latest step 10: $msg"
else
    fail "np=2 ckpt_timeout = 2, hung writes: exit $rc, $writes writes delayed, latest $(cat $ck/latest): $msg"
fi

[ $fails -eq 0 ]
