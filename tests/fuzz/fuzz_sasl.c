/* Fuzz target: the SASL helpers that read what a server sends or offers
 * (lib/sasl/sasl.c): base64 and SASL payload decoding, mechanism choice from a
 * stream features offer, string preparation, the PLAIN/ANONYMOUS/EXTERNAL
 * builders.
 *
 * Input: 1 header byte, then data.
 *   op = header % 5:
 *   0 base64 decode: when it succeeds, encoding the result gives the input
 *     back (the decoder is strict, so its inputs are canonical); when it
 *     fails, the output buffer is as it was.
 *   1 SASL payload decode ("=" is empty), the same checks.
 *   2 mechanism choice: NUL-separated fields "M:name" (offered mechanism),
 *     "C:type" (XEP-0440 type; the first makes the list advertised),
 *     "O:type" (a binding type we have), "A:name" (allow-list); the
 *     header's upper bits are the policy. The choice must be one the
 *     server offered and the policy allows, with a binding type of ours.
 *   3 preparation (password when header bit 3): the result is its own
 *     preparation and holds no control characters.
 *   4 PLAIN (authzid NUL authcid NUL password), ANONYMOUS trace, EXTERNAL
 *     authzid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "fuzz_input.h"
#include "sasl/sasl.h"
#include "xmppuv.h"

static void check_decode(const char *text, size_t len, int payload) {
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  FZ_CHECK(xmppuv__buf_append_str(&out, "pre") == 0, "oom");
  int rc = payload ? xmppuv__sasl_payload_decode(text, len, &out)
                   : xmppuv__base64_decode(text, len, &out);
  if (rc != 0) {
    FZ_CHECK(rc == XMPPUV_EPROTO, "unexpected error %s", xmppuv_err_name(rc));
    FZ_CHECK(out.len == 3 && memcmp(out.data, "pre", 3) == 0, "output changed on error");
    xmppuv__buf_free(&out);
    return;
  }
  FZ_CHECK(out.len >= 3 && memcmp(out.data, "pre", 3) == 0, "prefix lost");
  FZ_CHECK(out.len - 3 <= len / 4 * 3, "decoded %zu bytes from %zu", out.len - 3, len);
  xmppuv__buf_t again = XMPPUV__BUF_INIT;
  rc = payload ? xmppuv__sasl_payload_encode(out.data + 3, out.len - 3, &again)
               : xmppuv__base64_encode(out.data + 3, out.len - 3, &again);
  FZ_CHECK(rc == 0, "encode");
  /* An empty element is no data too (RFC 6120 §6.4.2 writes it "="). */
  if (payload && len == 0) FZ_CHECK(out.len == 3, "\"\" decoded to data");
  else
  FZ_CHECK(again.len == len && (len == 0 || memcmp(again.data, text, len) == 0),
           "decode then encode gives '%.*s' for '%.*s'", (int)again.len,
           again.data ? again.data : "", (int)len, text);
  xmppuv__buf_free(&out);
  xmppuv__buf_free(&again);
}

static int in_list(const char *s, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, list[i]) == 0) return 1;
  return 0;
}

static void check_choose(uint8_t flags, char *text, size_t len) {
  const char *mechs[32], *cb[16], *ours[8], *allow[16];
  size_t nm = 0, ncb = 0, no = 0, na = 0;
  int advertised = 0;
  for (char *p = text; p < text + len; p += strlen(p) + 1) {
    if (strlen(p) < 2 || p[1] != ':') continue;
    const char *v = p + 2;
    switch (p[0]) {
      case 'M': if (nm < 32) mechs[nm++] = v; break;
      case 'C': advertised = 1; if (ncb < 16) cb[ncb++] = v; break;
      case 'c': advertised = 1; break; /* <sasl-channel-binding/> listing nothing */
      case 'O': if (no < 8) ours[no++] = v; break;
      case 'A': if (na < 16) allow[na++] = v; break;
      default: break;
    }
  }
  xmppuv__sasl_offer_t offer = {mechs, nm, advertised, cb, ncb};
  xmppuv__sasl_policy_t policy;
  memset(&policy, 0, sizeof policy);
  policy.tls_active = (flags >> 3) & 1;
  policy.allow_plain_insecure = (flags >> 4) & 1;
  policy.have_password = (flags >> 5) & 1;
  policy.allow_anonymous = (flags >> 6) & 1;
  policy.allow_external = (flags >> 7) & 1;
  policy.allowed = na > 0 ? allow : NULL;
  policy.n_allowed = na;
  xmppuv__sasl_choice_t ch;
  int rc = xmppuv__sasl_choose(&offer, ours, no, &policy, &ch);
  if (rc != 0) {
    FZ_CHECK(rc == XMPPUV_ENOMECH || rc == XMPPUV_EDOWNGRADE, "unexpected %s",
             xmppuv_err_name(rc));
    return;
  }
  const char *name = xmppuv__mech_name(ch.mech);
  FZ_CHECK(name != NULL, "no mechanism chosen");
  FZ_CHECK(in_list(name, mechs, nm), "%s chosen but not offered", name);
  FZ_CHECK(na == 0 || in_list(name, allow, na), "%s chosen but not allowed", name);
  FZ_CHECK(xmppuv__mech_from_name(name) == ch.mech, "name round trip");
  FZ_CHECK(memchr(ch.cb_type, '\0', sizeof ch.cb_type) != NULL &&
               memchr(ch.gs2_cb_flag, '\0', sizeof ch.gs2_cb_flag) != NULL,
           "unterminated choice strings");
  switch (ch.mech) {
    case XMPPUV__MECH_PLAIN:
      FZ_CHECK(policy.have_password && (policy.tls_active || policy.allow_plain_insecure),
               "PLAIN against the policy");
      break;
    case XMPPUV__MECH_EXTERNAL:
      FZ_CHECK(policy.allow_external && policy.tls_active, "EXTERNAL against the policy");
      break;
    case XMPPUV__MECH_ANONYMOUS:
      FZ_CHECK(policy.allow_anonymous, "ANONYMOUS against the policy");
      break;
    default:
      FZ_CHECK(xmppuv__mech_is_scram(ch.mech) && policy.have_password, "SCRAM without a password");
      break;
  }
  if (xmppuv__mech_is_plus(ch.mech)) {
    FZ_CHECK(policy.tls_active, "-PLUS without TLS");
    FZ_CHECK(in_list(ch.cb_type, ours, no), "binding type %s is not ours", ch.cb_type);
    FZ_CHECK(!advertised || in_list(ch.cb_type, cb, ncb), "binding type %s not accepted",
             ch.cb_type);
    FZ_CHECK(strncmp(ch.gs2_cb_flag, "p=", 2) == 0 &&
                 strcmp(ch.gs2_cb_flag + 2, ch.cb_type) == 0,
             "gs2 flag %s", ch.gs2_cb_flag);
  } else if (xmppuv__mech_is_scram(ch.mech)) {
    FZ_CHECK(ch.cb_type[0] == '\0', "binding type without -PLUS");
    FZ_CHECK(strcmp(ch.gs2_cb_flag, "n") == 0 || strcmp(ch.gs2_cb_flag, "y") == 0,
             "gs2 flag %s", ch.gs2_cb_flag);
    /* "y" claims we could bind but the server offered no -PLUS. */
    if (ch.gs2_cb_flag[0] == 'y')
      for (size_t i = 0; i < nm; i++) {
        size_t l = strlen(mechs[i]);
        FZ_CHECK(!(l > 5 && strcmp(mechs[i] + l - 5, "-PLUS") == 0 &&
                   xmppuv__mech_from_name(mechs[i]) != XMPPUV__MECH_NONE),
                 "'y' although %s was offered", mechs[i]);
      }
  } else {
    FZ_CHECK(ch.gs2_cb_flag[0] == '\0' && ch.cb_type[0] == '\0', "flags for a non-SCRAM");
  }
}

