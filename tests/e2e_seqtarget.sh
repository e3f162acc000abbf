#!/bin/sh
# Per-sequence targets end to end: tools/adding_data.sh data has the stated statistics once prepared
# (every sequence two marks, one in each half, target = the sum of the marked values, the
# always-1 baseline MSE near 1/6), tools/copy.sh data its one-hot layout and copied target, the
# same seed gives the same file; a score = last run trains and evaluates at np 1 and 2 with the
# same validation MSE; on a stream, eval scores the steps its checkpoint's run scored; malformed
# per-sequence CSVs, and configs scoring targets the data does not have, are refused with one
# line naming the file and line or the key.
dir=build/tests/seqtarget
. tests/lib.sh
# Dataset $2 of file $1, $3 columns, one row per line (comma-separated, 9 digits).
rows() {
    h5dump -d "$2" -y -w 0 -m %.9g -o $dir/dump.txt "$1" > /dev/null &&
        tr -d ' ,' < $dir/dump.txt | grep -v '^$' | awk -v c="$3" '{ line = line (NR % c == 1 || c == 1 ? "" : ",") $0 } NR % c == 0 { print line; line = "" }'
}

T=20
tools/adding_data.sh 2000 $T 5 > $dir/adding.csv || fail "tools/adding_data.sh"
tools/adding_data.sh 2000 $T 5 | cmp -s - $dir/adding.csv && say "ok   adding: same seed, same file" || fail "adding: not deterministic"
tools/adding_data.sh 2000 $T 6 | cmp -s - $dir/adding.csv && fail "adding: seed ignored"
$FNN prepare --kind csv --inputs 2 --seq-len $T --val-fraction 0.1 --out $dir/adding.h5 $dir/adding.csv > $dir/prep.txt || fail "prepare adding"
grep -q "sequences of $T steps, 2 inputs, 1 outputs (one per sequence), train 1800 sequences, val 200" $dir/prep.txt ||
    fail "prepare said: $(cat $dir/prep.txt)"
# The statistics from the prepared file: x is (1800 T, 2), y (1800, 1).
rows $dir/adding.h5 /train/y 1 > $dir/y.txt
rows $dir/adding.h5 /train/x 2 | awk -F, -v T=$T -v yfile=$dir/y.txt '
    { t = (NR - 1) % T; s = int((NR - 1) / T)
      if ($1 < 0 || $1 >= 1 || ($2 != 0 && $2 != 1)) bad = bad " value:" NR
      if ($2 == 1) { marks[s]++; sum[s] += $1; if (t < T / 2) first[s]++ } }
    END {
        n = 0
        while ((getline y < yfile) > 0) {
            if (marks[n] != 2 || first[n] != 1) bad = bad " marks:" n
            d = y - sum[n]; if (d < 0) d = -d
            if (d > 2e-6) bad = bad " target:" n
            mse += (y - 1) ^ 2; n++
        }
        if (NR != n * T) bad = bad " rows:" NR
        printf "%d sequences, baseline mse %.4f%s\n", n, mse / n, bad
        exit !(bad == "" && n == 1800 && mse / n > 0.155 && mse / n < 0.178)
    }' > $dir/stats.txt && say "ok   adding statistics: $(cat $dir/stats.txt)" || fail "adding statistics: $(cut -c 1-300 $dir/stats.txt)"

# The copy task: S = 3 symbols of K = 4 kinds, T = 12: 5 input channels, 12 target values.
tools/copy.sh 50 12 3 3 4 > $dir/copy.csv || fail "tools/copy.sh"
$FNN prepare --kind csv --inputs 5 --seq-len 12 --val-fraction 0 --out $dir/copy.h5 $dir/copy.csv > $dir/prep.txt || fail "prepare copy"
grep -q "sequences of 12 steps, 5 inputs, 12 outputs (one per sequence), train 50 sequences" $dir/prep.txt ||
    fail "prepare copy said: $(cat $dir/prep.txt)"
rows $dir/copy.h5 /train/y 12 > $dir/cy.txt
rows $dir/copy.h5 /train/x 5 | awk -F, -v yfile=$dir/cy.txt '
    { t = (NR - 1) % 12; s = int((NR - 1) / 12); ones = 0; k = -1
      for (i = 1; i <= 5; i++) if ($i == 1) { ones++; k = i - 1 } else if ($i != 0) bad = bad " value:" NR
      want = t < 3 ? 1 : t == 11 ? 1 : 0
      if (ones != want || (t < 3 && k == 4) || (t == 11 && k != 4)) bad = bad " step:" NR
      if (t < 3) sym[s, t] = k }
    END {
        n = 0
        while ((getline line < yfile) > 0) {
            split(line, y, ",")
            for (i = 0; i < 3; i++) for (j = 0; j < 4; j++)
                if (y[i * 4 + j + 1] != (sym[n, i] == j)) bad = bad " target:" n
            n++
        }
        print n " sequences" bad; exit !(bad == "" && n == 50)
    }' > $dir/cstats.txt && say "ok   copy layout: $(cat $dir/cstats.txt)" || fail "copy layout: $(cut -c 1-300 $dir/cstats.txt)"

