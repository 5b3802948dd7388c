#!/usr/bin/env bash
# device-deps.sh - carry our Debian build/test dependencies to the GPU machine, which has the CUDA
# toolkit, cmake, ninja and python3 (+ torch) but no network, no apt and none of these libraries.
#
#   bash tools/device-deps.sh          (here, with apt) download the .debs of libcmocka, libutf8proc,
#                                      libcjson, OpenBLAS (+ libgfortran5, libquadmath0) and pkgconf,
#                                      extract them into .deps/root, keep only what building and
#                                      running needs (~45 MB: OpenBLAS is 36 MB), then drop the .debs
#                                      (KEEP_DEBS=1 keeps them in .deps/debs); add the CUTLASS wheel
#                                      (tools/fetch-cutlass.sh, 6 MB): ~50 MB of the carry's 64 MiB.
#   eval "$(bash tools/device-deps.sh env)"
#                                      (anywhere, e.g. on the device) write .pc files rewritten to the
#                                      extracted location into .deps/pkgconfig and print the exports
#                                      that make CMake, pkgconf and the loader use ONLY .deps:
#                                      PKG_CONFIG_LIBDIR, LD_LIBRARY_PATH, and BQ_DEPS_CMAKE_ARGS
#                                      (-DPKG_CONFIG_EXECUTABLE, -DCBLAS_INCLUDE_DIR, -DOPENBLAS_LIBRARY).
# Symlinks are replaced by copies at fetch time, so nothing depends on links surviving a copy.
# .deps/ is gitignored. Carry it to the device with the run tool's carry=[".deps"].
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$repo/.deps"
root="$deps/root"
arch=x86_64-linux-gnu
libdir="$root/usr/lib/$arch"

packages=(libcmocka0 libcmocka-dev libutf8proc2 libutf8proc-dev libcjson1 libcjson-dev
          libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0
          pkgconf-bin libpkgconf3)

fetch() {
    rm -rf "$deps/debs" "$root" "$deps/pkgconfig"
    mkdir -p "$deps/debs" "$root"
    (cd "$deps/debs" && apt-get download "${packages[@]}")
    for deb in "$deps"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done

    # OpenBLAS: one real file under its SONAME next to the other libraries; the static archives,
    # reference BLAS/LAPACK wrappers and the alternatives directory are not needed.
    local ob="$libdir/openblas-pthread"
    mv "$(readlink -f "$ob/libopenblas.so.0")" "$libdir/libopenblas.so.0"
    mkdir -p "$root/usr/include/openblas"
    cp "$root/usr/include/$arch/openblas-pthread/"*.h "$root/usr/include/openblas/"
    rm -rf "$ob" "$root/usr/include/$arch/openblas-pthread"
    rm -rf "$root/usr/share" "$root/usr/lib/$arch/cmake" "$root/usr/lib/pkgconfig"
    find "$root" -name '*.a' -delete
    # links -> copies (all small now)
    find "$root" -type l | while read -r link; do
        target="$(readlink -f "$link")"
        rm "$link"
        if [ -f "$target" ]; then cp "$target" "$link"; fi
    done
    # the linker name for -lpkgconf-free builds is not needed; libpkgconf.so.3 is the SONAME
    [ "${KEEP_DEBS:-0}" = 1 ] || rm -rf "$deps/debs"
    bash "$repo/tools/fetch-cutlass.sh" # the CUTLASS wheel (6 MB) travels in .deps too
    du -sh "$deps"
}

env_exports() {
    [ -f "$libdir/libopenblas.so.0" ] || { echo "echo 'device-deps: $root missing; run tools/device-deps.sh here first' >&2; false"; return; }
    local pcdir="$deps/pkgconfig"
    mkdir -p "$pcdir"
    for pc in "$libdir/pkgconfig/"*.pc; do
        # every path in these files is absolute under /usr: point it at the extracted copy
        sed -e "s#=/usr#=$root/usr#g" -e "s#-I/usr#-I$root/usr#g" -e "s#-L/usr#-L$root/usr#g" \
            "$pc" > "$pcdir/$(basename "$pc")"
    done
    echo "export PKG_CONFIG_LIBDIR='$pcdir'"
    echo "export PKG_CONFIG_PATH=''"
    echo "export LD_LIBRARY_PATH='$libdir'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
    echo "BQ_DEPS_CMAKE_ARGS='-DPKG_CONFIG_EXECUTABLE=$root/usr/bin/pkgconf -DCBLAS_INCLUDE_DIR=$root/usr/include/openblas -DOPENBLAS_LIBRARY=$libdir/libopenblas.so.0'"
}

case "${1:-fetch}" in
fetch) fetch ;;
env) env_exports ;;
*) echo "usage: $0 [fetch|env]" >&2; exit 2 ;;
esac
