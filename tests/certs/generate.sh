#!/usr/bin/env bash
# Makes every test identity in this folder with the openssl CLI. The outputs
# are committed; run again only to change them (README.md lists each file).
# Validity is fixed in absolute dates (2020..2099 for good certificates) so
# tests that pass their own clock stay deterministic.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ocsp_response: a "good" OCSP response for server-rsa signed by int1 (made
# by `openssl ocsp` acting as the responder), for the stapling tests.
# `generate.sh ocsp` makes only this, from the committed certificates.
ocsp_response() {
  local serial
  serial=$(openssl x509 -in server-rsa.pem -noout -serial | cut -d= -f2)
  printf 'V\t20991231000000Z\t\t%s\tunknown\t/CN=localhost/O=tlsengine tests\n' "$serial" > "$work/ocsp-index.txt"
  openssl ocsp -issuer int1.pem -cert server-rsa.pem -no_nonce -reqout "$work/ocsp-req.der"
  openssl ocsp -index "$work/ocsp-index.txt" -rsigner int1.pem -rkey int1-key.pem -CA int1.pem \
    -reqin "$work/ocsp-req.der" -respout server-rsa-ocsp.der -ndays 36500 >/dev/null
}
if [ "${1:-}" = ocsp ]; then
  ocsp_response
  exit 0
fi

GOOD_FROM=20200101000000Z
GOOD_TO=20991231000000Z

# ca_init NAME: a CA database for `openssl ca`.
ca_init() {
  local d="$work/$1"
  mkdir -p "$d"
  : > "$d/index.txt"
  echo 1000 > "$d/serial"
  echo 1000 > "$d/crlnumber"
  cat > "$d/ca.cnf" <<CNF
[ ca ]
default_ca = the_ca
[ the_ca ]
dir = $d
database = $d/index.txt
serial = $d/serial
crlnumber = $d/crlnumber
new_certs_dir = $d
certificate = $PWD/$1.pem
private_key = $PWD/$1-key.pem
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
default_crl_days = 36500
[ anything ]
commonName = supplied
organizationName = optional
organizationalUnitName = optional
countryName = optional
CNF
}

