#!/bin/sh
# Careless input, end to end, at np = 2 (one case of each kind at np = 1 too): an output that
# names an input (the same path, ./, a symlink, a hard link) is refused before anything is written
# and the input stays byte for byte; a FIFO or a device where fnn expects a file (inspect, eval,
# sample, train's config, data, init_from, metrics and ckpt_dir, prepare's inputs and output) is
# refused with one line naming its kind, within the time bound (a hang would be killed by it and
# fail); integers and numbers out of range on the command line or in a config are refused rather
# than wrapped (tp 4294967297 used to run as tp 1). The disk-full half (no .tmp left) is in
# tests/e2e_ioerror.sh.
dir=build/careless
bound=${CARELESS_TIMEOUT:-10}
. tests/lib.sh
data=data.h5
text=$dir/text.txt
sed -n 1,400p /usr/share/games/fortunes/computers > $text
cp $text $dir/text.orig
run $FNN prepare --kind text --val-fraction 0.1 --out $dir/$data $text > /dev/null || { fail "prepare"; exit 1; }
cp configs/tiny.ini $dir/cfg.ini
train 1 --set ckpt_dir=$dir/ck --set steps=2 > /dev/null 2>&1 || { fail "train the checkpoint"; exit 1; }
ck=$dir/ck/step-00000002.h5
cp $ck $dir/ck.orig
cp $dir/$data $dir/data.orig
mkfifo $dir/fifo
ln -s text.txt $dir/text.sym
ln $text $dir/text.hard
ln -s $data $dir/data.sym
ln $dir/$data $dir/data.hard
ln -s ck/step-00000002.h5 $dir/ck.sym

# same FILE ORIG: FILE is still byte for byte its copy ORIG (else it is restored in place, links
# kept, so that the next case starts from it).
same() {
    if cmp -s $1 $2; then say "ok   $1 unchanged"; else fail "$1 changed"; cat $2 > $1; fi
}

