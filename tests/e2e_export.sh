#!/bin/sh
# fnn export --format safetensors, read back by an independent Python reader
# (tests/safetensors_read.py): every tensor of a tp = 2 checkpoint, for every cell, bit for bit
# under PyTorch's names and stacked shapes (gate g of layer{l}/Wx_g is rows [g H, (g + 1) H) of
# rnn.weight_ih_l{l}); the export imported again with init_from gives the same parameters and
# the same loss at np 1 and 2; a file without the feedback (as from PyTorch) starts Wf at zero;
# a header that lies is refused in one line.
dir=build/tiny_export
bound=120
. tests/lib.sh
PY="python3 tests/safetensors_read.py"
H=32
vals() { h5dump -A 0 -d "/params/$2" -y -w 0 -m '%.9g' "$1" | sed -n '/DATA {/,$p' | grep -o -- '-\?[0-9][0-9.e+-]*'; }
datasets() { h5ls -r "$1/params" | sed -n 's|^/\([^ ]*\) *Dataset {\([^}]*\)}.*|\1 \2|p'; }
loss() { sed -n 's/^loss \([^ ]*\) .*/\1/p' "$1"; }
# The safetensors name of fnn tensor $2 of cell $1 and the row where it starts there.
st_of() {
    case $2 in
        embed) echo embedding.weight 0; return ;;
        head/Wo) echo head.weight 0; return ;;
        head/bo) echo head.bias 0; return ;;
    esac
    [ $1 = mgu ] && { echo $2 0; return; }
    l=${2#layer}; l=${l%%/*}; w=${2#*/}; g=0
    case $1 in gru) gates="r z n" ;; lstm) gates="i f g o" ;; *) gates="" ;; esac
    case $w in *_*) s=${w#*_}; w=${w%%_*}; i=0; for x in $gates; do [ $x = $s ] && g=$i; i=$((i + 1)); done ;; esac
    case $w in
        Wx) n=rnn.weight_ih_l$l ;; Wh) n=rnn.weight_hh_l$l ;; Wf) n=feedback_l$l.weight ;;
        b) n=rnn.bias_ih_l$l ;; bh) n=rnn.bias_hh_l$l ;;
    esac
    echo $n $((g * H))
}

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
cfg="--config configs/tiny.ini --set data=$dir/text.h5"
for cell in elman gru lstm mgu; do
    case $cell in gru) G=3 ;; lstm) G=4 ;; mgu) G=2 ;; *) G=1 ;; esac
    mpi 2 $FNN train $cfg --set cell=$cell --set tp=2 --set steps=3 --set ckpt_dir=$dir/$cell > $dir/$cell.txt 2>&1 || fail "$cell: train tp=2"
    ck=$dir/$cell/step-00000003.h5
    mpi 2 $FNN export --checkpoint $ck --format safetensors --out $dir/$cell.st > $dir/$cell.exp 2>&1 || fail "$cell: export $(cat $dir/$cell.exp)"
    # Names and shapes: every fnn tensor's stacked home, plus the zero bias_hh of cells with one bias.
    datasets $ck > $dir/$cell.sets
    while read name rows cols; do
        set -- $(st_of $cell $name)
        rows=${rows%,}
        case $cell/$name in mgu/*) ;; */layer*) rows=$((G * H)) ;; esac
        echo "$1 $rows${cols:+ x $cols} F32"
        case $cell/$name in elman/*/b|lstm/*/b_i) l=${name#layer}; echo "rnn.bias_hh_l${l%%/*} $((G * H)) F32" ;; esac
    done < $dir/$cell.sets | sort -u > $dir/$cell.want
    $PY $dir/$cell.st list > $dir/$cell.got
    cmp -s $dir/$cell.want $dir/$cell.got || fail "$cell: names and shapes: $(diff $dir/$cell.want $dir/$cell.got | head -4)"
    # Each tensor's rows in the export (one reader start for the file) against h5dump's.
    n=0; bad=0; k=0; rm -rf $dir/b && mkdir $dir/b
    while read name rows cols; do k=$((k + 1)); echo "$(st_of $cell $name) ${rows%,} $k"; done < $dir/$cell.sets |
        $PY $dir/$cell.st dumps $dir/b
    k=0
    while read name rows cols; do
        k=$((k + 1))
        vals $ck $name > $dir/a.txt < /dev/null
        if cmp -s $dir/a.txt $dir/b/$k && [ -s $dir/a.txt ]; then n=$((n + 1)); else bad=$((bad + 1)); fail "$cell: $name differs from $(st_of $cell $name)"; fi
    done < $dir/$cell.sets
    zeros=0
    for l in 0 1; do
        case $cell in elman|lstm) $PY $dir/$cell.st dump rnn.bias_hh_l$l 0 $((G * H)) | awk '$1 != 0 { b = 1 } END { exit b }' && zeros=$((zeros + 1)) ;; esac
    done
    [ $bad -eq 0 ] && say "ok   $cell (tp=2): $n tensors bit for bit under their safetensors names ($zeros zero bias_hh), names and shapes as expected"
    [ "$($PY $dir/$cell.st meta cell)/$($PY $dir/$cell.st meta hidden)" = "$cell/$H" ] || fail "$cell: metadata cell/hidden"

    # Imported again (lr = 0: the step-1 checkpoint holds the parameters as loaded).
    mpi 2 $FNN train $cfg --set cell=$cell --set lr=0 --set steps=1 --set init_from=$dir/$cell.st --set ckpt_dir=$dir/re_$cell > $dir/re_$cell.txt 2>&1 || fail "$cell: init_from safetensors: $(grep error $dir/re_$cell.txt)"
    re=$dir/re_$cell/step-00000001.h5
    h5diff -q $ck $re /params /params > /dev/null 2>&1 || fail "$cell: re-imported parameters differ"
    # The parameters are equal (above); the loss of two cells, one at np 1 and one at np 2, keeps
    # the test short.
    case $cell in gru) nps=1 ;; lstm) nps=2 ;; *) nps="" ;; esac
    for np in $nps; do
        mpi $np $FNN eval --checkpoint $ck --data $dir/text.h5 --windows 8 > $dir/e0.txt 2>&1
        mpi $np $FNN eval --checkpoint $re --data $dir/text.h5 --windows 8 > $dir/e1.txt 2>&1
        [ -n "$(loss $dir/e0.txt)" ] && [ "$(loss $dir/e0.txt)" = "$(loss $dir/e1.txt)" ] \
            && say "ok   $cell: exported then re-imported, np=$np: loss $(loss $dir/e1.txt) as the checkpoint's" \
            || fail "$cell np=$np: loss $(loss $dir/e0.txt) vs $(loss $dir/e1.txt) re-imported"
    done
