#!/bin/bash
# The Slurm scripts of slurm/ against a real Slurm on this host: a controller and two node
# daemons, each node in a network namespace of its own (tests/slurm/cluster.sh), so a job of one
# task per node has ranks that share no memory and reduce by message. Checks (issue 10, item 5):
# a. pretrain.sbatch on one node: completes, checkpoint and log present, loss falls;
# b. two nodes, dp = 2: per-step losses equal the one-rank run's to 1e-5; two nodes, tp = 2;
#    both checkpoints load at np = 1 and evaluate to the one-rank checkpoint's loss;
# c. USR1 through Slurm: checkpoint, exit 75, requeue (SLURM_RESTART_COUNT = 1), continue; the
#    concatenated per-step losses equal an uninterrupted run's bit for bit; with
#    FNN_MAX_RESTARTS = 0 the job is not requeued;
# d. scaling.sbatch over 1, 2 and 4 ranks on the two nodes writes its CSV; slurm/report makes
#    the table and the PNGs;
# finetune.sbatch from a's checkpoint; bad input in the job log; and srun reports this cluster's
# own hostnames (two clusters at once must not share Open MPI's shared-memory files). Where Slurm
# cannot run, one line says what was skipped and why.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
cd "$(dirname "$0")/.."
MPIRUN=${MPIRUN:-mpirun --oversubscribe}
dir=build/slurm-test
. tests/lib.sh
[ -x $FNN ] || { say "FAIL: $FNN not built"; exit 1; }
mkdir -p build/tiny && [ -f build/tiny/data.h5 ] || $FNN prepare --kind text --val-fraction 0.1 --out build/tiny/data.h5 /usr/share/games/fortunes/computers > /dev/null

# The launcher alone (no Slurm needed): the lines it builds and its refusals.
expect_line() { # what, pattern, command...
    local what=$1 pat=$2; shift 2
    out=$("$@" 2>&1); rc=$?
    if printf '%s\n' "$out" | grep -q -- "$pat"; then say "ok   fnn-run: $what: $(printf '%s' "$out" | head -n 1)"
    else fail "fnn-run: $what: exit $rc: $out"; fi
}
expect_line "mpirun line" "^mpirun -np 4 .*--bind-to core .*OPENBLAS_NUM_THREADS=1 .*build/fnn train --config configs/tiny.ini --set tp=2 --set threads=1" \
    env -u SLURM_JOB_ID launch/fnn-run --dry-run -n 4 --tp 2 --threads 1 -- train --config configs/tiny.ini
expect_line "srun line" "^srun --mpi=pmix -n 2 .*-c 3 --cpu-bind=cores .*build/fnn bench --hidden 64 --threads 3" \
    env SLURM_JOB_ID=1 SLURM_NTASKS=2 SLURM_CPUS_PER_TASK=3 launch/fnn-run --dry-run --launcher srun -- bench --hidden 64
expect_line "one rank on a two-node allocation: srun -N 1" "^srun --mpi=pmix -n 1 .* -N 1 .*build/fnn bench" \
    env SLURM_JOB_ID=1 SLURM_NTASKS=4 SLURM_JOB_NUM_NODES=2 launch/fnn-run --dry-run --launcher srun -n 1 -- bench --hidden 64
expect_line "oversubscribed" "^mpirun -np 8 .*--oversubscribe --bind-to none" \
    env -u SLURM_JOB_ID launch/fnn-run --dry-run -n 8 --oversubscribe -- eval --checkpoint x
expect_line "SLURM_CPUS_PER_TASK unset" "SLURM_CPUS_PER_TASK is unset: 1 BLAS thread per rank" \
    env -u SLURM_CPUS_PER_TASK SLURM_JOB_ID=1 SLURM_NTASKS=2 launch/fnn-run --dry-run --launcher mpirun -- train --config configs/tiny.ini
expect_line "SLURM_CPUS_PER_TASK = 0" "SLURM_CPUS_PER_TASK is 0: 1 BLAS thread per rank" \
    env SLURM_CPUS_PER_TASK=0 SLURM_JOB_ID=1 SLURM_NTASKS=2 launch/fnn-run --dry-run --launcher mpirun -- train --config configs/tiny.ini
