"""Ed25519 signatures of evidence manifests (RFC 8032), so a package can be shown
untouched without the database: the manifest lists every file's SHA-256 and the
signature covers the manifest's exact bytes. The maths is the ``cryptography``
package's (OpenSSL); this module only keeps the key.

The key is a 32-byte seed in <instance folder>/evidence-signing.key (created on first
use, readable by the owner only); ``monitor evidence-key`` prints the public key."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from monitor import settings
from monitor.errors import MonitorError

KEY_FILE = "evidence-signing.key"


class SigningError(MonitorError):
    """The signing key cannot be read or created."""


def public_key(seed: bytes) -> bytes:
    """The 32-byte public key of a 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(seed: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def key_path() -> Path:
    return Path(settings.get("instance_dir")) / KEY_FILE


def signing_seed(path: Path | None = None) -> bytes:
    """The instance's signing seed, created (owner-only) on first use."""
    path = path or key_path()
    try:
        if path.is_file():
            seed = bytes.fromhex(path.read_text(encoding="ascii").strip())
            if len(seed) != 32:
                raise SigningError(f"{path}: not a 32-byte Ed25519 seed in hex")
            return seed
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = os.urandom(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(seed.hex() + "\n")
        return seed
    except (OSError, ValueError) as error:
        raise SigningError(f"{path}: cannot read or create the evidence signing key ({error})") from error
