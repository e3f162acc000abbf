#!/bin/sh
# Set-up refusals end to end: options without their value and stray arguments; ranks that read
# different files under one data path (each rank its own working directory) end together with
# one line, not a hang; a file system without locks (fcntl's OFD lock failing with ENOLCK, by an
# LD_PRELOAD shim) warns and trains; ckpt_overwrite that would remove init_from is refused and
# the file kept. Each case: exit status, time bound, the message.
dir=build/setup
data=text.h5
. tests/lib.sh
mkdir -p $dir/a $dir/b

$FNN prepare --kind text --val-fraction 0.1 --out $dir/text.h5 /usr/share/games/fortunes/computers > /dev/null || fail prepare
awk 'BEGIN { for (i = 0; i < 400; i++) printf "%.4f,%.4f\n", sin(i * 0.1), cos(i * 0.1) }' > $dir/two.csv
awk 'BEGIN { for (i = 0; i < 400; i++) printf "%.4f,%.4f,%.4f\n", sin(i * 0.1), sin(i * 0.2), cos(i * 0.1) }' > $dir/three.csv
$FNN prepare --kind csv --inputs 1 --out $dir/a/data.h5 $dir/two.csv > /dev/null || fail "prepare csv 1"
$FNN prepare --kind csv --inputs 2 --out $dir/b/data.h5 $dir/three.csv > /dev/null || fail "prepare csv 2"

# Options: a value is never taken from the next option, and no argument is ignored.
refuse "eval --checkpoint at the end" "fnn eval: option --checkpoint needs a value" mpi 1 $FNN eval --checkpoint
refuse "eval --checkpoint --json" "fnn eval: option --checkpoint needs a value" \
    mpi 1 $FNN eval --checkpoint --json --data $dir/text.h5
refuse "eval with a stray argument" "fnn eval: unexpected argument 'stray'" \
    mpi 1 $FNN eval --json stray --checkpoint x.h5 --data $dir/text.h5
refuse "train with a stray argument" "fnn train: unexpected argument 'configs/tiny.ini'" \
    mpi 1 $FNN train configs/tiny.ini
refuse "bench --ckpt with a stray argument" "fnn bench: unexpected argument 'now'" \
    mpi 1 $FNN bench --ckpt now --gib 0.01

# Each rank its own working directory, so one data path names another file on each. One
# application context per rank (mpirun's "a : b"); the first is rank 0.
apart() {
    x=$1; y=$2; shift 2
    timeout 60 $MPIRUN -np 1 -wdir $(pwd)/$dir/$x $FNN train --config $(pwd)/configs/tiny.ini "$@" \
        : -np 1 -wdir $(pwd)/$dir/$y $FNN train --config $(pwd)/configs/tiny.ini "$@"
}
cp $dir/text.h5 $dir/a/text.h5; cp $dir/b/data.h5 $dir/b/text.h5
cp $dir/a/data.h5 $dir/a/lm.h5; cp $dir/text.h5 $dir/b/lm.h5
refuse "np=2 dense of 1 and of 2 inputs" "data.h5 differs between ranks (kind, inputs, outputs or sequence length)" \
    apart a b --set task=regress --set data=data.h5 --set steps=2
# Same inputs and outputs, but rank 1's file holds per-sequence targets (sequences of 2 steps).
$FNN prepare --kind csv --inputs 1 --out $dir/a/seq.h5 $dir/two.csv > /dev/null || fail "prepare csv stream"
$FNN prepare --kind csv --inputs 1 --seq-len 2 --out $dir/b/seq.h5 $dir/three.csv > /dev/null || fail "prepare csv sequences"
refuse "np=2 a stream on rank 0, sequences on rank 1" "seq.h5 differs between ranks (kind, inputs, outputs or sequence length)" \
    apart a b --set task=regress --set data=seq.h5 --set score=last --set seq_len=2 --set steps=2
# Rank 1 alone fails the task check: before any collective, all end.
refuse "np=2 text on rank 0, dense on rank 1" "text.h5 differs between ranks" \
    apart a b --set task=lm --set data=text.h5 --set steps=2
refuse "np=2 dense on rank 0, text on rank 1" "lm.h5 is a dataset for task regress, the config says task = lm\$" \
    apart a b --set task=lm --set data=lm.h5 --set steps=2

# A file system without locks: the lock fails with ENOLCK; the run warns once and trains.
cat > $dir/nolock.c << 'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
static int shim(const char* sym, int fd, int cmd, void* arg)
{
    if (cmd == F_OFD_SETLK) return errno = ENOLCK, -1;
    int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, sym);
    return real(fd, cmd, arg);
}
int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return shim("fcntl", fd, cmd, arg);
}
int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return shim("fcntl64", fd, cmd, arg);
}
EOF
cc -shared -fPIC -o $dir/nolock.so $dir/nolock.c -ldl || fail "build the shim"
for np in 1 2; do
    ck=$dir/nolock$np
    timeout 60 $MPIRUN -np $np -x LD_PRELOAD=$(pwd)/$dir/nolock.so $FNN train --config configs/tiny.ini \
        --set data=$dir/text.h5 --set steps=2 --set ckpt_dir=$ck > $dir/out.txt 2> $dir/err.txt
    rc=$?
    w="fnn: warning: ckpt_dir = $ck: the file system cannot lock $ck/lock (No locks available); continuing unlocked"
    if [ $rc -eq 0 ] && [ "$(grep -c 'fnn: warning' $dir/err.txt)" -eq 1 ] && grep -qF "$w" $dir/err.txt &&
        [ "$(cat $ck/latest)" = step-00000002.h5 ]; then
        say "ok   np=$np without locks: $(grep 'fnn: warning' $dir/err.txt)"
    else
        fail "np=$np without locks: exit $rc, $(grep -v '^ *$' $dir/err.txt | head -3)"
    fi
done

# ckpt_overwrite = true in the directory that holds init_from: refused, the file kept.
for np in 1 2; do
    ck=$dir/own$np
    train $np --set steps=1 --set ckpt_dir=$ck > $dir/t.txt 2>&1 || fail "np=$np: first run: $(grep 'fnn: error' $dir/t.txt)"
    refuse "np=$np ckpt_overwrite would remove init_from" \
        "ckpt_overwrite = true would remove init_from = $ck/../own$np/step-00000001.h5 (it is $ck/step-00000001.h5)" \
        train $np --set steps=1 --set ckpt_dir=$ck --set init_from=$ck/../own$np/step-00000001.h5 --set ckpt_overwrite=true
    [ -f $ck/step-00000001.h5 ] || fail "np=$np: init_from was removed"
done

[ $fails -eq 0 ] && say "e2e_setup: all checks passed" || say "e2e_setup: $fails failed"
[ $fails -eq 0 ]
