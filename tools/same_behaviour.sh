#!/bin/sh
# tools/same_behaviour.sh BEFORE AFTER [DIR]: does a change of structure leave fnn's behaviour as
# it was? BEFORE and AFTER are two fnn binaries (e.g. one built from the commit before a
# refactoring). Both make the same datasets, train the same short runs and load each other's
# checkpoints; the script compares, exactly, what each run leaves: the metrics file's losses and
# gradient norms (printed to 9 digits, so equal lines mean equal float32 values) and every tensor
# of the last checkpoint (h5diff, no tolerance). The runs: every cell both binaries know, at
# np = 1 (tp 1), 2 (tp 2), 2 (dp 2) and 4 (tp 2 x dp 2), as a language model, with carried
# state, as a classifier and as a regressor, and a fine-tuning from the language model with
# frozen tensors; then resume across the binaries (BEFORE's checkpoint continued by AFTER and the
# reverse against each continuing its own). Prints one line per comparison; exits 1 if any differ.
# MPIRUN as in make test.
set -u
old=$(realpath "$1"); new=$(realpath "$2"); dir=${3:-build/same}
MPIRUN=${MPIRUN:-env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 mpirun}
fortunes=/usr/share/games/fortunes
rm -rf $dir && mkdir -p $dir/old $dir/new
fails=0; n=0
say() { printf '%s\n' "$*"; }
differ() { say "DIFFERS: $*"; fails=$((fails + 1)); }
# The metrics without the fields that measure time.
trace() { sed 's/, *"\(tokens_per_s\|step_s\|comm_s\)": *[0-9.e+-]*//g' "$1"; }
# Every dataset of the two checkpoints, exactly (the attributes hold the run's id, text and build).
tensors_equal() {
    [ "$(h5ls -r "$1" | grep Dataset)" = "$(h5ls -r "$2" | grep Dataset)" ] || return 1
    for d in $(h5ls -r "$1" | awk '$2 == "Dataset" { print $1 }'); do
        h5diff -q "$1" "$2" "$d" "$d" > /dev/null 2>&1 || return 1
    done
}
# run NAME NP ARGS...: the same training with both binaries, then the comparison.
run() {
    name=$1; np=$2; shift 2
    for b in old new; do
        eval bin=\$$b
        timeout 300 $MPIRUN -np $np $bin train --config configs/tiny.ini --set metrics=$dir/$b/$name.jsonl \
            --set ckpt_dir=$dir/$b/$name "$@" > $dir/$b/$name.txt 2>&1 || { differ "$name: $b run failed: $(tail -2 $dir/$b/$name.txt)"; return; }
    done
    n=$((n + 1))
    ck=$(ls $dir/old/$name/step-*.h5 | tail -1); f=$(basename $ck)
    if [ "$(trace $dir/old/$name.jsonl)" != "$(trace $dir/new/$name.jsonl)" ]; then
        differ "$name: metrics"
    elif ! tensors_equal $ck $dir/new/$name/$f; then
        differ "$name: checkpoint $f"
    else
        say "same $name ($(wc -l < $dir/new/$name.jsonl) steps, $f)"
    fi
}

for b in old new; do
    eval bin=\$$b
    $bin prepare --kind text --val-fraction 0.1 --out $dir/$b/text.h5 $fortunes/computers > /dev/null &&
    $bin prepare --kind records --val-fraction 0.2 --out $dir/$b/recs.h5 $fortunes/science $fortunes/love $fortunes/art > /dev/null ||
        { say "FAIL: $b prepare"; exit 1; }
done
awk 'BEGIN { srand(3); y = 0; for (i = 0; i < 3000; i++) { u = 2 * rand() - 1; y = 0.8 * y + 0.5 * (exp(2 * u) - 1) / (exp(2 * u) + 1); printf "%.6f,%.6f\n", u, y } }' > $dir/map.csv
for b in old new; do eval bin=\$$b; $bin prepare --kind csv --inputs 1 --val-fraction 0.2 --out $dir/$b/map.h5 $dir/map.csv > /dev/null; done
for d in text recs map; do
    h5diff -q $dir/old/$d.h5 $dir/new/$d.h5 > /dev/null 2>&1 && say "same prepare $d" || differ "prepare $d"
done
text=$dir/new/text.h5; recs=$dir/new/recs.h5; map=$dir/new/map.h5
common="--set steps=12 --set ckpt_every=6 --set log_every=1"

cells=$($old train --config configs/tiny.ini --set cell=none 2>&1 | sed -n "s/.*'none' is not one of \([a-z0-9|]*\).*/\1/p" | tr '|' ' ')
[ -n "$cells" ] || cells="elman gru lstm"
for cell in $cells; do
    for lay in "1 1" "2 2" "2 1" "4 2"; do
        set -- $lay
        run "lm-$cell-np$1-tp$2" $1 $common --set cell=$cell --set tp=$2 --set data=$text
        run "carry-$cell-np$1-tp$2" $1 $common --set cell=$cell --set tp=$2 --set data=$text --set carry_state=true
        run "classify-$cell-np$1-tp$2" $1 $common --set cell=$cell --set tp=$2 --set data=$recs --set task=classify
        run "regress-$cell-np$1-tp$2" $1 $common --set cell=$cell --set tp=$2 --set data=$map --set task=regress
    done
    ck=$(ls $dir/old/lm-$cell-np2-tp2/step-*.h5 | tail -1)
    run "finetune-$cell-np2-tp1" 2 $common --set cell=$cell --set data=$recs --set task=classify --set init_from=$ck \
        --set new_head=true --set freeze=layer0 --set head_only_steps=3
done

# Across binaries: step 6 of one continued by the other to step 12, against step 12 of each alone.
for pair in "old new" "new old"; do
    set -- $pair
    for name in lm-elman-np4-tp2 carry-gru-np2-tp2; do
        [ -d $dir/$1/$name ] || continue
        mkdir -p $dir/x-$1-$2 && cp $dir/$1/$name/step-00000006.h5 $dir/x-$1-$2/
        eval bin=\$$2; np=${name#*-np}; np=${np%%-*}; tp=${name##*-tp}; cell=$(echo $name | cut -d- -f2)
        carry=false; case $name in carry*) carry=true;; esac
        timeout 300 $MPIRUN -np $np $bin train --config configs/tiny.ini $common --set cell=$cell --set tp=$tp \
            --set data=$text --set carry_state=$carry --set ckpt_dir=$dir/x-$1-$2 --set resume=auto > $dir/x-$1-$2/$name.txt 2>&1 ||
            { differ "$1 -> $2 $name: resume failed"; continue; }
        n=$((n + 1))
        tensors_equal $dir/x-$1-$2/step-00000012.h5 $dir/$2/$name/step-00000012.h5 &&
            say "same $name: step 6 of $1, continued by $2" || differ "$name: step 6 of $1, continued by $2"
        rm -rf $dir/x-$1-$2
    done
done
say "$n comparisons, $fails differ"
[ $fails -eq 0 ]
