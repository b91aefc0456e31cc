/* On the include path of the core library only (lib/meson.build): the core
 * (util, xml, jid, sasl, session, sm, engine) does no I/O and reads no
 * clock, so it must not include ares.h. Only lib/transport/ and lib/client.c
 * may. */
#error "ares.h included from the I/O-free core (see lib/meson.build)"
