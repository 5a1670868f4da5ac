"""The manifest signature is RFC 8032 Ed25519: the standard's own test vectors hold."""

from __future__ import annotations

from monitor.documents import signing

# RFC 8032 section 7.1, tests 1 and 2.
VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]


def test_rfc_8032_vectors():
    for seed, public, message, signature in VECTORS:
        seed, message = bytes.fromhex(seed), bytes.fromhex(message)
        assert signing.public_key(seed).hex() == public
        assert signing.sign(seed, message).hex() == signature
        assert signing.verify(bytes.fromhex(public), message, bytes.fromhex(signature))


def test_a_changed_message_or_signature_does_not_verify():
    seed, public, message, signature = (bytes.fromhex(v) for v in VECTORS[1])
    assert not signing.verify(public, message + b"\x00", signature)
    assert not signing.verify(public, message, signature[:-1] + bytes([signature[-1] ^ 1]))
    assert not signing.verify(public[:31], message, signature)


def test_the_key_is_created_once_and_kept_private(tmp_path):
    path = tmp_path / "instance" / signing.KEY_FILE
    seed = signing.signing_seed(path)
    assert signing.signing_seed(path) == seed and len(seed) == 32
    assert path.stat().st_mode & 0o077 == 0
