# Sourced by the sbatch scripts of slurm/ (bash): the job's log lines, the config checks, and one
# fnn step run through launch/fnn-run with the signal forwarding and requeue policy of
# slurm/README.md. The scripts run from the repository: FNN_ROOT, else the directory sbatch was
# called from.
fnn_root=${FNN_ROOT:-${SLURM_SUBMIT_DIR:-$PWD}}
job_log() { echo "fnn job ${SLURM_JOB_ID:-?} $(date -u +%H:%M:%S): $*"; }
job_die() { echo "fnn job: error: $*"; exit 2; }
cd "$fnn_root" 2>/dev/null || job_die "FNN_ROOT = '$fnn_root' is not a directory"
[ -x launch/fnn-run ] || job_die "$fnn_root is not an fnn checkout (no launch/fnn-run): set FNN_ROOT"
max_restarts=${FNN_MAX_RESTARTS:-5}
restart=${SLURM_RESTART_COUNT:-0}

job_header() {
    job_log "$1 on ${SLURM_JOB_NODELIST:-?}: ${SLURM_NTASKS:-?} tasks, ${SLURM_CPUS_PER_TASK:-unset} CPUs per task, run $((restart + 1)) (SLURM_RESTART_COUNT = $restart, at most $max_restarts requeues)"
}

# The value of config key $1 for `--config FILE [--set key=value ...]` in "${@:2}": the file's
# last line for the key, overridden by the last --set of it.
cfg_value() {
    local key=$1 v= file= i
    shift
    local a=("$@")
    for ((i = 0; i < ${#a[@]}; i++)); do [ "${a[i]}" = --config ] && file=${a[i + 1]-}; done
    [ -f "$file" ] && v=$(sed -n "s/^[[:space:]]*$key[[:space:]]*=[[:space:]]*\([^[:space:];#]*\).*/\1/p" "$file" | tail -n 1)
    for ((i = 0; i < ${#a[@]}; i++)); do
        case "${a[i]}" in --set) case "${a[i + 1]-}" in "$key="*) v=${a[i + 1]#"$key="} ;; esac ;; esac
    done
    printf '%s' "$v"
}

# Runs `launch/fnn-run -- "$@"` in the background (bash runs a trap only between commands),
# forwards USR1 (Slurm's --signal=B:USR1@LEAD) and TERM (the time limit) to it as USR1, and
# acts on its status: 0 finished; 75 stopped by a signal with the checkpoint written: requeue
# while SLURM_RESTART_COUNT < FNN_MAX_RESTARTS; anything else is a failure, never requeued.
job_run() {
    launch/fnn-run -- "$@" &
    local pid=$! rc seen out
    signals=0 term=0
    trap 'signals=$((signals + 1)); job_log "SIGUSR1: forwarding to the job"; kill -USR1 $pid' USR1
    trap 'signals=$((signals + 1)) term=1; job_log "SIGTERM: forwarding to the job as SIGUSR1"; kill -USR1 $pid' TERM
    # wait returns early when a trapped signal arrives; wait again for the job's own status.
    while :; do
        seen=$signals
        wait $pid; rc=$?
        [ $signals = $seen ] && break
    done
    trap - USR1 TERM
    case $rc in
        0) job_log "finished" ;;
        75) if [ "$restart" -lt "$max_restarts" ]; then
                job_log "stopped by a signal, checkpoint written: requeueing (requeue $((restart + 1)) of at most $max_restarts)"
                # A preemption (PreemptMode=REQUEUE, scontrol requeue) has requeued the job
                # already, and it sent the SIGTERM: this requeue then fails, harmlessly.
                out=$(scontrol requeue "$SLURM_JOB_ID" 2>&1) || job_log "scontrol requeue $SLURM_JOB_ID failed: $out$([ $term = 1 ] && echo " (after a SIGTERM: a preemption requeues the job itself)")"
            else
                job_log "stopped by a signal, checkpoint written; not requeued: SLURM_RESTART_COUNT = $restart reached FNN_MAX_RESTARTS = $max_restarts"
            fi ;;
        *) job_log "failed with exit status $rc: not requeued" ;;
    esac
    return $rc
}

# args: the training arguments of `train_args SCRIPT [CONFIG] [--set key=value ...]`: --config
# CONFIG (else $FNN_CONFIG), the --set overrides, a ckpt_dir (runs/JOBID/ckpt when neither the
# config nor --set names one) and resume = auto.
train_args() {
    local script=$1 config=${FNN_CONFIG:-}
    shift
    case ${1-} in ''|--*) ;; *) config=$1; shift ;; esac
    [ -n "$config" ] || job_die "no config: sbatch slurm/$script CONFIG [--set key=value ...] (or FNN_CONFIG=CONFIG)"
    [ -f "$config" ] || job_die "config file '$config' not found (in $PWD)"
    args=(train --config "$config" "$@")
    if [ -z "$(cfg_value ckpt_dir "${args[@]}")" ]; then
        args+=(--set "ckpt_dir=runs/$SLURM_JOB_ID/ckpt")
        job_log "no ckpt_dir in $config or --set: checkpoints go to runs/$SLURM_JOB_ID/ckpt"
    fi
    args+=(--set resume=auto)
    [ "$restart" -gt 0 ] && job_log "requeued run: resume = auto continues from the newest checkpoint in $(cfg_value ckpt_dir "${args[@]}")"
    return 0
}
