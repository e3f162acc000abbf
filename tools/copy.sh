#!/bin/sh
# A copy (memory) task as CSV for `fnn prepare --kind csv --inputs K+1 --seq-len T`: one sequence
# per line. The copying memory problem of Hochreiter & Schmidhuber 1997 and Arjovsky, Shah &
# Bengio 2016 (S symbols, a long blank stretch, a delimiter, then the symbols are to be
# reproduced), read out at once: the whole string is the one target of the sequence, at its last
# step (score = last), rather than emitted over S further steps.
#
#   usage: tools/copy.sh SEQUENCES T SEED [S K] > out.csv        (S = 5 symbols, K = 4 kinds)
#
# Inputs are K + 1 channels, one-hot: steps 0 .. S-1 hold symbols drawn uniformly from K kinds
# (channels 0 .. K-1), steps S .. T-2 are blank (all zero), step T-1 is the delimiter (channel
# K). The target is the S symbols one-hot, S x K values (symbol i's K values, then the next's).
# Always answering 1/K scores an MSE of (1/K)(1 - 1/K) (0.1875 for K = 4): a model below it
# remembers. The same arguments give the same file.
set -eu
usage="usage: tools/copy.sh SEQUENCES T SEED [S K] > out.csv"
n=${1:?$usage}
T=${2:?$usage}
seed=${3:?$usage}
S=${4:-5}
K=${5:-4}
case "$n$T$seed$S$K" in *[!0-9]*) echo "$usage (whole numbers)" >&2; exit 2 ;; esac
[ "$S" -ge 1 ] && [ "$K" -ge 2 ] && [ "$T" -gt "$S" ] ||
    { echo "tools/copy.sh: needs S >= 1, K >= 2 and T > S (T = $T, S = $S, K = $K)" >&2; exit 2; }
awk -v n="$n" -v T="$T" -v seed="$seed" -v S="$S" -v K="$K" '
function onehot(k, width,    i, s) {
    s = ""
    for (i = 0; i < width; i++) s = s (i ? "," : "") (i == k ? 1 : 0)
    return s
}
BEGIN {
    srand(seed)
    for (s = 0; s < n; s++) {
        line = ""; target = ""
        for (i = 0; i < S; i++) {
            sym[i] = int(rand() * K)
            target = target "," onehot(sym[i], K)
        }
        for (t = 0; t < T; t++)
            line = line (t ? "," : "") onehot(t < S ? sym[t] : t == T - 1 ? K : -1, K + 1)
        print line target
    }
}'
