#!/bin/sh
# Hostile input and faults, end to end: files damaged by tests/h5craft (flipped bytes, NaN and
# integer weights, attributes stored as arrays or several strings, an old format version, a
# vocabulary that is not 256, tokens stored as int32 or float or claiming 2-8 GB, NaN in dense data), files that
# only some ranks can see, and a disk that fills during a save at np = 4. Every reading
# subcommand (inspect, inspect --verify, eval, sample, train init_from, train resume) must exit
# non-zero within the time bound with one "fnn: error:" line naming the culprit: no crash, no
# hang, no sanitizer report. Each case runs each command once, the rank count rotating over 1, 2
# and 4 so that every command and every case meets several counts; HOSTILE_FULL=1 runs every
# command of every case at every count, and the cases marked `extra`.
CRAFT=build/tests/h5craft
dir=build/hostile
bound=${HOSTILE_TIMEOUT:-60}
. tests/lib.sh
# Cases that repeat a class already covered: only with HOSTILE_FULL=1.
extra() { [ "${HOSTILE_FULL:-0}" = 1 ] && "$@"; }

# check WHAT NAME RC: the last command ($dir/err.txt) failed with one error line naming NAME.
check() {
    what=$1 name=$2 rc=$3
    if grep -q 'runtime error\|AddressSanitizer\|LeakSanitizer' $dir/err.txt; then
        fail "$what: sanitizer report: $(grep -m 3 'runtime error\|Sanitizer' $dir/err.txt)"
    elif [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
        fail "$what: exit $rc$( [ "$rc" -eq 124 ] && echo ' (hang: killed after the time bound)')"
    elif [ "$(grep -c 'fnn: error:' $dir/err.txt)" -ne 1 ] ||
         ! grep 'fnn: error:' $dir/err.txt | grep -q -- "$name"; then
        fail "$what: expected one error naming '$name', got: $(grep -m 3 . $dir/err.txt)"
    else
        say "ok   $what: $(grep 'fnn: error:' $dir/err.txt)"
    fi
}
# refuse WHAT NAME NP COMMAND...
refuse() {
    what=$1 name=$2 np=$3; shift 3
    mpi $np "$@" > $dir/out.txt 2> $dir/err.txt
    check "$what (np=$np)" "$name" $?
}

# The subcommands that read checkpoint F, by name.
read_ck() {
    cmd=$1 np=$2 f=$3
    case $cmd in
        inspect) mpi $np $FNN inspect $f ;;
        verify) mpi $np $FNN inspect --verify $f ;;
        eval) mpi $np $FNN eval --checkpoint $f --data $data --windows 2 ;;
        sample) mpi $np $FNN sample --checkpoint $f --length 4 ;;
        init_from) mpi $np $FNN train --config configs/tiny.ini --set data=$data --set steps=1 --set init_from=$f ;;
        resume) mpi $np $FNN train --config configs/tiny.ini --set data=$data --set steps=21 --set resume=$f ;;
    esac > $dir/out.txt 2> $dir/err.txt
}
rot=0
# ck_case NAME 'COMMANDS' CRAFT-ARGS...: a copy of the good checkpoint damaged by h5craft, read
# by each command.
ck_case() {
    name=$1 cmds=$2; shift 2
    f=$dir/case.h5
    cp $good $f && $CRAFT "$@" || { fail "h5craft $*"; return; }
    for cmd in $cmds; do
        if [ "${HOSTILE_FULL:-0}" = 1 ]; then counts="1 2 4"; else counts=$(echo 1 2 4 | cut -d' ' -f$((rot % 3 + 1))); fi
        rot=$((rot + 1))
        for np in $counts; do
            read_ck $cmd $np $f
            check "$cmd np=$np, $1 $(echo "$@" | cut -d' ' -f3-)" "$name" $?
        done
    done
}