done

# As from PyTorch: no feedback tensors, no metadata. Wf is new and zero, the rest loaded.
st=$dir/gru.st
$PY $st drop feedback_l $dir/nofb.st
mpi 2 $FNN train $cfg --set cell=gru --set lr=0 --set steps=1 --set init_from=$dir/nofb.st --set ckpt_dir=$dir/nofb > $dir/nofb.txt 2>&1 || fail "no feedback: $(grep error $dir/nofb.txt)"
zero() { vals "$1" "$2" | awk '$1 != 0 { bad = 1 } END { exit bad }'; }
n=0
for t in layer0/Wf_r layer0/Wf_n layer1/Wf_z; do zero $dir/nofb/step-00000001.h5 $t && n=$((n + 1)); done
[ $n -eq 3 ] && grep -qx "new layer1/Wf_n (no feedback into this layer there; zero)" $dir/nofb.txt \
    && h5diff -q $dir/gru/step-00000003.h5 $dir/nofb/step-00000001.h5 /params/layer1/Wh_n /params/layer1/Wh_n > /dev/null \
    && say "ok   safetensors without feedback (as from PyTorch): Wf new and zero, the rest loaded" || fail "no feedback: $n of 3 Wf zero; $(grep -E '^new' $dir/nofb.txt | head -2)"

# Lies in the header: one line naming the file and what is wrong; at np = 2 (the ranks agree) for
# three of them, the others in one process.
ft="$cfg --set cell=gru --set steps=1"
for how in past_end overlap size dtype missing hugelen; do $PY $st forge $how $dir/$how.st; done
refuse "data_offsets past the end" "past_end.st: tensor .*outside the data" mpi 2 $FNN train $ft --set init_from=$dir/past_end.st
refuse "overlapping tensors" "overlap.st: tensors .* overlap" run $FNN train $ft --set init_from=$dir/overlap.st
refuse "shape x dtype != bytes" "size.st: tensor .* of F32 is .* data_offsets give" run $FNN train $ft --set init_from=$dir/size.st
refuse "unknown dtype" "dtype.st: tensor .*: dtype Q7" run $FNN train $ft --set init_from=$dir/dtype.st
refuse "missing tensor" "missing.st: no tensor rnn.weight_ih_l1 (fnn.s layer1/Wx_r)" mpi 2 $FNN train $ft --set init_from=$dir/missing.st
refuse "header length > file" "hugelen.st: safetensors header length .* larger than the file" run $FNN train $ft --set init_from=$dir/hugelen.st
refuse "another cell" "gru.st: .*cell = gru there, lstm here" mpi 2 $FNN train $cfg --set cell=lstm --set steps=1 --set init_from=$st

refuse "export: another format" "format onnx: the only format is safetensors" run $FNN export --checkpoint $dir/gru/step-00000003.h5 --format onnx --out $dir/x.onnx
refuse "export: no such checkpoint" "nothere.h5: cannot open" mpi 2 $FNN export --checkpoint $dir/nothere.h5 --out $dir/x.st
refuse "export: unwritable" "no/x.st: cannot create" run $FNN export --checkpoint $dir/gru/step-00000003.h5 --out $dir/no/x.st

[ $fails -eq 0 ] && say "PASS e2e_export" || { say "FAIL e2e_export ($fails)"; exit 1; }
