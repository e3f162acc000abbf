#!/bin/sh
# make bench: the performance table of README.md. One rank, one thread: the single-rank core at
# H = 512, 1024, 2048 and L = 1, 2, each Elman row followed by the GRU and LSTM rows at the same H
# and L (equal H: the same kernel on 3x and 4x the rows); then 1 and 2 ranks at H = 2048, 4096,
# L = 2 (tp and dp), Elman.
# Every Elman run also appends its row to $BENCH_CSV (default build/bench.csv, started afresh),
# the CSV of the scaling study (slurm/README.md); each one-rank run precedes the runs measured
# against it, so their efficiency column is filled.
set -e
csv=${BENCH_CSV:-build/bench.csv}
rm -f "$csv"
for L in 1 2; do
    for H in 512 1024 2048; do
        build/fnn bench --hidden $H --layers $L --batch 32 --seq-len 64 --steps 3 --threads 1 --csv "$csv"
        for cell in gru lstm; do
            build/fnn bench --cell $cell --hidden $H --layers $L --batch 32 --seq-len 64 --steps 3 --threads 1
        done
    done
done
for H in 2048 4096; do
    build/fnn bench --hidden $H --layers 2 --steps 2 --threads 1 --csv "$csv"
    $MPIRUN -np 2 build/fnn bench --hidden $H --layers 2 --steps 2 --threads 1 --tp 2 --csv "$csv"
    $MPIRUN -np 2 build/fnn bench --hidden $H --layers 2 --steps 2 --threads 1 --tp 1 --csv "$csv"
done
echo "CSV: $csv"