data=$dir/data.h5
$FNN prepare --kind text --val-fraction 0.1 --out $data /usr/share/games/fortunes/computers > /dev/null || fail prepare
awk 'BEGIN { for (i = 0; i < 300; i++) printf "%g,%g,%g\n", sin(i), cos(i), sin(i) * cos(i) }' > $dir/dense.csv
$FNN prepare --kind csv --inputs 2 --val-fraction 0.2 --out $dir/dense.h5 $dir/dense.csv > /dev/null || fail "prepare csv"
mpi 2 $FNN train --config configs/tiny.ini --set data=$data --set ckpt_dir=$dir/ck > /dev/null 2>&1 || fail "train"
good=$dir/ck/step-00000020.h5
for ranks in 4 $(extra echo 1 2); do
    mpi $ranks $FNN inspect --verify $good > $dir/out.txt 2>&1 && grep -q 'every dataset matches' $dir/out.txt \
        && say "ok   verify np=$ranks: a good checkpoint passes" || fail "verify np=$ranks a good checkpoint: $(cat $dir/out.txt)"
done

all="verify eval sample init_from resume"
# Integrity: one flipped bit anywhere in a dataset's bytes, in parameters and optimiser state;
# two elements swapped (the same sum, another order).
ck_case "/params/layer0/Wh fails its checksum" "$all" flip $dir/case.h5 /params/layer0/Wh 37
ck_case "/params/embed fails its checksum" "verify" flip $dir/case.h5 /params/embed 4095
ck_case "/params/layer1/Wh fails its checksum" "verify" swap $dir/case.h5 /params/layer1/Wh 3 700
ck_case "/optim/v/layer1/Wf fails its checksum" "verify resume" flip $dir/case.h5 /optim/v/layer1/Wf 0
# Non-finite and integer weights (the digest made to match, so the value check is what refuses).
ck_case "/params/head/bo holds 1 non-finite" "eval sample init_from" set $dir/case.h5 /params/head/bo 3 nan
ck_case "/optim/m/layer0/b holds 1 non-finite" "resume" set $dir/case.h5 /optim/m/layer0/b 0 inf
ck_case "/params/layer1/Wx is not a float dataset" "eval" retype $dir/case.h5 /params/layer1/Wx i32
# Attributes that would overrun a reader: arrays, several strings, wrong classes.
ck_case "/config/hidden holds 7000 values" "inspect $all" attr-ints $dir/case.h5 /config hidden 7000
ck_case "/config/hidden holds 2 values" "inspect" attr-ints $dir/case.h5 /config hidden 2
ck_case "/config/activation holds 3 values" "sample" attr-strs $dir/case.h5 /config activation
extra ck_case "/config/run_config holds 3 values" "inspect" attr-strs $dir/case.h5 /config run_config
ck_case "/train/step is not an integer" "resume" attr-float $dir/case.h5 /train step
extra ck_case "/train/optimizer is not a string" "inspect" attr-long $dir/case.h5 /train optimizer 3
ck_case "format version 1 has no checksums" "inspect eval" attr-long $dir/case.h5 /config version 1
ck_case "/optim/m/layer0/Wh stores fewer bytes than its shape needs" "verify" huge $dir/case.h5 /optim/m/layer0/Wh 2000000000 f32
# A language model whose vocabulary and outputs are not 256: sampling would index past its buffers.
ck_case "vocab 16 and outputs 16" "sample" shrink $dir/case.h5 16
# Weights so large that the loss overflows: eval must not print "loss nan" and exit 0.
ck_case "loss on $data is" "eval" set $dir/case.h5 /params/head/Wo -1 3e38

# Strings written by h5py (null-padded to their exact width, or variable-length) read whole.
for kind in attr-nullpad attr-vlen; do
    cp $good $dir/case.h5 && $CRAFT $kind $dir/case.h5 /config activation tanh
    mpi 2 $FNN inspect $dir/case.h5 > $dir/out.txt 2> $dir/err.txt && grep -q 'activation tanh' $dir/out.txt \
        && say "ok   $kind string read whole" || fail "$kind: $(cat $dir/err.txt | head -3)"
done

