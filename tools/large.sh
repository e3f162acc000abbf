#!/bin/sh
# make large: the billion-parameter feedback RNN of configs/large.ini on this machine. Prepares the
# fortunes text, prints the memory plan (fnn plan), trains 2 steps at np = 2 (tp = 2) from the
# orthogonal init and checkpoints, then resumes from that checkpoint for 2 more. Each run prints
# its plan, start-up by phase, a line per step and the measured peak memory (README, "A billion
# parameters on one machine"). Needs about 22 GB free and 13 GB of disk under build/large.
set -e
out=build/large
fortunes=/usr/share/games/fortunes
mkdir -p $out
rm -rf $out/ckpt $out/metrics.jsonl
files=$(ls $fortunes/* | grep -v -e '\.dat$' -e '\.u8$')
build/fnn prepare --kind text --val-fraction 0.05 --out $out/fortunes.h5 $files
build/fnn plan --config configs/large.ini --np 2
$MPIRUN -np 2 build/fnn train --config configs/large.ini --set steps=2
$MPIRUN -np 2 build/fnn train --config configs/large.ini --set resume=auto
build/fnn inspect $out/ckpt/$(cat $out/ckpt/latest) | head -n 12