# key NAME rsa|ec
key() {
  if [ "$2" = rsa ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1-key.pem" 2>/dev/null
  else
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1-key.pem"
  fi
}

# issue NAME CA SUBJECT FROM TO EXTENSIONS: a certificate for NAME-key.pem.
issue() {
  local name=$1 ca=$2 subject=$3 from=$4 to=$5 ext=$6
  printf '%b\n' "$ext" > "$work/$name.ext"
  openssl req -new -key "$name-key.pem" -subj "$subject" -out "$work/$name.csr"
  openssl ca -batch -notext -config "$work/$ca/ca.cnf" -in "$work/$name.csr" -out "$name.pem" \
    -startdate "$from" -enddate "$to" -extfile "$work/$name.ext" 2>/dev/null
}

root() {  # root NAME rsa|ec SUBJECT
  key "$1" "$2"
  openssl req -new -x509 -key "$1-key.pem" -subj "$3" -out "$1.pem" -days 36500 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  ca_init "$1"
}

CA_EXT='basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid'
SERVER_EXT='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid'
CLIENT_EXT='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid'
LOCAL_SAN='subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'

leaf() {  # leaf NAME rsa|ec ISSUER SUBJECT FROM TO EXT
  key "$1" "$2"
  issue "$1" "$3" "$4" "$5" "$6" "$7"
  cat "$1.pem" int1.pem > "$1-chain.pem"
}

# der_hex ASN1_GENCONF: the DER of an `openssl asn1parse -genconf` text, as
# the colon-free hex an arbitrary extension (`NAME=DER:hex`) takes. For
# names no config syntax can write (an embedded NUL).
der_hex() {
  printf '%b\n' "$1" > "$work/der.cnf"
  openssl asn1parse -genconf "$work/der.cnf" -out "$work/der.bin" -noout
  xxd -p "$work/der.bin" | tr -d '\n'
}

# identity_leaves: hostile and unusual names for the identity check, and a
# leaf with authorityInfoAccess. Serials from 0x2000, apart from the rest.
# `generate.sh identity` makes only these, from the committed int1.
identity_leaves() {
  echo 2000 > "$work/int1/serial"
  # CVE-2021-44532: one URI whose value reads like a second DNS name.
  leaf san-uri-smuggle ec int1 "/O=tlsengine tests/CN=attacker.example" $GOOD_FROM $GOOD_TO \
    "$SERVER_EXT\nsubjectAltName=@alt\n[alt]\nDNS.1=attacker.example\nURI.1=spiffe://x/y, DNS:victim.example"
  # The same trick inside one DNS name.
  leaf san-dns-comma ec int1 "/O=tlsengine tests/CN=attacker.example" $GOOD_FROM $GOOD_TO \
    "$SERVER_EXT\nsubjectAltName=@alt\n[alt]\nDNS.1=attacker.example, DNS:victim.example"
  # A DNS name with an embedded NUL ("victim.example\0.attacker.example",
  # an OCTET STRING tagged as dNSName: IA5String takes no hex),
  # next to a URI and an email that name victim.example, CN=victim.example.
  local nul
  nul=$(der_hex "asn1=SEQUENCE:san\n[san]\ndns=IMPLICIT:2,FORMAT:HEX,OCTETSTRING:$(printf 'victim.example' | xxd -p)00$(printf '.attacker.example' | xxd -p)\nuri=IMPLICIT:6,IA5STRING:https://victim.example/\nemail=IMPLICIT:1,IA5STRING:admin@victim.example")
  leaf san-nul ec int1 "/O=tlsengine tests/CN=victim.example" $GOOD_FROM $GOOD_TO \
    "$SERVER_EXT\nsubjectAltName=DER:$nul"
  # Only URI, email and IP names, CN=victim.example: no DNS name, so the CN
  # counts (RFC 6125 §6.4.4); the URI never does.
  leaf san-no-dns ec int1 "/O=tlsengine tests/CN=victim.example" $GOOD_FROM $GOOD_TO \
    "$SERVER_EXT\nsubjectAltName=URI:https://other.example/,email:a@other.example,IP:10.0.0.1"
  # authorityInfoAccess: two OCSP responders and a CA Issuers URL.
  leaf aia ec int1 "/O=tlsengine tests/CN=localhost" $GOOD_FROM $GOOD_TO \
    "$SERVER_EXT\n$LOCAL_SAN\nauthorityInfoAccess=OCSP;URI:http://ocsp.example.com/,OCSP;URI:http://ocsp2.example.com/,caIssuers;URI:http://ca.example.com/int1.der"
}
if [ "${1:-}" = identity ]; then
  ca_init int1
  identity_leaves
  rm -f ./*.old
  exit 0
fi

# Two roots; the first has an intermediate that issues the leaves.
root ca1 rsa "/O=tlsengine tests/CN=Test Root CA 1"
root ca2 ec "/O=tlsengine tests/CN=Test Root CA 2"
key int1 rsa
issue int1 ca1 "/O=tlsengine tests/CN=Test Intermediate CA 1" $GOOD_FROM $GOOD_TO "$CA_EXT"
ca_init int1

leaf server-rsa rsa int1 "/O=tlsengine tests/CN=localhost" $GOOD_FROM $GOOD_TO "$SERVER_EXT\n$LOCAL_SAN"
leaf server-ecdsa ec int1 "/O=tlsengine tests/CN=localhost" $GOOD_FROM $GOOD_TO "$SERVER_EXT\n$LOCAL_SAN"
leaf other-name ec int1 "/O=tlsengine tests/CN=other.example.com" $GOOD_FROM $GOOD_TO \
  "$SERVER_EXT\nsubjectAltName=DNS:other.example.com"
leaf wildcard ec int1 "/O=tlsengine tests/CN=*.example.com" $GOOD_FROM $GOOD_TO \
  "$SERVER_EXT\nsubjectAltName=DNS:*.example.com"
leaf cn-only ec int1 "/O=tlsengine tests/CN=localhost" $GOOD_FROM $GOOD_TO "$SERVER_EXT"
leaf expired ec int1 "/O=tlsengine tests/CN=localhost" 20000101000000Z 20010101000000Z "$SERVER_EXT\n$LOCAL_SAN"
leaf not-yet-valid ec int1 "/O=tlsengine tests/CN=localhost" 20900101000000Z $GOOD_TO "$SERVER_EXT\n$LOCAL_SAN"
leaf revoked ec int1 "/O=tlsengine tests/CN=localhost" $GOOD_FROM $GOOD_TO "$SERVER_EXT\n$LOCAL_SAN"
leaf client ec int1 "/O=tlsengine tests/CN=test client" $GOOD_FROM $GOOD_TO "$CLIENT_EXT"
key client2 ec
issue client2 ca2 "/O=tlsengine tests/CN=test client 2" $GOOD_FROM $GOOD_TO "$CLIENT_EXT"
key server2 ec
issue server2 ca2 "/O=tlsengine tests/CN=localhost" $GOOD_FROM $GOOD_TO "$SERVER_EXT\n$LOCAL_SAN"

identity_leaves

# Revocation: int1 revokes `revoked`; both CAs publish a CRL (CRL_CHECK_ALL
# wants one for every level).
openssl ca -batch -config "$work/int1/ca.cnf" -revoke revoked.pem 2>/dev/null
openssl ca -batch -config "$work/int1/ca.cnf" -gencrl -out int1-crl.pem 2>/dev/null
openssl ca -batch -config "$work/ca1/ca.cnf" -gencrl -out ca1-crl.pem 2>/dev/null
cat ca1-crl.pem int1-crl.pem > crl-chain.pem

# Self-signed leaf.
key self-signed ec
openssl req -new -x509 -key self-signed-key.pem -subj "/O=tlsengine tests/CN=localhost" \
  -out self-signed.pem -days 36500 -addext "$(echo -e "$LOCAL_SAN")"

# Encrypted key (passphrase "secret") for server-rsa.
openssl pkey -in server-rsa-key.pem -aes256 -passout pass:secret -out server-rsa-key-encrypted.pem

# PFX with passphrase "secret", and one with an empty passphrase.
openssl pkcs12 -export -in server-rsa.pem -inkey server-rsa-key.pem -certfile int1.pem \
  -passout pass:secret -out server-rsa.pfx
openssl pkcs12 -export -in server-rsa.pem -inkey server-rsa-key.pem -certfile int1.pem \
  -passout pass: -out server-rsa-nopass.pfx

# DH parameters: 2048 bits (good) and 1024 bits (accepted with a warning).
openssl dhparam -out dhparam-2048.pem 2048 2>/dev/null
openssl dhparam -out dhparam-1024.pem 1024 2>/dev/null

ocsp_response

rm -f ./*.old
echo "test certificates written to $PWD"
