#!/bin/sh
# The adding problem (Hochreiter & Schmidhuber 1997; the form of Le, Jaitly & Hinton 2015, the
# IRNN paper) as CSV for `fnn prepare --kind csv --inputs 2 --seq-len T`: one sequence per line.
#
#   usage: tools/adding_data.sh SEQUENCES T SEED > out.csv
#
# Every sequence has T steps of 2 inputs: channel 0 a value drawn uniformly from [0, 1), channel
# 1 a marker, 1 at exactly two steps (one drawn uniformly from the first half, steps
# 0 .. T/2 - 1, the other from the second half, T/2 .. T - 1) and 0 elsewhere. The one target,
# scored at the last step (score = last), is the sum of the two marked values. Always answering
# 1 (the mean target) scores an MSE of 2 x 1/12 = 0.167 (the variance of the sum of two uniform
# values): a model below it remembers. A line is x_0,m_0,x_1,m_1,...,x_{T-1},m_{T-1},target;
# the target is the sum of the two values as printed. The same arguments give the same file.
set -eu
usage="usage: tools/adding_data.sh SEQUENCES T SEED > out.csv"
n=${1:?$usage}
T=${2:?$usage}
seed=${3:?$usage}
case "$n$T$seed" in *[!0-9]*) echo "$usage (whole numbers)" >&2; exit 2 ;; esac
[ "$T" -ge 2 ] || { echo "tools/adding_data.sh: T = $T: needs at least 2 steps" >&2; exit 2; }
awk -v n="$n" -v T="$T" -v seed="$seed" '
BEGIN {
    srand(seed)
    half = int(T / 2)
    for (s = 0; s < n; s++) {
        a = int(rand() * half)
        b = half + int(rand() * (T - half))
        line = ""
        for (t = 0; t < T; t++) {
            x = sprintf("%.6f", rand())
            if (t == a) xa = x
            if (t == b) xb = x
            line = line x "," (t == a || t == b ? 1 : 0) ","
        }
        printf "%s%.6f\n", line, xa + xb
    }
}'