# Datasets: tokens must be uint8, dense data float and finite; refused by train and eval.
data_case() {
    name=$1 np=$2 file=$3; shift 3
    cp $file $dir/bad.h5 && $CRAFT "$@" || { fail "h5craft $*"; return; }
    if [ $file = $data ]; then
        refuse "train on $*" "$name" $np $FNN train --config configs/tiny.ini --set data=$dir/bad.h5 --set steps=1
        [ $np = 2 ] && refuse "eval on $*" "$name" 4 $FNN eval --checkpoint $good --data $dir/bad.h5 --windows 2
    else
        refuse "train on $*" "$name" $np $FNN train --config configs/tiny.ini --set task=regress --set data=$dir/bad.h5 --set steps=1
    fi
}
extra data_case "/train/tokens must be an unsigned 8-bit" 1 $data retype $dir/bad.h5 /train/tokens i32
data_case "/val/tokens must be an unsigned 8-bit" 2 $data retype $dir/bad.h5 /val/tokens f32
data_case "/train/tokens must be an unsigned 8-bit" 2 $data retype $dir/bad.h5 /train/tokens i32 -5
data_case "/train/tokens holds no stored data" 4 $data huge $dir/bad.h5 /train/tokens 2000000000
data_case "/val/tokens holds no stored data" 1 $data huge $dir/bad.h5 /val/tokens 8589934592
data_case "/train/x holds a non-finite value" 4 $dir/dense.h5 set $dir/bad.h5 /train/x 5 nan
data_case "/val/y must be a float" 2 $dir/dense.h5 retype $dir/bad.h5 /val/y i32
extra data_case "/train/y holds a non-finite value" 1 $dir/dense.h5 set $dir/bad.h5 /train/y 0 -inf
cp $data $dir/bad.h5 && $CRAFT attr-nullpad $dir/bad.h5 / kind tokens
mpi 2 $FNN train --config configs/tiny.ini --set data=$dir/bad.h5 --set steps=1 > /dev/null 2> $dir/err.txt \
    && say "ok   null-padded kind attribute read whole" || fail "null-padded kind: $(head -3 $dir/err.txt)"

# Ranks that see different files: rank 0 runs where the file is, the others where it is not;
# the message is the first failing rank's.
mkdir -p $dir/here $dir/there && cp $good $dir/here/ck.h5 && cp $data $dir/here/data.h5 && cp -r $dir/ck $dir/here/
split() {
    what=$1 name=$2 others=$3; shift 3
    (timeout $bound $MPIRUN -np 1 -wdir $dir/here "$@" : -np $others -wdir $dir/there "$@") > $dir/out.txt 2> $dir/err.txt
    check "$what, file seen by rank 0 of $((others + 1)) only" "$name" $?
}
split "eval" "ck.h5: cannot open (No such file or directory) on rank 1" 1 $FNN eval --checkpoint ck.h5 --data $(pwd)/$data --windows 2
split "init_from" "ck.h5: cannot open (No such file or directory) on rank 1" 3 $FNN train --config $(pwd)/configs/tiny.ini --set data=$(pwd)/$data --set steps=1 --set init_from=ck.h5
split "resume = auto" "ck/step-00000020.h5: cannot open (No such file or directory) on rank 1" 1 $FNN train --config $(pwd)/configs/tiny.ini --set data=$(pwd)/$data --set steps=21 --set ckpt_dir=ck --set resume=auto
split "train data" "data.h5: cannot open (No such file or directory) on rank 1" 1 $FNN train --config $(pwd)/configs/tiny.ini --set data=data.h5 --set steps=1

# A disk that fills during a save at np = 2 and 4 (4 used to hang): every rank ends with the same
# message, and the last good checkpoint stays latest. A 1000 KiB tmpfs holds the step-10 file
# (412 KiB) but not the room the step-20 save reserves.
full=$(pwd)/$dir/full
mkdir -p $full
if mount -t tmpfs -o size=1000k fnn-hostile $full 2> /dev/null; then
    trap 'umount $full 2> /dev/null' EXIT INT TERM
    for ranks in 4 $(extra echo 2); do
        rm -rf $full/*
        refuse "disk full during a save" "step-00000020.h5" $ranks $FNN train --config configs/tiny.ini --set data=$data --set ckpt_dir=$full --set ckpt_every=10
        [ "$(cat $full/latest)" = step-00000010.h5 ] && mpi 1 $FNN inspect --verify $full/step-00000010.h5 > /dev/null 2>&1 \
            && say "ok   disk full at np=$ranks: latest is still the verified step-00000010.h5" || fail "disk full at np=$ranks: latest = $(cat $full/latest)"
        ls $full | grep -q tmp && fail "disk full at np=$ranks: a temporary file was left: $(ls $full)"
    done
    umount $full && trap - EXIT INT TERM
else
    say "skip disk full: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)"
fi

[ $fails -eq 0 ] && say "e2e_hostile: all passed" || say "e2e_hostile: $fails failed"
[ $fails -eq 0 ]
