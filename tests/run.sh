#!/bin/sh
# Runs each test binary at the rank counts its source names on a "// ranks:" line (default 1),
# under $MPIRUN, and each tests/*.sh script once (it calls $MPIRUN itself); closes with
# "N passed, N failed".
# A rank that ends with a non-zero status makes mpirun SIGTERM the others and SIGKILL them
# odls_base_sigkill_timeout seconds later (1 by default); mpirun then takes about 2 s to return,
# even at np = 1, where nothing is left to kill: 2 s for each of the suite's refused runs. The
# tests that need ranks to outlive mpirun's SIGTERM set their own (tests/e2e_cli.sh, fnn-run's
# FNN_SIGKILL_TIMEOUT), which the environment's default does not override.
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-0}
pass=0; fail=0; failed=""
for t in "$@"; do
    name=$(basename "$t" .sh)
    case "$t" in
        *.sh) ranks=script ;;
        *) ranks=$(sed -n 's|^// ranks: *||p' "tests/$name.c" | head -n 1) ;;
    esac
    for np in ${ranks:-1}; do
        log="build/tests/$name.np$np.log"
        start=$(date +%s)
        if [ "$np" = script ]; then cmd="sh $t"; else cmd="$MPIRUN -np $np $t"; fi
        if MPIRUN="$MPIRUN" $cmd > "$log" 2>&1; then
            pass=$((pass + 1)); echo "ok   $name (np=$np, $(( $(date +%s) - start ))s)"
            grep '^SKIPPED' "$log" | sed 's/^/    /' # a check the machine could not run
        else
            fail=$((fail + 1)); failed="$failed $name(np=$np)"
            echo "FAIL $name (np=$np)"; tail -n 20 "$log" | sed 's/^/    /'
        fi
    done
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