static void check_prep(const char *text, int is_password) {
  char *out = NULL, *again = NULL;
  size_t len = 0, len2 = 0;
  int rc = xmppuv__sasl_prep(text, is_password, &out, &len);
  if (rc != 0) {
    FZ_CHECK(rc == XMPPUV_EINVAL || rc == XMPPUV_EUTF8, "unexpected %s", xmppuv_err_name(rc));
    FZ_CHECK(out == NULL, "error with a result");
    return;
  }
  FZ_CHECK(out != NULL && strlen(out) == len && len > 0, "prep result");
  for (size_t i = 0; i < len; i++)
    FZ_CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f, "control character");
  rc = xmppuv__sasl_prep(out, is_password, &again, &len2);
  FZ_CHECK(rc == 0, "prepared text is refused: %s", xmppuv_err_name(rc));
  FZ_CHECK(len == len2 && memcmp(out, again, len) == 0, "preparation is not idempotent");
  xmppuv__free(out);
  xmppuv__free(again);
}

static void check_builders(char *text, size_t len) {
  const char *f[3] = {text, "", ""};
  const char *p = text;
  for (int i = 1; i < 3; i++) {
    p += strlen(p);
    if (p >= text + len) break;
    f[i] = ++p;
  }
  xmppuv__buf_t out = XMPPUV__BUF_INIT;
  int rc = xmppuv__sasl_plain(f[0][0] ? f[0] : NULL, f[1], f[2], &out);
  if (rc == 0) {
    /* [authzid] NUL authcid NUL password: exactly two NULs. */
    size_t nuls = 0;
    for (size_t i = 0; i < out.len; i++) nuls += out.data[i] == '\0';
    FZ_CHECK(nuls == 2, "PLAIN message with %zu NULs", nuls);
  } else {
    FZ_CHECK(rc == XMPPUV_EINVAL || rc == XMPPUV_EUTF8, "plain: %s", xmppuv_err_name(rc));
    FZ_CHECK(out.len == 0, "plain: output on error");
  }
  xmppuv__sasl_buf_wipe(&out);
  rc = xmppuv__sasl_anonymous(f[0], &out);
  FZ_CHECK(rc == 0 || rc == XMPPUV_EINVAL || rc == XMPPUV_EUTF8, "anonymous: %s",
           xmppuv_err_name(rc));
  xmppuv__buf_free(&out);
  rc = xmppuv__sasl_external(f[1], &out);
  FZ_CHECK(rc == 0 || rc == XMPPUV_EINVAL || rc == XMPPUV_EUTF8, "external: %s",
           xmppuv_err_name(rc));
  xmppuv__buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  uint8_t flags = data[0];
  size_t len = size - 1;
  /* A terminated copy: the string functions take C strings. */
  char *text = malloc(len + 1);
  FZ_CHECK(text != NULL, "oom");
  memcpy(text, data + 1, len);
  text[len] = '\0';
  switch (flags % 5u) {
    case 0: check_decode(text, len, 0); break;
    case 1: check_decode(text, len, 1); break;
    case 2: check_choose(flags, text, len); break;
    case 3: check_prep(text, (flags >> 3) & 1); break;
    default: check_builders(text, len); break;
  }
  free(text);
  return 0;
}
