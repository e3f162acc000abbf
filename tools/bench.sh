#!/bin/sh
# make bench: the performance table of README.md. One rank, one thread: the single-rank core at
# H = 512, 1024, 2048 and L = 1, 2, each Elman row followed by the other cells' rows (those that
# fnn train --help lists) at the same H and L (equal H: the same kernel on G times the rows); then 1 and 2 ranks at H = 2048, 4096,
# L = 2 (tp and dp), Elman.
# Every Elman run also appends its row to $BENCH_CSV (default build/bench.csv, started afresh),
# the CSV of the scaling study (slurm/README.md); each one-rank run precedes the runs measured
# against it, so their efficiency column is filled.
# It starts with what the table's heading names: the date, the CPU (model name, family, model and
# stepping from /proc/cpuinfo: "AMD EPYC" alone does not tell Zen 4 from Zen 5, family 25 from 26),
# its vector extensions, the cores, the build and kernel variant, the OpenBLAS settings of the
# environment (OPENBLAS_CORETYPE chooses the SGEMM kernel of the ceiling), and the load average
# at the start and the end (the table wants a quiet machine).
set -e
csv=${BENCH_CSV:-build/bench.csv}
rm -f "$csv"
cpu() { sed -n "s/^$1[[:space:]]*: //p" /proc/cpuinfo | head -n 1; }
echo "make bench: $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -n)"
echo "cpu: $(cpu 'model name'), family $(cpu 'cpu family') model $(cpu model) stepping $(cpu stepping), $(nproc) cores"
echo "cpu extensions: $(grep -m 1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512.*|avx_vnni)$' | tr '\n' ' ')"
build/fnn inspect --build | sed 's/^/build: /'
echo "openblas environment: $(env | grep '^OPENBLAS_' | sort | tr '\n' ' ')"
echo "load average at start: $(cut -d ' ' -f 1-3 /proc/loadavg)"
gated=$(build/fnn train --help | sed -n 's/^  cell  *[a-z]* (\([a-z|]*\)).*/\1/p' | tr '|' ' ')
gated=${gated#elman }
for L in 1 2; do
    for H in 512 1024 2048; do
        build/fnn bench --hidden $H --layers $L --batch 32 --seq-len 64 --steps 3 --threads 1 --csv "$csv"
        for cell in $gated; do
            build/fnn bench --cell $cell --hidden $H --layers $L --batch 32 --seq-len 64 --steps 3 --threads 1
        done
    done
done
for H in 2048 4096; do
    build/fnn bench --hidden $H --layers 2 --steps 2 --threads 1 --csv "$csv"
    $MPIRUN -np 2 build/fnn bench --hidden $H --layers 2 --steps 2 --threads 1 --tp 2 --csv "$csv"
    $MPIRUN -np 2 build/fnn bench --hidden $H --layers 2 --steps 2 --threads 1 --tp 1 --csv "$csv"
done
echo "load average at end: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "CSV: $csv"
