#!/bin/sh
# The README's "Installing into a prefix of your own", command for command,
# on a copy of the source tree, with Check hidden from meson (as on a
# machine without it): the plain setup must succeed without building a
# test, install into a prefix in a temporary HOME, and a program built with
# the pkg-config line must run with the LD_LIBRARY_PATH line.
#   install_prefix_test.sh SOURCE_ROOT
set -eu
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..4"

# Check hidden: a pkg-config directory with every .pc file but check.pc.
mkdir "$tmp/pc"
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
  [ -d "$d" ] || continue
  for f in "$d"/*.pc; do
    [ -e "$f" ] || continue
    case "$(basename "$f")" in check.pc) ;; *) ln -sf "$f" "$tmp/pc/" ;; esac
  done
done
export PKG_CONFIG_LIBDIR="$tmp/pc"
if pkg-config --exists check; then
  echo "not ok 1 - could not hide Check from pkg-config"; exit 1
fi

# A copy of the tree without build directories, as a user's clone.
mkdir "$tmp/src"
(cd "$src" && git ls-files -z 2>/dev/null | xargs -0 -I{} cp --parents {} "$tmp/src/") ||
  { echo "not ok 1 - could not copy the source tree"; exit 1; }
export HOME="$tmp/home"
mkdir "$HOME"
cd "$tmp/src"

# The README's commands, in its order.
if meson setup build --prefix="$HOME/.local" --libdir=lib >"$tmp/setup.log" 2>&1; then
  echo "ok 1 - meson setup without Check"
else
  cat "$tmp/setup.log" | sed 's/^/# /'; echo "not ok 1 - meson setup without Check"; exit 1
fi
if grep -q "test_" build/build.ninja; then
  echo "not ok 2 - test targets configured without Check"; exit 1
fi
if meson install -C build >"$tmp/install.log" 2>&1; then
  echo "ok 2 - meson install, no test built"
else
  sed 's/^/# /' "$tmp/install.log"; echo "not ok 2 - meson install"; exit 1
fi
export PKG_CONFIG_PATH="$HOME/.local/lib/pkgconfig:${PKG_CONFIG_PATH:-}"
export LD_LIBRARY_PATH="$HOME/.local/lib:${LD_LIBRARY_PATH:-}"
cat >app.c <<'C'
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <xmppuv.h>
int main(void) {
  xmppuv_client_options_t o;
  xmppuv_client_options_init(&o);
  o.jid = "alice@example.org";
  o.password = "secret";
  xmppuv_client_t *c = NULL;
  int rc = xmppuv_client_new(uv_default_loop(), &o, NULL, NULL, &c);
  if (rc != 0) { printf("# %s\n", xmppuv_strerror(rc)); return 1; }
  xmppuv_client_close(c, NULL);
  uv_run(uv_default_loop(), UV_RUN_DEFAULT);
  printf("# %s\n", xmppuv_version_string());
  return strcmp(xmppuv_version_string(), XMPPUV_VERSION_STRING) == 0 ? 0 : 1;
}
C
# shellcheck disable=SC2046
if cc -o app app.c $(pkg-config --cflags --libs xmppuv) 2>"$tmp/cc.log"; then
  echo "ok 3 - cc with pkg-config --cflags --libs xmppuv"
else
  sed 's/^/# /' "$tmp/cc.log"; echo "not ok 3 - compile against the installed library"; exit 1
fi
if ./app && ldd ./app | grep -q "$HOME/.local/lib/libxmppuv.so.0"; then
  echo "ok 4 - the program runs with the library from the prefix"
else
  ldd ./app | sed 's/^/# /'; echo "not ok 4 - run"; exit 1
fi
