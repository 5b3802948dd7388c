#!/usr/bin/env bash
# cli_install.sh - `cmake --install` of the build gives a prefix that stands on its own: the
# programs find the installed vocabulary, and an outside C program builds with nothing but
# `pkg-config bertqa` (as tools/ask_example.c), runs against the installed libbertqa.so and answers
# as the installed command line does; the header also compiles as C++.
# usage: bash tests/cli_install.sh <bertqa-gpu> <bertqa-make-model> <source dir>
# exit 0 pass, 77 skip, 1 fail.
set -u
gpu=${1:?bertqa-gpu path}
src=${3:?source dir}
build=$(cd "$(dirname "$gpu")" && pwd)

for tool in cmake pkg-config cc c++; do
    command -v "$tool" >/dev/null || { echo "skip: no $tool"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check_scratch=$tmp
. "$(dirname "$0")/check_lib.sh"

prefix="$tmp/prefix with space"
if ! cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "FAIL: cmake --install"
    exit 1
fi
pc=$(find "$prefix" -name bertqa.pc | head -1)
for f in bin/bertqa-gpu bin/bertqa-make-model include/bertqa.h share/bertqa-gpu/vocab.txt; do
    check "installed $f" test -f "$prefix/$f"
done
check "installed bertqa.pc" test -n "$pc"
check "installed libbertqa.so" test -n "$(find "$prefix" -name 'libbertqa.so*' | head -1)"

# the installed programs take the installed vocabulary, wherever they are run from
check "--version names the installed vocabulary" \
    grep -qF "vocabulary: $(cd "$prefix/share/bertqa-gpu" && pwd -P)/vocab.txt" \
    <("$prefix/bin/bertqa-gpu" --version)
check "installed tokenize runs from another folder" \
    bash -c 'cd / && echo "Hello, world!" | "$1" tokenize | grep -qx "7592 1010 2088 999"' _ "$prefix/bin/bertqa-gpu"

# an outside program: flags from pkg-config only (a sanitized build's library needs the sanitizers);
# `read` without -r undoes the backslashes pkg-config puts before the spaces in the prefix
export PKG_CONFIG_PATH="$(dirname "$pc")"
extra=()
grep -q '^BQ_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null &&
    extra=(-fsanitize=address,undefined,float-cast-overflow)
read -a cflags <<<"$(pkg-config --cflags bertqa)"
read -a libs <<<"$(pkg-config --libs bertqa)"
libdir=$(dirname "$(find "$prefix" -name 'libbertqa.so' | head -1)")
check "pkg-config version is the library's" test "$(pkg-config --modversion bertqa)" = \
    "$(sed -n 's/^#define BQ_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$src/include/bertqa.h" | paste -sd.)"
check "ask_example.c builds against the installed library" \
    cc -std=c11 -Wall -Wextra -Werror -pedantic "${extra[@]}" "${cflags[@]}" "$src/tools/ask_example.c" \
    -o "$tmp/ask" "${libs[@]}" -Wl,-rpath,"$libdir"
check "bertqa.h compiles as C++" bash -c 'printf "#include <bertqa.h>\nint main() { return bq_version_string() ? 0 : 1; }\n" |
    c++ -std=c++11 -Wall -Wextra -Werror -pedantic -x c++ -fsyntax-only "$@" -' _ "${cflags[@]}"
check "libbertqa.so finds every library it needs" bash -c '! ldd "$1" | grep -q "not found"' _ "$libdir/libbertqa.so"

# the example answers as the installed command line does (same OpenBLAS kernels for both: the
# command line would otherwise start again on better ones, which a library cannot)
export OPENBLAS_CORETYPE=Prescott
"$prefix/bin/bertqa-make-model" --out "$tmp/model" --preset tiny --seed 3 >/dev/null 2>&1
q="Where did the cat sit?"
c="The cat sat on the mat in the house. Dogs ran in the park all day."
if [ -x "$tmp/ask" ]; then
    cli=$("$prefix/bin/bertqa-gpu" ask --model "$tmp/model" --question "$q" --context "$c" \
          --length-bucket 8 2>/dev/null | head -1)
    lib=$("$tmp/ask" "$tmp/model" "$q" "$c" length-bucket=8 2>"$tmp/ask.err" | head -1)
    check "the example's answer ('$lib') is the command line's ('$cli')" test -n "$lib" -a "$lib" = "$cli"
    check "a bad setting: exit 2 and a message" bash -c '"$1" "$2" q c batch=x 2>&1 >/dev/null; [ $? = 2 ]' \
        _ "$tmp/ask" "$tmp/model"
fi
check_summary
