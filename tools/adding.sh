#!/bin/sh
# make adding: the adding problem at T steps (tools/adding_data.sh; 10000 sequences of seed 1, the
# last 1000 for validation), trained with configs/adding.ini on NP ranks, then the validation
# MSE beside that of always answering 1 on the same sequences (0.167 in expectation). Each of
# CELL, ACT, INIT, LR, STEPS, when set, becomes --set cell=, activation=, init=, lr=, steps=;
# ADDING_SET adds any other --set options.
set -eu
T=${T:-100}
NP=${NP:-1}
out=build/adding
data=$out/adding-$T.h5
mkdir -p $out
tools/adding_data.sh 10000 "$T" 1 > $out/adding-$T.csv
build/fnn prepare --kind csv --inputs 2 --seq-len "$T" --val-fraction 0.1 --out $data $out/adding-$T.csv
set -- --set data=$data --set seq_len="$T" --set ckpt_dir=$out/ckpt
[ -n "${CELL:-}" ] && set -- "$@" --set cell="$CELL"
[ -n "${ACT:-}" ] && set -- "$@" --set activation="$ACT"
[ -n "${INIT:-}" ] && set -- "$@" --set init="$INIT"
[ -n "${LR:-}" ] && set -- "$@" --set lr="$LR"
[ -n "${STEPS:-}" ] && set -- "$@" --set steps="$STEPS"
# shellcheck disable=SC2086 # ADDING_SET is a list of options
$MPIRUN -np "$NP" build/fnn train --config configs/adding.ini "$@" ${ADDING_SET:-} > $out/train.txt
grep -v '^[a-z_0-9]* =' $out/train.txt
ckpt=$out/ckpt/$(cat $out/ckpt/latest)
build/fnn eval --checkpoint "$ckpt" --data $data --json > $out/eval.json
mse=$(sed 's/.*"mse": \([^,]*\),.*/\1/' $out/eval.json)
base=$(tail -n 1000 $out/adding-$T.csv | awk -F, '{ s += ($NF - 1) ^ 2 } END { printf "%.4f", s / NR }')
params=$(sed -n 's/.* \([0-9]*\) parameters per rank/\1/p' $out/train.txt)
printf 'adding T=%s %s: %s parameters, val mse %.3g (always 1: %s), %s\n' "$T" \
    "$(grep -E '^(cell|activation|init) =' $out/train.txt | tr '\n' ' ' | sed 's/ = /=/g; s/ $//')" \
    "$params" "$mse" "$base" "$(awk -v m="$mse" -v b="$base" 'BEGIN { print (m < b / 10 ? "solved" : m < b ? "below the baseline" : "not below the baseline") }')"
