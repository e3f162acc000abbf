# Sourced by end-to-end scripts (after they set dir, their scratch folder): sets_close A B G T
# succeeds when every dataset under group G (empty: the whole file) of HDF5 file A agrees with
# the same dataset of B to T relative in the 2-norm of the difference: float32 sums in another
# order move elements near zero by more than T of themselves, but not the tensor.
values() { h5dump -A 0 -y -w 0 -m '%.9g' -d "$1" "$2" | sed -n '/DATA {/,$p' | grep -o -- '-\?[0-9][0-9.e+-]*'; }
sets_close() {
    sets=$(h5ls -r "$1$3" | awk -v g="$3" '$2 == "Dataset" { print g $1 }')
    [ -n "$sets" ] || return 1
    for d in $sets; do
        values $d "$1" > $dir/ga.txt; values $d "$2" > $dir/gb.txt
        paste $dir/ga.txt $dir/gb.txt | awk -v d=$d -v t=$4 '{ e += ($1 - $2)^2; n += $1^2; k++ } END { r = n > 0 ? sqrt(e / n) : sqrt(e); if (k == 0 || r > t) { printf "%s: relative difference %.2e\n", d, r; exit 1 } }' || return 1
    done
}
