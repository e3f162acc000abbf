#!/bin/sh
# The documentation stays usable from a clone: every relative link (and #anchor) in README.md,
# docs/*.md and slurm/README.md (when present) resolves to a file inside the repository, and every
# config key that `fnn train --help` lists has its row in docs/config.md, whose `cell` row lists
# the cells of the registry (model/cell.h, as --help gives them), in its order. The checks first
# run on a planted broken link, a planted bad anchor, a config page missing a key and one missing
# a cell, and must catch each, so they cannot pass by finding nothing.
dir=build/tests/docs
. tests/lib.sh
tmp=$dir
root=$(pwd -P)

# "line<TAB>target" of every inline link [text](target) of a Markdown file, outside fenced code
# blocks and code spans.
links() {
    awk '/^ *```/ { fenced = !fenced; next }
         !fenced {
             line = $0; gsub(/`[^`]*`/, "", line)
             while (match(line, /\]\([^) ]+\)/)) {
                 print FNR "\t" substr(line, RSTART + 2, RLENGTH - 3)
                 line = substr(line, RSTART + RLENGTH)
             }
         }' "$1"
}

# The anchors of a Markdown file's headings, as GitHub makes them: lower case, punctuation other
# than - and _ dropped, spaces to -, a repeated heading gets -1, -2, ...
anchors() {
    awk '/^ *```/ { fenced = !fenced; next }
         !fenced && /^#+ / {
             h = tolower($0); sub(/^#+ +/, "", h); sub(/ +#*$/, "", h)
             gsub(/[^a-z0-9 _-]/, "", h); gsub(/ /, "-", h)
             if (h in seen) { seen[h]++; h = h "-" seen[h] } else seen[h] = 0
             print h
         }' "$1"
}

# Prints one line per link of the given files that does not resolve; returns the count.
check_links() {
    bad=0
    for f in "$@"; do
        dir=$(dirname "$f")
        links "$f" > $tmp/links.txt
        while IFS="$(printf '\t')" read -r line target; do
            case "$target" in http://* | https://* | mailto:*) continue ;; esac
            path=${target%%#*}
            anchor=
            case "$target" in *#*) anchor=${target#*#} ;; esac
            if [ -z "$path" ]; then dest=$f; else dest=$dir/$path; fi
            full=$(realpath -m "$dest")
            case "$full" in
                "$root" | "$root"/*) ;;
                *) say "$f:$line: $target leaves the repository"; bad=$((bad + 1)); continue ;;
            esac
            if [ ! -e "$full" ]; then
                say "$f:$line: $target: no such file"; bad=$((bad + 1)); continue
            fi
            if [ -n "$anchor" ]; then
                case "$full" in
                    *.md) anchors "$full" | grep -qxF -- "$anchor" ||
                        { say "$f:$line: $target: no heading #$anchor in $path"; bad=$((bad + 1)); } ;;
                esac
            fi
        done < $tmp/links.txt
    done
    return $bad
}

# The keys `fnn train --help` lists without a "| `key` |" row in the page $1, on one line.
missing_keys() {
    $FNN train --help | awk '/^config keys/ { on = 1; next } on && /^  [a-z]/ { print $1 }' > $tmp/keys.txt
    [ -s $tmp/keys.txt ] || { say "no config keys in '$FNN train --help'"; return 1; }
    miss=
    while read -r key; do
        grep -qF -- "| \`$key\` |" "$1" || miss="$miss $key"
    done < $tmp/keys.txt
    [ -z "$miss" ] || { say "missing from $1:$miss"; return 1; }
}

# The cells of the page $1's `cell` row against those `fnn train --help` lists, on one line.
cells_differ() {
    want=$($FNN train --help | sed -n 's/^  cell  *[a-z]* (\([a-z|]*\)).*/\1/p' | tr '|' ' ')
    got=$(awk -F'|' '$2 ~ /^ `cell` $/ { print $4 }' "$1" | tr -d '`,' | xargs)
    [ -n "$want" ] && [ "$got" = "$want" ] && return 1
    say "$1 lists the cells '$got', fnn train --help '$want'"
}

[ -x $FNN ] || { say "FAIL: $FNN is not built"; exit 1; }

# The checks catch what they are for.
mkdir -p $tmp/sub
printf '# Top\n## A heading: with `code`\n' > $tmp/sub/target.md
printf '[ok](target.md) [ok](target.md#a-heading-with-code) [ok](#title)\n# Title\n' > $tmp/sub/good.md
printf 'see [gone](nothere.md)\n' > $tmp/sub/broken.md
printf 'see [bad](target.md#no-such-heading)\n' > $tmp/sub/anchor.md
printf 'see [out](../../../../../etc/passwd)\n' > $tmp/sub/outside.md
check_links $tmp/sub/good.md > $tmp/out.txt || fail "a good link was refused: $(cat $tmp/out.txt)"
for bad in broken anchor outside; do
    check_links $tmp/sub/$bad.md > $tmp/out.txt && fail "the $bad link was not caught"
done
grep -v '^| `seed` |' docs/config.md > $tmp/config.md
missing_keys $tmp/config.md > $tmp/out.txt && fail "a config page without seed passed"
grep -q 'missing from .*: seed$' $tmp/out.txt || fail "the missing key is not named: $(cat $tmp/out.txt)"
sed 's/^\(| `cell` |[^|]*| \)`[a-z]*`, /\1/' docs/config.md > $tmp/config.md
cmp -s $tmp/config.md docs/config.md && fail "the planted config page has all the cells"
cells_differ $tmp/config.md > $tmp/out.txt || fail "a config page without the first cell passed"

# The real documentation.
docs="README.md docs/*.md"
[ -f slurm/README.md ] && docs="$docs slurm/README.md"
n=$(for f in $docs; do links "$f"; done | wc -l)
if check_links $docs > $tmp/out.txt; then say "ok   $n links in $docs resolve"; else
    fail "broken links:"; cat $tmp/out.txt; fi
if missing_keys docs/config.md > $tmp/out.txt; then
    say "ok   docs/config.md has all $(wc -l < $tmp/keys.txt) keys of fnn train --help"
else fail "$(cat $tmp/out.txt)"; fi
if cells_differ docs/config.md > $tmp/out.txt; then fail "$(cat $tmp/out.txt)"
else say "ok   docs/config.md lists the cells of fnn train --help: $want"; fi

[ $fails -eq 0 ] && say "docs: all checks passed" || say "docs: $fails failed"
exit $((fails != 0))
