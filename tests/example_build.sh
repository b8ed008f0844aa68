# Sourced by the example tests: installs chainrule from $BUILD into a scratch prefix ($tmp,
# removed on exit) and builds examples/$1 against it through pkg-config, into $tmp/build.
# A program linked to a sanitized library (scripts/sanitize) needs the sanitizer runtime
# first, so the example is built with the library's own b_sanitize.
build_example() {
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    meson install -C "$BUILD" --destdir "$tmp/root" >/dev/null
    local pcdir sanitize extra=()
    pcdir=$(dirname "$(find "$tmp/root" -name chainrule.pc | head -1)")
    sanitize=$(meson introspect "$BUILD" --buildoptions |
               python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "b_sanitize"))')
    [[ $sanitize != none ]] && extra=(-Db_sanitize="$sanitize" -Db_lundef=false)
    PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$tmp/root meson setup "$tmp/build" "$SRC/examples/$1" -Dwerror=true \
        "${extra[@]}" >/dev/null
    ninja -C "$tmp/build" >/dev/null
}
