#!/bin/sh
# Make the certificates the TLS tests use, with Debian's openssl (3.x).
#
#   make-certs.sh OUTDIR
#
# OUTDIR receives (keys are EC P-256, quick to make):
#   ca.pem ca.key            a test CA ("xmppuv test CA")
#   cadir/ca.pem             the same CA alone in a directory (CA path tests)
#   localhost.pem/.key       localhost, issued by the CA, valid 2020..2099
#   other.pem/.key           other.example, issued by the CA
#   domain.pem/.key          example.test (an XMPP domain), issued by the CA
#   srvtarget.pem/.key       xmpp.other.test (its SRV target), issued by the CA
#   expired.pem/.key         localhost, issued by the CA, valid 2010..2011
#   future.pem/.key          localhost, issued by the CA, valid 2090..2099
#   clientonly.pem/.key      localhost, issued by the CA, for TLS clients only
#   self.pem/.key            localhost, self-signed
#   <name>.spki              curl-style pin: sha256//<base64 SHA-256 of SPKI>
#   <name>.fp                SHA-256 fingerprint of the certificate (AB:CD:..)
#   garbage.pem              not a certificate (bad CA file tests)
# Every file is made fresh; openssl's chatter goes to OUTDIR/make-certs.log.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
out=$1
mkdir -p "$out"
cd "$out"
log=make-certs.log
: >"$log"

run() {
  if ! "$@" >>"$log" 2>&1; then
    echo "make-certs.sh: failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

# Our own configuration, so the system openssl.cnf cannot change the result.
cat >openssl.cnf <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused

[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = index.txt
new_certs_dir = newcerts
serial = serial
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[ policy_any ]
commonName = supplied

[ ca_ext ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ server_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:${ENV::SAN}
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash

[ client_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:${ENV::SAN}
EOF

newkey() {
  run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# The pins, computed by openssl (not by the code under test).
pins() {
  openssl pkey -in "$1.key" -pubout -outform DER 2>>"$log" |
    openssl dgst -sha256 -binary 2>>"$log" |
    openssl base64 -A >"$1.spki.tmp"
  printf 'sha256//%s\n' "$(cat "$1.spki.tmp")" >"$1.spki"
  rm -f "$1.spki.tmp"
  openssl x509 -in "$1.pem" -noout -fingerprint -sha256 2>>"$log" |
    sed 's/^.*=//' >"$1.fp"
  # sha256// + 44 base64 characters; 32 hex pairs joined by ':'.
  if [ "$(wc -c <"$1.spki")" -ne 53 ] || [ "$(wc -c <"$1.fp")" -ne 96 ]; then
    echo "make-certs.sh: could not compute the pins of $1" >&2
    cat "$log" >&2
    exit 1
  fi
}

rm -rf newcerts cadir index.txt* serial*
mkdir newcerts cadir
: >index.txt
echo 1000 >serial

newkey ca.key
SAN=unused run openssl req -config openssl.cnf -new -x509 -key ca.key \
  -subj "/CN=xmppuv test CA" -days 3650 -sha256 -extensions ca_ext -out ca.pem
cp ca.pem cadir/ca.pem

# leaf NAME HOST START END [EXTENSIONS]: a certificate issued by the test CA.
leaf() {
  newkey "$1.key"
  SAN=$2 run openssl req -config openssl.cnf -new -key "$1.key" \
    -subj "/CN=$2" -out "$1.csr"
  SAN=$2 run openssl ca -config openssl.cnf -batch -notext \
    -extensions "${5:-server_ext}" -startdate "$3" -enddate "$4" \
    -in "$1.csr" -out "$1.pem"
  rm -f "$1.csr"
  pins "$1"
}

leaf localhost localhost 20200101000000Z 20991231235959Z
leaf other other.example 20200101000000Z 20991231235959Z
leaf domain example.test 20200101000000Z 20991231235959Z
leaf srvtarget xmpp.other.test 20200101000000Z 20991231235959Z
leaf expired localhost 20100101000000Z 20110101000000Z
leaf future localhost 20900101000000Z 20991231235959Z
leaf clientonly localhost 20200101000000Z 20991231235959Z client_ext

newkey self.key
SAN=localhost run openssl req -config openssl.cnf -new -x509 -key self.key \
  -subj "/CN=localhost" -days 3650 -sha256 -extensions server_ext \
  -out self.pem
pins self

echo "this is not a certificate" >garbage.pem
