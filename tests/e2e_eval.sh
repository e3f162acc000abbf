#!/bin/sh
# fnn eval end to end: the text line and --json agree, the JSON parses, bits per character =
# loss / ln 2, the confusion matrix sums to the windows evaluated, R^2 and MSE are printed for a
# regression, and np = 4 (tp 2 x dp 2) prints the measures of one rank; train's last line
# prints the same measures.
dir=build/evale2e
bound=120
. tests/lib.sh
# Field of the JSON object in file $1: python3 -c "json.load" both parses and reads it.
field() { python3 -c "import json, sys; print(repr(json.load(open(sys.argv[1]))$2))" "$1"; }

fortunes=/usr/share/games/fortunes
$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 $fortunes/computers > /dev/null || fail "prepare text"
$FNN prepare --kind records --val-fraction 0.2 --out $dir/recs.h5 $fortunes/science $fortunes/love > /dev/null || fail "prepare records"
awk 'BEGIN { x = 0.3; for (i = 0; i < 2000; i++) { u = sin(i * 0.1); x = 3.7 * x * (1 - x); printf "%.6f,%.6f\n", u, x } }' > $dir/map.csv
$FNN prepare --kind csv --inputs 1 --out $dir/map.h5 $dir/map.csv > /dev/null || fail "prepare csv"

for task in lm classify regress; do
    case $task in lm) data=$dir/text.h5 ;; classify) data=$dir/recs.h5 ;; regress) data=$dir/map.h5 ;; esac
    mpi 1 $FNN train --config configs/tiny.ini --set task=$task --set data=$data --set seq_len=32 \
        --set eval_windows=1000000 --set ckpt_dir=$dir/ck$task > $dir/train$task.txt 2>&1 || fail "train $task"
    ck=$dir/ck$task/step-00000020.h5
    mpi 1 $FNN eval --checkpoint $ck --data $data > $dir/$task.txt || fail "eval $task"
    mpi 1 $FNN eval --json --checkpoint $ck --data $data > $dir/$task.json || fail "eval --json $task"
    mpi 4 $FNN eval --checkpoint $ck --data $data --tp 2 --json > $dir/${task}4.json || fail "eval --json $task np=4"
    loss=$(sed -n 's/^loss \([^ ]*\) .*/\1/p' $dir/$task.txt)
    [ "$(field $dir/$task.json "['loss']")" = "$loss" ] && say "ok   $task: --json parses, loss $loss as in the text line" || fail "$task: json loss $(field $dir/$task.json "['loss']") vs text $loss"
    for k in loss accuracy bpc mse r2; do
        a=$(field $dir/$task.json ".get('$k', 0)"); b=$(field $dir/${task}4.json ".get('$k', 0)")
        [ "$a" = 0 ] && [ "$b" = 0 ] && continue
        close "$a" "$b" 1e-5 || fail "$task $k: np=1 $a, np=4 tp=2 $b"
    done
    say "ok   $task: np=4 tp=2 measures equal one rank's"
    # The last line of train: the val measures, from all the val windows.
    last=$(tail -n 1 $dir/train$task.txt)
    case $task in
        lm) want="bpc $(field $dir/$task.json "['bpc']" | awk '{ printf "%.4f", $1 }')" ;;
        classify) want="accuracy $(field $dir/$task.json "['accuracy']" | awk '{ printf "%.4f", $1 }')" ;;
        regress) want="r2 $(field $dir/$task.json "['r2']" | awk '{ printf "%.4f", $1 }')" ;;
    esac
    case "$last" in *"$want"*) say "ok   train $task ends with: $last" ;; *) fail "train $task ends with '$last', want '$want'" ;; esac
done

bpc=$(field $dir/lm.json "['bpc']"); loss=$(field $dir/lm.json "['loss']")
close "$bpc" "$(awk -v l="$loss" 'BEGIN { printf "%.12g", l / log(2) }')" 1e-8 && say "ok   bpc $bpc = loss / ln 2" || fail "bpc $bpc, loss $loss"
sum=$(field $dir/classify.json "['confusion']" | tr -d '[],' | awk '{ for (i = 1; i <= NF; i++) s += $i } END { print s }')
n=$(field $dir/classify.json "['windows']")
[ "$sum" = "$n" ] && say "ok   confusion matrix sums to the $n windows" || fail "confusion sums to $sum, $n windows"
[ "$(field $dir/classify.json "['classes']")" = "['science', 'love']" ] && say "ok   class names from the dataset" || fail "classes $(field $dir/classify.json "['classes']")"
grep -q "^ *science  *[0-9]" $dir/classify.txt && say "ok   text confusion matrix names the classes" || fail "no confusion matrix in $(cat $dir/classify.txt)"
close "$(field $dir/regress.json "['mse']")" "$(field $dir/regress.json "['loss']")" 1e-6 && say "ok   regress mse = loss" || fail "regress mse differs from loss"

say "e2e_eval: $fails failures"
[ $fails -eq 0 ]
