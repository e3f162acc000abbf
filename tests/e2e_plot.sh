#!/bin/sh
# fnn plot: two small metrics files in the format fnn train writes (docs/cli.md, Metrics file:
# steps, a skipped step, validation scores, a null score, a resume that repeats steps 3 and 4)
# give a PNG of the asked size, and the data blocks gnuplot was given (--table) hold the files'
# values exactly, the resumed run's rows replacing the repeated ones, under legend names from
# the file names. Bad input: a missing file, a directory, a file that is not a metrics file, one
# with no data rows, an output onto an input, an output that cannot be written: one line each.
dir=build/tests/plot
. tests/lib.sh

cat > $dir/a.jsonl <<'EOF'
{"step": 1, "loss": 5.52739803, "lr": 0.003, "grad_norm": 0.969743066, "tokens_per_s": 46321.6, "step_s": 0.00138164, "comm_s": 0.00028159}
{"step": 2, "loss": 5.4, "lr": 0.003, "grad_norm": 0.9, "tokens_per_s": 1.5e4, "step_s": 0.001, "comm_s": 0}
{"step": 2, "val_windows": 8, "val_loss": 4.96158838, "val_bpc": 7.15813, "val_accuracy": 0.0546875}
{"step": 3, "skipped": true, "lr": 0.003}
{"step": 4, "loss": 5.25, "lr": 0.003, "grad_norm": 0.8, "tokens_per_s": 47000, "step_s": 0.001, "comm_s": 0}
{"step": 4, "val_windows": 8, "val_loss": 4.9, "val_bpc": 7.1, "val_accuracy": 0.06}
{"step": 3, "loss": 5.3, "lr": 0.003, "grad_norm": 0.8, "tokens_per_s": 45000, "step_s": 0.001, "comm_s": 0}
{"step": 4, "loss": 5.125, "lr": 0.003, "grad_norm": 0.8, "tokens_per_s": 46000, "step_s": 0.001, "comm_s": 0}
{"step": 4, "val_windows": 8, "val_loss": 4.875, "val_bpc": 7.0, "val_accuracy": 0.07}
{"step": 6, "val_windows": 8, "val_mse": null, "val_loss": null}
EOF
cat > $dir/b.json <<'EOF'
{"step": 10, "loss": 1.25, "lr": 0.1, "grad_norm": 1, "tokens_per_s": 100, "step_s": 1, "comm_s": 0}
{"step": 20, "val_windows": 8, "val_loss": 2.5, "val_mse": 2.5, "val_r2": null}
EOF
# The rows each block must hold (run name, block, step and values), the values as written.
cat > $dir/want.txt <<'EOF'
a train 1 5.52739803 46321.6
a train 2 5.4 15000
a train 3 5.3 45000
a train 4 5.125 46000
a val 2 4.96158838
a val 4 4.875
b train 10 1.25 100
b val 20 2.5
EOF

mpi 2 $FNN plot --out $dir/p.png --size 640x480 --table $dir/t.txt $dir/a.jsonl $dir/b.json > $dir/out.txt 2>&1 || fail "plot: $(tail -n 2 $dir/out.txt)"
# The PNG signature, then the IHDR chunk's width and height (big-endian, bytes 16-23).
python3 -c "
import struct, sys
b = open('$dir/p.png', 'rb').read(24)
ok = b[:8] == b'\x89PNG\r\n\x1a\n' and b[12:16] == b'IHDR' and struct.unpack('>II', b[16:24]) == (640, 480)
sys.exit(0 if ok else 1)" && say "ok   a PNG of 640 x 480 (np 2)" || fail "not a 640 x 480 PNG: $(od -A d -t x1 -N 24 $dir/p.png | head -2)"
# The blocks: "\$train<k> << EOD", "# name: ...", rows, "EOD"; compared as numbers.
awk '/^\$(train|val)[0-9]+ << EOD$/ { block = substr($1, 2); sub(/[0-9]+$/, "", block); getline; name = $2; sub(/:$/, "", name); next }
     /^EOD$/ { block = ""; next }
     block != "" { $1 = name " " block " " $1; print }' $dir/t.txt > $dir/got.txt
python3 -c "
import sys
rows = lambda f: [l.split() for l in open(f) if l.strip()]
g, w = rows('$dir/got.txt'), rows('$dir/want.txt')
ok = len(g) == len(w) and all(a[:3] == b[:3] and len(a) == len(b) and all(float(x) == float(y) for x, y in zip(a[3:], b[3:])) for a, b in zip(g, w))
sys.exit(0 if ok else 1)" && say "ok   the plotted data are the files' values (resumed rows replaced, skipped and null rows left out)" || fail "plotted data: $(diff $dir/want.txt $dir/got.txt | tr '\n' ' ')"

run $FNN plot --out $dir/n.png --names "run one,run (ii'') \\ \"two\"" --table $dir/n.txt $dir/a.jsonl $dir/b.json > $dir/out.txt 2>&1 &&
    [ "$(sed -n 's/^# \(.*\): step .*/\1/p' $dir/n.txt | sort -u | tr '\n' ';')" = "run (ii'') \\ \"two\";run one;" ] &&
    say "ok   --names names the runs" || fail "--names: $(sed -n 's/^# //p' $dir/n.txt | tr '\n' ';') $(tail -n 1 $dir/out.txt)"

# Bad input, one line each.
refuse "names, one short" "needs 2 names" run $FNN plot --out $dir/x.png --names a $dir/a.jsonl $dir/b.json
printf 'step,loss\n1,5.5\n' > $dir/c.csv
printf '{"step": 3, "skipped": true, "lr": 0.003}\n' > $dir/skipped.jsonl
refuse "missing file" "$dir/none.jsonl: cannot open" run $FNN plot --out $dir/x.png $dir/a.jsonl $dir/none.jsonl
refuse "directory" "$dir: is a directory" run $FNN plot --out $dir/x.png $dir
refuse "not a metrics file" "c.csv line 1: not a metrics line" run $FNN plot --out $dir/x.png $dir/c.csv
refuse "no data rows" "skipped.jsonl: no data rows" run $FNN plot --out $dir/x.png $dir/skipped.jsonl
refuse "output onto an input" "is the input $dir/b.json" run $FNN plot --out ./$dir/b.json $dir/b.json
refuse "output cannot be written" "--out $dir/no/x.png: cannot write" run $FNN plot --out $dir/no/x.png $dir/b.json
[ -f $dir/x.png ] && fail "a refused plot wrote its output"
[ "$(wc -l < $dir/b.json)" -eq 2 ] || fail "the input was overwritten"

[ $fails -eq 0 ] && say "e2e_plot: all passed" || { say "e2e_plot: $fails failed"; exit 1; }