expect_line "tp from the config's --set" "fnn-run: error: tp = 3 does not divide the 4 ranks of the job (SLURM_NTASKS = 4)" \
    env SLURM_JOB_ID=1 SLURM_NTASKS=4 launch/fnn-run --dry-run --launcher mpirun -- train --config configs/tiny.ini --set tp=3
expect_line "missing config" "fnn-run: error: config file 'nope.ini' not found" launch/fnn-run --dry-run -- train --config nope.ini

CL_DIR=$(mktemp -d /tmp/fnn-slurm.XXXXXX)
source tests/slurm/cluster.sh
if ! why=$(cluster_why_not); then
    say "SKIPPED: the Slurm checks a-d and the job-log checks of tests/e2e_slurm.sh: $why"
    rm -rf "$CL_DIR"
    [ $fails = 0 ] && say "fnn-run checks passed; Slurm checks skipped" && exit 0
    exit 1
fi
trap 'cluster_down; rm -rf "$CL_DIR"' EXIT
t0=$(date +%s)
cluster_up || { fail "cluster did not come up: $(tail -n 3 $CL_DIR/log/*.log)"; exit 1; }
say "ok   two-node cluster up in $(($(date +%s) - t0)) s (n1, n2 in namespaces fl$CL_ID-n1/n2)"
# Hostnames unique to this cluster: Open MPI names its /dev/shm segments by hostname and (under
# srun) Slurm's job and step IDs, so concurrent test runs whose nodes shared a hostname crashed
# each other's ranks (tests/slurm/cluster.sh).
hosts=$(srun -N2 -n2 -l hostname 2>&1 | sort | cut -d' ' -f2 | tr '\n' ' ')
[ "$hosts" = "fl$CL_ID-n1 fl$CL_ID-n2 " ] && say "ok   node hostnames unique to this cluster: $hosts" ||
    fail "node hostnames '$hosts': expected fl$CL_ID-n1 fl$CL_ID-n2"

