# A real two-node Slurm on this host, for tests/e2e_slurm.sh and `make scaling-study` (bash,
# sourced). Each node daemon runs in a network namespace and UTS namespace of its own (Slurm
# node names n1, n2; shared notes: slurm-two-nodes.md); munged, slurmctld and the slurmd run in
# the background with their PIDs recorded, on a socket, ports, a bridge, namespaces and node
# hostnames whose names carry this shell's PID, so that clusters of concurrent test runs do not
# meet. All state is under $CL_DIR. cluster_up starts it, cluster_down stops the daemons by PID
# and deletes the links and namespaces by name (call it from an EXIT trap).
#
#   CL_DIR=DIR; source tests/slurm/cluster.sh; cluster_why_not || { cluster_up && ...; }
CL_ID=$$
CL_NET=10.$((200 + CL_ID / 65536 % 50)).$((CL_ID / 256 % 256)).$((CL_ID % 256 / 16 * 16))
# The nodes' hostnames. The namespaces share /dev/shm and /tmp, where Open MPI names its
# shared-memory segments and session directories by hostname and job, and under srun the job is
# a hash of Slurm's job and step IDs, which every cluster counts from 1: with hostnames n1 and
# n2 in every cluster, the ranks of two concurrent test runs mapped each other's segments and
# crashed in mca_btl_vader_poll_handle_frag (tests/e2e_slurm.sh, case d, under load).
CL_HOST=fl$CL_ID-n
CL_BR=flb$CL_ID
CL_PORT=$((20000 + CL_ID % 20000))
CL_PIDS=()
export SLURM_CONF=$CL_DIR/slurm.conf

# Prints why this machine cannot run the cluster (and returns 1), or returns 0.
cluster_why_not() {
    local m=()
    [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
    for c in munged slurmctld slurmd sbatch scontrol ip nsenter unshare; do
        command -v $c > /dev/null || m+=($c)
    done
    [ ${#m[@]} = 0 ] || { echo "missing programs: ${m[*]} (make deps installs them)"; return 1; }
    ip netns add fltest$CL_ID 2> /dev/null || { echo "cannot create network namespaces"; return 1; }
    ip netns del fltest$CL_ID
    [ -r /etc/munge/munge.key ] || { echo "no /etc/munge/munge.key (mungekey --create makes one)"; return 1; }
    return 0
}

cl_addr() { echo "${CL_NET%.*}.$(( ${CL_NET##*.} + $1 ))"; }

cluster_conf() {
    local cpus
    cpus=$(nproc)
    cat > $CL_DIR/slurm.conf <<EOF
ClusterName=fnn$CL_ID
SlurmctldHost=$(hostname -s)($(cl_addr 1))
SlurmctldPort=$CL_PORT
SlurmdPort=$((CL_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$CL_DIR/munge.sock,cred_expire=10
StateSaveLocation=$CL_DIR/state
SlurmdSpoolDir=$CL_DIR/d/%n
SlurmctldPidFile=$CL_DIR/run/slurmctld.pid
SlurmdPidFile=$CL_DIR/run/slurmd.%n.pid
SlurmctldLogFile=$CL_DIR/log/slurmctld.log
SlurmdLogFile=$CL_DIR/log/slurmd.%n.log
TmpFS=$CL_DIR/tmp/%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SwitchType=switch/none
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
JobRequeue=1
ReturnToService=2
MinJobAge=600
KillWait=10
InactiveLimit=0
SchedulerParameters=sched_interval=2,bf_interval=1
NodeName=n1 NodeAddr=$(cl_addr 11) NodeHostname=${CL_HOST}1 CPUs=$cpus RealMemory=1000 State=UNKNOWN
NodeName=n2 NodeAddr=$(cl_addr 12) NodeHostname=${CL_HOST}2 CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=p Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

cluster_up() {
    mkdir -p $CL_DIR/{state,run,log,d/n1,d/n2,tmp/n1,tmp/n2,munge}
    cluster_conf
    # Bridge with the controller's address; one veth per node, its inner end eth0 in the node's
    # namespace.
    ip link add $CL_BR type bridge && ip addr add $(cl_addr 1)/28 dev $CL_BR && ip link set $CL_BR up || return 1
    for n in 1 2; do
        ip netns add fl$CL_ID-n$n && ip link add flv$CL_ID-$n type veth peer name eth0 netns fl$CL_ID-n$n &&
            ip link set flv$CL_ID-$n master $CL_BR up &&
            ip -n fl$CL_ID-n$n addr add $(cl_addr 1$n)/28 dev eth0 &&
            ip -n fl$CL_ID-n$n link set eth0 up && ip -n fl$CL_ID-n$n link set lo up || return 1
    done
    # munged as root on a socket of this cluster (--force: root and a directory of its own).
    munged --force --socket=$CL_DIR/munge.sock --pid-file=$CL_DIR/run/munged.pid \
        --log-file=$CL_DIR/log/munged.log --seed-file=$CL_DIR/munge/seed || return 1
    CL_PIDS+=($(cat $CL_DIR/run/munged.pid))
    slurmctld -D -f $SLURM_CONF > $CL_DIR/log/slurmctld.out 2>&1 &
    CL_PIDS+=($!)
    for n in 1 2; do
        nsenter --net=/run/netns/fl$CL_ID-n$n unshare --uts sh -c \
            "hostname $CL_HOST$n; exec slurmd -D -N n$n -f $SLURM_CONF" > $CL_DIR/log/slurmd.n$n.out 2>&1 &
        CL_PIDS+=($!)
    done
    for i in $(seq 100); do
        [ "$(sinfo -h -o %t -p p 2> /dev/null | sort -u | tr '\n' ' ')" = "idle " ] && return 0
        sleep 0.2
    done
    echo "cluster: nodes not idle after 20 s: $(sinfo -h -N -o '%N %t %E' 2>&1 | tr '\n' ';')"
    return 1
}

# Stops what cluster_up started, by recorded PID and by name; safe to call more than once.
cluster_down() {
    local p i
    # Jobs left by a failed check end first, so no job step outlives its daemon.
    [ ${#CL_PIDS[@]} -gt 0 ] && scancel -f -p p 2> /dev/null && sleep 1
    for p in "${CL_PIDS[@]}"; do kill $p 2> /dev/null; done
    for i in $(seq 50); do
        local alive=0
        for p in "${CL_PIDS[@]}"; do
            [ -e /proc/$p ] && [ "$(awk '{print $3}' /proc/$p/stat 2> /dev/null)" != Z ] && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "${CL_PIDS[@]}"; do kill -9 $p 2> /dev/null; done
    CL_PIDS=()
    for n in 1 2; do
        ip link del flv$CL_ID-$n 2> /dev/null
        ip netns del fl$CL_ID-n$n 2> /dev/null
    done
    ip link del $CL_BR 2> /dev/null
    return 0
}

# Waits until job $1 leaves the queue and prints its final state (COMPLETED, FAILED, ...).
cluster_wait_job() {
    local i s
    for i in $(seq ${2:-600}); do
        s=$(scontrol show job $1 2> /dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
        case $s in PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED|REQUEUE_HOLD|"") sleep 0.5 ;; *) echo $s; return ;; esac
    done
    echo TIMEOUT_WAITING
}