# score = last trains and evaluates; the validation MSE is the same at np 1 and 2 (tp 2).
data=adding.h5
for np in 1 2; do
    train $np --set task=regress --set score=last --set seq_len=$T --set hidden=16 --set steps=10 \
        --set tp=$np --set eval_windows=200 --set ckpt_dir=$dir/ck$np > $dir/train$np.txt 2>&1 || fail "train np $np: $(tail -2 $dir/train$np.txt)"
    mpi $np $FNN eval --checkpoint $dir/ck$np/step-00000010.h5 --data $dir/adding.h5 --tp $np --json > $dir/eval$np.json || fail "eval np $np"
done
grep -q '"windows": 200, "steps": 20, "scored": 200' $dir/eval1.json && say "ok   eval scores one step per sequence" || fail "eval: $(cat $dir/eval1.json)"
m1=$(sed 's/.*"mse": \([^,]*\),.*/\1/' $dir/eval1.json); m2=$(sed 's/.*"mse": \([^,]*\),.*/\1/' $dir/eval2.json)
awk -v a="$m1" -v b="$m2" 'BEGIN { d = a - b; exit !(a > 0 && d * d <= 1e-10 * a * a) }' &&
    say "ok   val mse $m1 at np 1, $m2 at np 2 (tp 2)" || fail "val mse $m1 at np 1, $m2 at np 2"
grep -q "val: 200 windows  loss [0-9.]*  mse" $dir/train1.txt || fail "train's val line: $(tail -1 $dir/train1.txt)"

# On a stream of rows, eval scores what the checkpoint's run scored (its stored run config):
# score = last one step per window, score = all every step.
awk 'BEGIN { for (i = 0; i < 600; i++) printf "%.5f,%.5f\n", sin(i * 0.3), sin(i * 0.3 - 0.6) }' > $dir/wave.csv
$FNN prepare --kind csv --inputs 1 --val-fraction 0.2 --out $dir/wave.h5 $dir/wave.csv > /dev/null || fail "prepare wave"
data=wave.h5
for score in last all; do
    train 1 --set task=regress --set score=$score --set steps=5 --set ckpt_dir=$dir/w$score > /dev/null 2>&1 || fail "train wave score = $score"
    mpi 1 $FNN eval --checkpoint $dir/w$score/step-00000005.h5 --data $dir/wave.h5 --json > $dir/w$score.json || fail "eval wave score = $score"
done
grep -q '"windows": 7, "steps": 16, "scored": 7,' $dir/wlast.json && grep -q '"windows": 7, "steps": 16, "scored": 112,' $dir/wall.json &&
    say "ok   stream: eval scores 7 steps after score = last, 112 after score = all" || fail "stream eval: $(cat $dir/wlast.json $dir/wall.json)"
data=adding.h5

# Refusals.
printf '1,2,3,4,5\n1,2,3,4\n' > $dir/ragged.csv
refuse "ragged per-sequence csv" "$dir/ragged.csv:2: 4 columns, expected 5 as on the first row (one sequence per line" \
    $FNN prepare --kind csv --inputs 2 --seq-len 2 --out $dir/bad.h5 $dir/ragged.csv
printf '1,2,3,4\n' > $dir/narrow.csv
refuse "per-sequence csv without a target" "$dir/narrow.csv:1: 4 columns, --seq-len 2 x --inputs 2 = 4 input columns leave no target" \
    $FNN prepare --kind csv --inputs 2 --seq-len 2 --out $dir/bad.h5 $dir/narrow.csv
refuse "--seq-len with text" "seq-len 2: only for --kind csv" $FNN prepare --kind text --seq-len 2 --out $dir/bad.h5 $dir/narrow.csv
[ -e $dir/bad.h5 ] && fail "a refused prepare left $dir/bad.h5"
for np in 1 2; do
    refuse "score = all on per-sequence data (np $np)" "holds one target per sequence of 20 steps: it needs score = last, not score = all" \
        train $np --set task=regress --set seq_len=$T --set steps=1
    refuse "seq_len other than the sequences' (np $np)" "holds sequences of 20 steps, each one window: seq_len must be 20, not 16" \
        train $np --set task=regress --set score=last --set steps=1
    refuse "teacher forcing on per-sequence data (np $np)" "feedback_source = target: .*adding.h5 has no per-step targets" \
        train $np --set task=regress --set score=last --set seq_len=$T --set feedback_source=target --set steps=1
    refuse "a teacher mix on per-sequence data (np $np)" "feedback_source = mix: .*adding.h5 has no per-step targets" \
        train $np --set task=regress --set score=last --set seq_len=$T --set feedback_source=mix --set steps=1
done
refuse "score = last for lm" "score = last is for task = regress; task = lm scores every step" train 1 --set score=last
refuse "score = last for classify" "score = last is for task = regress; task = classify" train 1 --set task=classify --set score=last
refuse "eval at another window" "seq_len must be 20, not 10" $FNN eval --checkpoint $dir/ck1/step-00000010.h5 --data $dir/adding.h5 --seq-len 10

say "e2e_seqtarget: $fails failures"
[ $fails -eq 0 ]
