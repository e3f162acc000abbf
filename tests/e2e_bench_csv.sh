#!/bin/sh
# fnn bench --csv at 2 ranks: the row's efficiency is measured against the latest one-rank row
# of the same H, L, T, B, threads and kind of scaling, not against a later one-rank row that
# shares only the shapes (another thread count, weak scaling).
dir=build/e2e_bench_csv
bound=120
. tests/lib.sh
csv=$dir/scaling.csv
printf 'H,L,T,B,nodes,ranks,tp,dp,tok_s,gflops_per_rank,comm_fraction,efficiency,threads,scaling\n' > $csv
printf '32,1,8,4,1,1,1,1,1000.0,1.00,0.0000,1.0000,1,strong\n' >> $csv
printf '32,1,8,4,1,1,1,1,1000000000000.0,1.00,0.0000,1.0000,2,strong\n' >> $csv
printf '32,1,8,4,1,1,1,1,2000000000000.0,1.00,0.0000,1.0000,1,weak\n' >> $csv
mpi 2 $FNN bench --hidden 32 --layers 1 --embed 8 --batch 4 --seq-len 8 --steps 2 \
    --threads 1 --ceilings no --csv $csv > $dir/out.txt 2>&1 || { echo "FAIL: bench: $(tail -2 $dir/out.txt)"; exit 1; }
row=$(tail -n 1 $csv)
if echo "$row" | awk -F, '{ want = $9 / (2 * 1000); d = $12 - want; if (d < 0) d = -d
        exit !($6 == 2 && $13 == 1 && $14 == "strong" && want > 0 && d <= 1e-3 * want + 1e-4) }'; then
    echo "ok   efficiency against the one-rank row of 1 thread, strong: $row"
    echo "e2e_bench_csv: all checks passed"
else
    echo "FAIL: efficiency not tok_s / (2 x 1000): $row"
    exit 1
fi
