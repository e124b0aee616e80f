#!/usr/bin/env bash
# The self-contained tarball (issue 19): `meson compile -C build ferry-dist` runs
#   make-dist.sh FERRY MANPAGE COMPLETION SCHEMA_DIR VERSION OUTDIR
# and writes OUTDIR/ferry-VERSION-linux-ARCH.tar.gz and OUTDIR/SHA256SUMS: bin/ferry, every
# shared library it needs that is not glibc's in lib/ (found through an $ORIGIN-relative
# DT_RPATH, which also serves the libraries' own dependencies), the man page, the bash
# completion and the JSON Schemas. Nothing is written at the final names until it is complete.
set -euo pipefail
ferry="$1" man="$2" completion="$3" schemas="$4" version="$5" out="$6"
command -v patchelf >/dev/null || { echo "ferry-dist: patchelf is needed (apt-get install patchelf)" >&2; exit 1; }
arch="$(uname -m)"
name="ferry-$version-linux-$arch"
stage="$(mktemp -d "$out/.ferry-dist.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/bin" "$root/lib" "$root/share/man/man1" "$root/share/bash-completion/completions" "$root/share/ferry/schema"
cp "$ferry" "$root/bin/ferry"
cp "$man" "$root/share/man/man1/ferry.1"
cp "$completion" "$root/share/bash-completion/completions/ferry"
cp "$schemas"/*.schema.json "$root/share/ferry/schema/"
# glibc's own libraries stay on the target machine (they must match its kernel ABI and ld.so).
is_glibc() {
  case "$(basename "$1")" in
    ld-linux*.so*|libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libresolv.so.*|libutil.so.*|libanl.so.*|libnsl.so.*|libBrokenLocale.so.*|libmvec.so.*|libnss_*.so.*|linux-vdso.so.*) return 0 ;;
  esac
  return 1
}
ldd "$ferry" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | while read -r lib; do
  is_glibc "$lib" && continue
  cp -L "$lib" "$root/lib/"
done
patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$root/bin/ferry"
for lib in "$root"/lib/*; do patchelf --force-rpath --set-rpath '$ORIGIN' "$lib"; done
# Nothing but glibc may resolve outside the tree.
outside="$(env -i LD_LIBRARY_PATH= ldd "$root/bin/ferry" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' |
  while read -r lib; do case "$lib" in "$root"/*) ;; *) is_glibc "$lib" || echo "$lib" ;; esac; done)"
[ -z "$outside" ] || { echo "ferry-dist: resolved outside the tarball: $outside" >&2; exit 1; }
"$root/bin/ferry" --version >/dev/null
# Inside the tree: every file's checksum, relative to the tree (`sha256sum -c SHA256SUMS` there).
(cd "$root" && find . -type f | sed 's|^\./||' | sort | xargs sha256sum > "$stage/contents.sha256")
mv "$stage/contents.sha256" "$root/SHA256SUMS"
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -czf "$stage/$name.tar.gz" "$name"
(cd "$stage" && sha256sum "$name.tar.gz" > SHA256SUMS)
mv -f "$stage/$name.tar.gz" "$out/$name.tar.gz"
mv -f "$stage/SHA256SUMS" "$out/SHA256SUMS"
echo "$out/$name.tar.gz"
