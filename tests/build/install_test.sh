#!/bin/sh
# meson install into a temporary root, then build a tiny program against the
# installed header and library with pkg-config alone, and run it.
set -eu
build_root=$1
# A sanitizer build's library needs the program built with the same runtime.
sanitize=${2:-none}
extra=""
[ "$sanitize" != none ] && extra="-fsanitize=$sanitize"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
DESTDIR="$tmp/root" meson install -C "$build_root" --no-rebuild --quiet >/dev/null
pc=$(find "$tmp/root" -name xmppuv.pc | head -n 1)
[ -n "$pc" ] || { echo "not ok 1 - xmppuv.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cat > "$tmp/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <xmppuv.h>
int main(void) {
  xmppuv_stanza_t *s;
  char *xml;
  if (xmppuv_stanza_new("message", NULL, &s) != 0) return 1;
  if (xmppuv_stanza_set_attr(s, "to", "a&b@example.org") != 0) return 1;
  if (xmppuv_stanza_to_string(s, &xml, NULL) != 0) return 1;
  int ok = strcmp(xml, "<message to='a&amp;b@example.org'/>") == 0 &&
           strcmp(xmppuv_version_string(), XMPPUV_VERSION_STRING) == 0;
  printf("# %s %s\n", xml, xmppuv_version_string());
  xmppuv_free(xml);
  xmppuv_stanza_unref(s);
  return ok ? 0 : 1;
}
C
echo "1..2"
# shellcheck disable=SC2046,SC2086
if cc $extra -o "$tmp/app" "$tmp/app.c" $(pkg-config --cflags --libs xmppuv); then
  echo "ok 1 - compiled and linked with pkg-config --cflags --libs xmppuv"
else
  echo "not ok 1 - compile against the installed library"; exit 1
fi
libdir=$(dirname "$(dirname "$pc")")
if LD_LIBRARY_PATH="$libdir" "$tmp/app"; then
  echo "ok 2 - the program runs against the installed shared library"
else
  echo "not ok 2 - the program failed against the installed library"; exit 1
fi
