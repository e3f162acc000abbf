#!/bin/sh
# make demo: prepare the fortunes text, train a language model on 2 ranks (data parallel),
# evaluate the checkpoint on 1 rank (another layout), inspect it and sample from it, and plot its
# training and validation loss and tokens/s against the step (build/demo/train.png).
set -e
out=build/demo
fortunes=/usr/share/games/fortunes
mkdir -p $out
rm -rf $out/ckpt
files=$(ls $fortunes/* | grep -v -e '\.dat$' -e '\.u8$')
build/fnn prepare --kind text --val-fraction 0.05 --out $out/fortunes.h5 $files
$MPIRUN -np 2 build/fnn train --config configs/demo.ini --set eval_every=250
ckpt=$out/ckpt/$(cat $out/ckpt/latest)
build/fnn eval --checkpoint "$ckpt" --data $out/fortunes.h5 --windows 512
build/fnn inspect "$ckpt" | head -n 12
build/fnn sample --checkpoint "$ckpt" --prompt "The meaning of life is" --length 300 --temperature 0.7
echo
build/fnn plot --out $out/train.png --names "fortunes LM (demo.ini at np 2)" $out/metrics.jsonl