submit() { sbatch --parsable -o $dir/%x-%j.log "$@" | cut -d';' -f1; }
state() { scontrol show job $1 | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
# The loss column of a metrics JSONL file, one line per step.
losses() { sed -n 's/.*"loss": \([^,]*\),.*/\1/p' "$1"; }
# Per-step losses of two files agree to a relative 1e-5 (and have the same steps).
losses_close() {
    [ "$(losses $1 | wc -l)" = "$(losses $2 | wc -l)" ] && [ "$(losses $1 | wc -l)" -gt 0 ] &&
        paste <(losses $1) <(losses $2) | awk '{ d = $1 - $2; d = d < 0 ? -d : d; if (d > 1e-5 * ($1 < 0 ? -$1 : $1)) bad++ } END { exit bad > 0 }'
}
tiny="configs/tiny.ini --set data=build/tiny/data.h5"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# The one-rank reference, outside Slurm.
$MPIRUN -np 1 $FNN train --config $tiny --set threads=1 --set metrics=$dir/ref.jsonl --set ckpt_dir=$dir/ckref > $dir/ref.txt 2>&1 || fail "one-rank reference run"
ref_loss=$($FNN eval --checkpoint $dir/ckref/step-00000020.h5 --data build/tiny/data.h5 --windows 8 | sed -n 's/^loss \([^ ]*\) .*/\1/p')

# a. One node, two tasks. b. Two nodes, one task each: dp = 2, and tp = 2.
ja=$(submit -N1 --ntasks-per-node=2 slurm/pretrain.sbatch $tiny --set ckpt_dir=$dir/cka --set metrics=$dir/a.jsonl)
jb=$(submit -N2 --ntasks-per-node=1 slurm/pretrain.sbatch $tiny --set ckpt_dir=$dir/ckb --set metrics=$dir/b.jsonl)
jt=$(submit -N2 --ntasks-per-node=1 slurm/pretrain.sbatch $tiny --set ckpt_dir=$dir/ckt --set metrics=$dir/t.jsonl --set tp=2)
# Bad input: a missing config and a tp that does not fit, refused in the job log.
# (Without -o, in $dir: the script's own log name, fnn-pretrain-JOBID.log.)
jm=$(sbatch --parsable -D $PWD/$dir -N1 -n1 slurm/pretrain.sbatch configs/nope.ini | cut -d';' -f1)
jp=$(submit -N1 -n2 slurm/pretrain.sbatch $tiny --set tp=4 --set ckpt_dir=$dir/ckp)
for j in $ja $jb $jt $jm $jp; do cluster_wait_job $j 300 > $dir/state.$j; done
loga=$dir/fnn-pretrain-$ja.log
if [ "$(cat $dir/state.$ja)" = COMPLETED ] && [ -f $dir/cka/step-00000020.h5 ] && grep -q "fnn job $ja .*: finished" $loga; then
    first=$(losses $dir/a.jsonl | head -n 1); last=$(losses $dir/a.jsonl | tail -n 1)
    awk -v a=$first -v b=$last 'BEGIN { exit !(b < a) }' && say "ok   a. one node: COMPLETED, checkpoint, log; loss $first -> $last" || fail "a. loss did not fall: $first -> $last"
    grep -q "resume = auto: no checkpoint in '$dir/cka', starting fresh" $loga || fail "a. the log does not say resume = auto started fresh"
else
    fail "a. one-node job: $(cat $dir/state.$ja): $(tail -n 5 $loga)"
fi
for j in $jb $jt; do
    name=$([ $j = $jb ] && echo "dp=2" || echo "tp=2"); m=$([ $j = $jb ] && echo b || echo t)
    log=$dir/fnn-pretrain-$j.log
    if [ "$(cat $dir/state.$j)" != COMPLETED ]; then fail "b. two nodes $name: $(cat $dir/state.$j): $(tail -n 5 $log)"; continue; fi
    grep -q "on n\[1-2\]: 2 tasks" $log || fail "b. $name did not span n1 and n2: $(grep 'fnn job' $log | head -n 1)"
    losses_close $dir/ref.jsonl $dir/$m.jsonl && say "ok   b. two nodes $name: 20 per-step losses equal the one-rank run's to 1e-5 ($(losses $dir/$m.jsonl | tail -n 1))" || fail "b. $name losses differ from one rank"
    l=$($FNN eval --checkpoint $dir/ck$m/step-00000020.h5 --data build/tiny/data.h5 --windows 8 2>&1 | sed -n 's/^loss \([^ ]*\) .*/\1/p')
    awk -v a="$l" -v b="$ref_loss" 'BEGIN { d = a - b; d = d < 0 ? -d : d; exit !(a != "" && d <= 1e-5 * b) }' &&
        say "ok   b. the $name checkpoint loads at np = 1: eval loss $l (one-rank run's: $ref_loss)" || fail "b. $name checkpoint at np = 1: loss '$l' vs $ref_loss"
done
grep -q "fnn job: error: config file 'configs/nope.ini' not found" $dir/fnn-pretrain-$jm.log && [ "$(cat $dir/state.$jm)" = FAILED ] &&
    say "ok   bad input: missing config: $(grep 'error' $dir/fnn-pretrain-$jm.log)" || fail "missing config: $(cat $dir/state.$jm) $(cat $dir/fnn-pretrain-$jm.log)"
grep -q "fnn-run: error: tp = 4 does not divide the 2 ranks of the job (SLURM_NTASKS = 2)" $dir/fnn-pretrain-$jp.log && [ "$(cat $dir/state.$jp)" = FAILED ] && [ ! -d $dir/ckp ] &&
    say "ok   bad input: tp too large for the allocation: $(grep 'error' $dir/fnn-pretrain-$jp.log)" || fail "tp check: $(cat $dir/state.$jp) $(cat $dir/fnn-pretrain-$jp.log)"

# finetune.sbatch from job a's checkpoint: its first loss is the pretrained model's, not a fresh
# one's; without init_from it is refused.
jf=$(submit -N1 -n1 slurm/finetune.sbatch $tiny --set init_from=$dir/cka/step-00000020.h5 --set steps=5 --set ckpt_dir=$dir/ckf --set metrics=$dir/f.jsonl)
jg=$(submit -N1 -n1 slurm/finetune.sbatch $tiny --set steps=5)
sf=$(cluster_wait_job $jf 120); sg=$(cluster_wait_job $jg 120)
f1=$(losses $dir/f.jsonl 2> /dev/null | head -n 1); a1=$(losses $dir/a.jsonl | head -n 1)
[ "$sf" = COMPLETED ] && grep -q "^loaded layer0/Wh" $dir/fnn-finetune-$jf.log && awk -v f="$f1" -v a="$a1" 'BEGIN { exit !(f != "" && f < a - 0.2) }' &&
    say "ok   finetune.sbatch: from the pretrained checkpoint, first loss $f1 (a fresh model's: $a1)" || fail "finetune: $sf, first loss '$f1': $(tail -n 3 $dir/fnn-finetune-$jf.log)"
grep -q "fnn job: error: finetune needs init_from" $dir/fnn-finetune-$jg.log && [ "$sg" = FAILED ] &&
    say "ok   bad input: finetune without init_from: $(grep error $dir/fnn-finetune-$jg.log)" || fail "finetune without init_from: $sg $(cat $dir/fnn-finetune-$jg.log)"

# c. Preemption through Slurm, requeue and continuation; then a job that may not be requeued.
long="$tiny --set hidden=128 --set steps=800 --set log_every=100"
$MPIRUN -np 1 $FNN train --config $long --set threads=1 --set metrics=$dir/refc.jsonl > $dir/refc.txt 2>&1 || fail "c. uninterrupted reference run"
jc=$(submit -N1 -n1 slurm/pretrain.sbatch $long --set ckpt_dir=$dir/ckc --set metrics=$dir/c.jsonl)
# ckpt_every = 1: the signal lands on a checkpoint step, whose checkpoint must be written once.
jn=$(FNN_MAX_RESTARTS=0 submit -N1 -n1 slurm/pretrain.sbatch $long --set ckpt_dir=$dir/ckn --set metrics=$dir/n.jsonl --set ckpt_every=1)
# The scheduler's preemption: `scontrol requeue` of the running job (what PreemptMode=REQUEUE
# does) sends SIGTERM to every step and the batch shell, SIGKILL after KillWait (10 s here).
jq=$(submit -N1 -n1 slurm/pretrain.sbatch $long --set ckpt_dir=$dir/ckq --set metrics=$dir/q.jsonl --set ckpt_every=100)
for j in $jc $jn $jq; do
    m=$dir/$([ $j = $jc ] && echo c || { [ $j = $jn ] && echo n || echo q; }).jsonl
    for i in $(seq 600); do [ -s $m ] && [ $(wc -l < $m) -ge 50 ] && break; sleep 0.1; done
    if [ $j = $jq ]; then scontrol requeue $j; else scancel --signal=USR1 --batch $j; fi
done
sc=$(cluster_wait_job $jc 300); sn=$(cluster_wait_job $jn 120); sq=$(cluster_wait_job $jq 300)
logc=$dir/fnn-pretrain-$jc.log
stop=$(sed -n 's/^signal received: checkpoint at step \([0-9]*\) and stop/\1/p' $logc)
if [ "$sc" = COMPLETED ] && [ -n "$stop" ] && grep -q "requeueing (requeue 1 of at most 5)" $logc &&
    grep -q "run 2 (SLURM_RESTART_COUNT = 1" $logc && grep -q "resumed from $dir/ckc/step-$(printf %08d $stop).h5 at step $stop" $logc; then
    if [ "$(losses $dir/c.jsonl | md5sum)" = "$(losses $dir/refc.jsonl | md5sum)" ]; then
        say "ok   c. USR1 via Slurm: checkpoint at step $stop, exit 75, requeued, resumed, finished; 800 per-step losses equal the uninterrupted run's bit for bit"
    else
        fail "c. the concatenated losses differ from the uninterrupted run's ($(losses $dir/c.jsonl | wc -l) lines)"
    fi
else
    fail "c. preemption: state $sc, stop at '$stop': $(grep -E 'fnn job|signal|resumed|error' $logc | tail -n 8)"
fi
logn=$dir/fnn-pretrain-$jn.log
grep -q "not requeued: SLURM_RESTART_COUNT = 0 reached FNN_MAX_RESTARTS = 0" $logn && [ "$sn" = FAILED ] &&
    scontrol show job $jn | grep -q "ExitCode=75:0" && say "ok   c. FNN_MAX_RESTARTS = 0: stopped with exit 75, not requeued" || fail "c. max restarts: $sn: $(grep 'fnn job' $logn | tail -n 3)"
stopn=$(sed -n 's/^signal received: checkpoint at step \([0-9]*\) and stop/\1/p' $logn)
twice=$(grep '^checkpoint ' $logn | sort | uniq -d | tr '\n' ' ')
[ -n "$stopn" ] && [ -z "$twice" ] && [ "$(grep -c "^checkpoint $dir/ckn/step-$(printf %08d $stopn).h5$" $logn)" = 1 ] &&
    say "ok   c. a signal on a checkpoint step (ckpt_every = 1, stop at $stopn): each of $(grep -c '^checkpoint ' $logn) checkpoints written once" ||
    fail "c. checkpoints written twice: ${twice:-none}, stop at '$stopn'"
# The preemption: the ranks checkpoint at the next step boundary within KillWait and exit 75; the
# job, requeued by the scheduler, resumes from that checkpoint: no step lost or repeated.
logq=$dir/fnn-pretrain-$jq.log
stopq=$(sed -n 's/^signal received: checkpoint at step \([0-9]*\) and stop/\1/p' $logq)
if [ "$sq" = COMPLETED ] && [ -n "$stopq" ] && grep -q "CANCELLED AT .* DUE TO JOB REQUEUE" $logq &&
    grep -q "run 2 (SLURM_RESTART_COUNT = 1" $logq && grep -q "resumed from $dir/ckq/step-$(printf %08d $stopq).h5 at step $stopq" $logq &&
    [ "$(losses $dir/q.jsonl | md5sum)" = "$(losses $dir/refc.jsonl | md5sum)" ]; then
    say "ok   c. scheduler preemption (scontrol requeue): checkpoint at step $stopq before KillWait, requeued, resumed from it; 800 per-step losses equal the uninterrupted run's"
else
    fail "c. scheduler preemption: state $sq, stop at '$stopq': $(grep -E 'fnn job|signal|resumed|error|CANCELLED' $logq | tail -n 8)"
fi

# d. The scaling study over 1, 2 and 4 ranks on the two nodes, and its report.
js=$(FNN_SCALING_H=64 FNN_SCALING_L=1 FNN_SCALING_STEPS=1 FNN_SCALING_TP=1 FNN_SCALING_BATCH=16 FNN_SCALING_BATCH_WEAK=4 \
    submit -N2 --ntasks-per-node=2 slurm/scaling.sbatch $dir/scaling.csv)
ss=$(cluster_wait_job $js 300)
rows=$(awk -F, 'NR > 1 { print $14 "/" $6 "/" $7 "x" $8 "/" $5 }' $dir/scaling.csv 2> /dev/null | tr '\n' ' ')
want="strong/1/1x1/1 strong/2/1x2/2 strong/4/1x4/2 weak/1/1x1/1 weak/2/1x2/2 weak/4/1x4/2 "
if [ "$ss" = COMPLETED ] && [ "$rows" = "$want" ]; then
    say "ok   d. scaling.sbatch: 6 rows (kind/ranks/tp x dp/nodes): $rows"
else
    fail "d. scaling study: $ss, rows '$rows': $(tail -n 5 $dir/fnn-scaling-$js.log)"
fi
grep -q "can't run" $dir/fnn-scaling-$js.log && fail "d. srun warned: $(grep -m 1 "can't run" $dir/fnn-scaling-$js.log)"
# Efficiency recomputed here: tok/s over ranks x the one-rank tok/s of the same kind of scaling.
awk -F, 'NR > 1 && $6 == 1 { base[$14] = $9 } NR > 1 { e = $9 / ($6 * base[$14]); d = e - $12; if (d < 0) d = -d; if (d > 6e-5 + 1e-4 * e) bad++ }
         END { exit !(NR == 7 && bad == 0) }' $dir/scaling.csv && say "ok   d. the efficiency column equals tok/s / (ranks x one-rank tok/s)" || fail "d. efficiency column"
if slurm/report -o $dir/report $dir/scaling.csv > $dir/report.txt 2>&1 && [ "$(grep -c '| strong |\|| weak |' $dir/report/scaling.md)" = 6 ] &&
    [ "$(head -c 4 $dir/report/tokens.png | tail -c 3)" = PNG ] && [ "$(head -c 4 $dir/report/efficiency.png | tail -c 3)" = PNG ]; then
    say "ok   d. slurm/report: table of 6 rows, tokens.png, efficiency.png"
else
    fail "d. report: $(cat $dir/report.txt)"
fi

say "Slurm checks took $(($(date +%s) - t0)) s"
[ $fails = 0 ] && say "all Slurm checks passed" || say "$fails Slurm checks failed"
[ $fails = 0 ]
