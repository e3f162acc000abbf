#!/bin/sh
# The kernel variants (model/kernel.h) through build/fnn: `fnn inspect --build` names the build
# and the kernel chosen for this CPU; FNN_KERNEL forces one, and one the CPU lacks (FNN_CPU_HIDE
# stands in for an older CPU) or an unknown name is refused with one line at 1 and 2 ranks; a
# CPU below the baseline gets one line, not SIGILL; -march=native's extensions are read as this
# CPU has them; the model trajectory test passes under the
# avx2 variant; make deps says what is missing where it cannot install.
dir=build/e2e_kernel
bound=120
. tests/lib.sh
kernel_of() { "$@" $FNN inspect --build | sed -n 's/^kernel \([a-z0-9]*\) .*/\1/p'; }

$FNN inspect --build > $dir/build.txt
for key in version compiler flags kernel; do
    grep -q "^$key ." $dir/build.txt || fail "inspect --build prints no $key line"
done
grep -q "^flags .*-march=" $dir/build.txt || fail "inspect --build flags lack -march"
best=avx2
grep -q avx512f /proc/cpuinfo && grep -q avx512vl /proc/cpuinfo && grep -q avx512bw /proc/cpuinfo && best=avx512
[ "$(kernel_of env)" = $best ] || fail "kernel on this CPU: $(kernel_of env), expected $best"
for k in avx2 generic; do
    [ "$(kernel_of env FNN_KERNEL=$k)" = $k ] || fail "FNN_KERNEL=$k gives $(kernel_of env FNN_KERNEL=$k)"
done
[ "$(kernel_of env FNN_CPU_HIDE=avx512f)" = avx2 ] || fail "without avx512f the kernel is $(kernel_of env FNN_CPU_HIDE=avx512f)"
say "ok   inspect --build: $(grep kernel $dir/build.txt); FNN_KERNEL and FNN_CPU_HIDE choose"

refuse "unknown FNN_KERNEL" "FNN_KERNEL = avx9" run env FNN_KERNEL=avx9 $FNN inspect --build
refuse "unknown FNN_KERNEL at 2 ranks" "FNN_KERNEL = avx9" run env FNN_KERNEL=avx9 $MPIRUN -x FNN_KERNEL -np 2 $FNN inspect --build
refuse "avx512 on a CPU without it" "lacks avx512f" run env FNN_KERNEL=avx512 FNN_CPU_HIDE=avx512f $FNN inspect --build
refuse "avx512 on 2 ranks without it" "lacks avx512f" run env FNN_KERNEL=avx512 FNN_CPU_HIDE=avx512f $MPIRUN -x FNN_KERNEL -x FNN_CPU_HIDE -np 2 $FNN inspect --build
refuse "CPU below the baseline" "this CPU lacks [a-z0-9 ]*avx2.*lower OPT" run env FNN_CPU_HIDE=avx2,fma $FNN inspect --build

# The extensions of a -march=native build (the Makefile's isa_of), which GCC read from this CPU,
# are all known to model/cpu.c's table and read as present (Zen 5's avx512vp2intersect and
# avx512bf16 included), and the table agrees with /proc/cpuinfo.
native=$(make -s isa-names OPT="-O3 -march=native")
if [ -n "$native" ] && build/tests/test_cpu $native > $dir/cpu.txt 2>&1; then
    say "ok   -march=native's extensions known and present: $native"
else
    fail "-march=native's extensions ($native): $(grep FAIL $dir/cpu.txt | head -3)"
fi

# The model's trajectories at every layout of 1, 2 and 4 ranks against one rank's, on avx2.
for np in 1 2 4; do
    if FNN_KERNEL=avx2 FNN_CPU_HIDE=avx512f run $MPIRUN -x FNN_KERNEL -x FNN_CPU_HIDE -np $np build/tests/test_model > $dir/model.np$np.txt 2>&1; then
        say "ok   test_model np=$np under avx2"
    else
        fail "test_model np=$np under avx2: $(grep FAIL $dir/model.np$np.txt | head -3)"
    fi
done

# make deps where apt-get cannot run: a PATH without it.
mkdir -p $dir/bin
for c in sh grep dpkg-query id pkg-config mpicc mpirun; do
    p=$(command -v $c) && ln -sf "$p" $dir/bin/$c
done
PATH=$dir/bin sh tools/deps.sh "no-such-deb" "ompi" mpicc > $dir/deps.txt 2>&1; rc=$?
[ $rc -eq 0 ] && grep -q "not installed.*no-such-deb" $dir/deps.txt || fail "deps with everything found: rc $rc, $(cat $dir/deps.txt)"
PATH=$dir/bin sh tools/deps.sh "no-such-deb" "ompi no-such-module" no-such-cc > $dir/deps.txt 2>&1; rc=$?
if [ $rc -ne 0 ] && grep -q "cannot find: no-such-module" $dir/deps.txt && grep -q "not on PATH: no-such-cc" $dir/deps.txt && grep -q "apt-get install no-such-deb" $dir/deps.txt; then
    say "ok   make deps without apt-get: $(head -1 $dir/deps.txt)"
else
    fail "deps with a module missing: rc $rc, $(cat $dir/deps.txt)"
fi

rm -rf $dir
[ $fails -eq 0 ] && say "e2e_kernel: all passed" || say "e2e_kernel: $fails failed"
[ $fails -eq 0 ]
