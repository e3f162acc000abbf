#!/bin/bash
# make scaling-report: the scaling study (slurm/scaling.sbatch) on a two-node Slurm of this
# machine (tests/slurm/cluster.sh): one job on one node (1 and 2 ranks) and one on both nodes
# (1, 2 and 4 ranks, two per node), then slurm/report. Writes OUT/one-node.csv,
# OUT/two-nodes.csv, OUT/scaling.md, OUT/tokens.png, OUT/efficiency.png. The FNN_SCALING_*
# variables of slurm/scaling.sbatch pass through (defaults: H = 2048 4096, L = 2).
set -u
cd "$(dirname "$0")/../.."
out=${1:-build/scaling}
mkdir -p "$out" && rm -f "$out"/one-node.csv "$out"/two-nodes.csv
CL_DIR=$(mktemp -d /tmp/fnn-study.XXXXXX)
source tests/slurm/cluster.sh
if ! why=$(cluster_why_not); then echo "scaling study: cannot run Slurm here: $why"; rm -rf "$CL_DIR"; exit 1; fi
trap 'cluster_down; rm -rf "$CL_DIR"' EXIT
cluster_up || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
for job in "1 2 one-node" "2 2 two-nodes"; do
    set -- $job
    id=$(sbatch --parsable -N $1 --ntasks-per-node=$2 -o "$out/$3.log" slurm/scaling.sbatch "$out/$3.csv")
    echo "scaling study: job $id on $1 node(s), $2 tasks per node: $out/$3.log"
    s=$(cluster_wait_job $id 7200)
    [ "$s" = COMPLETED ] || { echo "scaling study: job $id $s: $(tail -n 3 "$out/$3.log")"; status=1; }
done
slurm/report -o "$out" "$out"/one-node.csv "$out"/two-nodes.csv || status=1
exit $status
