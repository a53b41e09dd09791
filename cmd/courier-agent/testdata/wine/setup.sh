#!/usr/bin/env bash
# Prepares a Wine prefix that runs Go programs: `setup.sh PREFIX`.
#
# Debian 12's Wine 8 has no bcryptprimitives.dll, which the Go runtime
# (1.22 and later) loads at start for ProcessPrng ("fatal error:
# bcryptprimitives.dll not found"). This script assembles a 5 KB DLL with
# that one function (prng.s, a call to RtlGenRandom) with the MinGW
# binutils and puts it in the prefix's system32. Needs wine64 and
# binutils-mingw-w64-x86-64.
set -euo pipefail
prefix=${1:?usage: setup.sh WINEPREFIX}
here=$(cd "$(dirname "$0")" && pwd)
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
mkdir -p "$prefix"
"$wine" wineboot --init >/dev/null 2>&1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
P=x86_64-w64-mingw32-
printf 'LIBRARY advapi32.dll\nEXPORTS\nSystemFunction036\n' >"$work/advapi32.def"
printf 'LIBRARY bcryptprimitives.dll\nEXPORTS\nProcessPrng\n' >"$work/bcp.def"
${P}as -o "$work/prng.o" "$here/prng.s"
${P}dlltool -d "$work/advapi32.def" -l "$work/libadvapi32.a"
${P}ld --shared -e 0 -o "$work/bcryptprimitives.dll" "$work/bcp.def" "$work/prng.o" "$work/libadvapi32.a"
cp "$work/bcryptprimitives.dll" "$prefix/drive_c/windows/system32/bcryptprimitives.dll"
# Wait for the prefix's wineserver to finish writing the registry.
"$(dirname "$wine")/wineserver" -w 2>/dev/null || wineserver -w 2>/dev/null || true
