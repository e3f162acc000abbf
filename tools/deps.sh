#!/bin/sh
# make deps: installs the Debian packages fnn needs that are missing, where apt-get can (Debian,
# as root); then checks what the build and tests use: the pkg-config modules (PKGS), the compiler
# and mpirun. Where something is missing and cannot be installed, it says exactly what and how to
# provide it, and fails; it does not fail for Debian packages whose contents come from elsewhere
# (environment modules) when the build finds everything.
# Usage: deps.sh "DEBIAN PACKAGES" "PKG-CONFIG MODULES" COMPILER
debs=$1; pkgs=$2; cc=$3

notinstalled=""
if command -v dpkg-query > /dev/null 2>&1; then
    for p in $debs; do
        dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "ok installed" || notinstalled="$notinstalled $p"
    done
fi
if [ -n "$notinstalled" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
    echo "deps: installing:$notinstalled"
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $notinstalled; then
        notinstalled=""
    else
        echo "deps: apt-get could not install:$notinstalled" >&2
    fi
fi

nomodule=""
if [ -n "$pkgs" ]; then
    if command -v pkg-config > /dev/null 2>&1; then
        for m in $pkgs; do pkg-config --exists "$m" || nomodule="$nomodule $m"; done
    else
        nomodule=" pkg-config itself"
    fi
fi
nocmd=""
for c in "$cc" mpirun; do command -v "$c" > /dev/null 2>&1 || nocmd="$nocmd $c"; done

if [ -z "$nomodule$nocmd" ]; then
    [ -n "$notinstalled" ] && echo "deps: everything the build needs is found; not installed (tests or demo may skip or fail without them):$notinstalled"
    exit 0
fi
{
    [ -n "$nomodule" ] && echo "deps: pkg-config cannot find:$nomodule (PKGS; PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-unset})"
    [ -n "$nocmd" ] && echo "deps: not on PATH:$nocmd"
    [ -n "$notinstalled" ] && echo "deps: Debian packages that provide them:$notinstalled (as root: apt-get install$notinstalled)"
    echo "deps: or load your site's modules (MPI, parallel HDF5, ScaLAPACK, OpenBLAS, inih) and build with"
    echo "      make CC=... PKGS='their pkg-config names', or PKGS= CFLAGS='-I...' LDLIBS='-L... -l...' (README, Building)"
} >&2
exit 1
