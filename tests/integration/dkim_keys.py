"""DKIM keys for tests: an RSA 2048 key (PEM, as dkimpy signs with it) and an Ed25519 seed
(base64, as dkimpy takes it), each with the DNS key record (RFC 6376 §3.6.1, RFC 8463)."""

import base64
import os
import subprocess

import nacl.signing


def make_keys(directory):
    """{"rsa": (pem, record), "ed25519": (seed, record)}, records as bytes."""
    pem = directory / "rsa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(pem)], check=True, capture_output=True)
    der = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    seed = os.urandom(32)
    ed_pub = nacl.signing.SigningKey(seed).verify_key.encode()
    return {
        "rsa": (pem.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)),
        "ed25519": (base64.b64encode(seed), b"v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_pub)),
    }