# Every case runs at np = 2, where the ranks must reach the same verdict; at np = 1 (the same
# checks, no other rank to agree with) one case of each kind: $all is empty there.
for np in 1 2; do
    all=; [ $np = 2 ] && all=1
    two() { [ -z "$all" ] || "$@"; }
    # Outputs over inputs.
    for out in $dir/text.sym ${all:+$text ./$text $dir/text.hard}; do
        refuse "np=$np prepare --out $out over its input" "is the input $text (the same file)" \
            mpi $np $FNN prepare --kind text --out $out $text
        same $text $dir/text.orig
    done
    for m in $dir/data.hard ${all:+$dir/cfg.ini $dir/data.sym}; do
        refuse "np=$np train metrics = $m" "metrics $m is the input" \
            mpi $np $FNN train --config $dir/cfg.ini --set data=$dir/$data --set metrics=$m --set steps=2
        same $dir/cfg.ini configs/tiny.ini
        same $dir/$data $dir/data.orig
    done
    two refuse "np=$np train metrics = init_from" "metrics $dir/ck.sym is the input" \
        train $np --set init_from=$ck --set metrics=$dir/ck.sym --set steps=2
    same $ck $dir/ck.orig
    refuse "np=$np eval --grads over the checkpoint" "--grads ./$ck is the input $ck" \
        mpi $np $FNN eval --checkpoint $ck --data $dir/$data --grads ./$ck
    same $ck $dir/ck.orig
    two refuse "np=$np eval --grads over the data" "--grads $dir/data.hard is the input" \
        mpi $np $FNN eval --checkpoint $ck --data $dir/$data --grads $dir/data.hard
    same $ck $dir/ck.orig
    same $dir/$data $dir/data.orig

    # Files that are not files.
    # Every path a user gives, as a FIFO (an open would block); a device where each kind of read
    # happens (HDF5, the config reader, prepare's reader). Devices are never given as outputs:
    # with the check broken, a run as root would replace the device node by its file.
    f=$dir/fifo kind=fifo
    refuse "np=$np inspect $f" "$f: is a $kind, not a regular file" mpi $np $FNN inspect $f
    two refuse "np=$np eval --checkpoint $f" "$f: is a $kind" mpi $np $FNN eval --checkpoint $f --data $dir/$data
    two refuse "np=$np eval --data $f" "$f: is a $kind" mpi $np $FNN eval --checkpoint $ck --data $f
    two refuse "np=$np sample --checkpoint $f" "$f: is a $kind" mpi $np $FNN sample --checkpoint $f
    two refuse "np=$np train init_from = $f" "$f: is a $kind" train $np --set init_from=$f --set steps=2
    two refuse "np=$np train resume = $f" "$f: is a $kind" train $np --set resume=$f --set steps=2
    refuse "np=$np train metrics = $f" "metrics = $f: is a $kind" train $np --set metrics=$f --set steps=2
    refuse "np=$np train ckpt_dir = $f" "ckpt_dir = $f: is a $kind, not a directory" \
        train $np --set ckpt_dir=$f --set steps=2
    two refuse "np=$np prepare --out $f" "--out $f: is a $kind" mpi $np $FNN prepare --kind text --out $f $text
    for f in $dir/fifo /dev/zero; do
        kind=$( [ -p $f ] && echo fifo || echo 'character device')
        refuse "np=$np train --config $f" "$f: is a $kind" mpi $np $FNN train --config $f
        two refuse "np=$np train data = $f" "$f: is a $kind" train $np --set data=$f --set steps=2
        refuse "np=$np prepare input $f" "$f: is a $kind" mpi $np $FNN prepare --kind text --out $dir/p.h5 $f
    done
    two refuse "np=$np inspect /dev/null" "/dev/null: is a character device, not a regular file" \
        mpi $np $FNN inspect /dev/null
    same $text $dir/text.orig

    # Numbers as written: no wrap into int, no clamping, no infinity.
    refuse "np=$np eval --tp 4294967297" "option --tp: '4294967297' is out of range for an integer" \
        mpi $np $FNN eval --checkpoint $ck --data $dir/$data --tp 4294967297
    two refuse "np=$np eval --seq-len 4294967312" "option --seq-len: '4294967312' is out of range" \
        mpi $np $FNN eval --checkpoint $ck --data $dir/$data --seq-len 4294967312
    two refuse "np=$np eval --windows 1e3" "option --windows: '1e3' is not an integer" \
        mpi $np $FNN eval --checkpoint $ck --data $dir/$data --windows 1e3
    two refuse "np=$np sample --length 99999999999999999999" "option --length: '99999999999999999999' is out of range" \
        mpi $np $FNN sample --checkpoint $ck --length 99999999999999999999
    two refuse "np=$np sample --temperature 1e999" "option --temperature: '1e999' is not a finite number" \
        mpi $np $FNN sample --checkpoint $ck --temperature 1e999
    two refuse "np=$np bench --hidden 4294967297" "option --hidden: '4294967297' is out of range" \
        mpi $np $FNN bench --hidden 4294967297
    two refuse "np=$np prepare --seq-len 4294967312" "--seq-len '4294967312'" \
        mpi $np $FNN prepare --kind csv --seq-len 4294967312 --out $dir/p.h5 $text
    refuse "np=$np train --set tp=4294967297" "key 'tp': '4294967297' is out of range for an integer" \
        train $np --set tp=4294967297
    printf 'seq_len = 4294967312\n' > $dir/wrap.ini
    refuse "np=$np train config seq_len = 4294967312" "key 'seq_len': '4294967312' is out of range" \
        mpi $np $FNN train --config $dir/wrap.ini
    refuse "np=$np train --set lr=1e999" "key 'lr': '1e999' is not a finite number" train $np --set lr=1e999
done
# plan runs as one process.
refuse "plan --np 4294967297" "option --np: '4294967297' is out of range" \
    mpi 1 $FNN plan --config $dir/cfg.ini --set data=$dir/$data --np 4294967297
[ $fails -eq 0 ] && say "all passed" || { say "$fails failed"; exit 1; }
