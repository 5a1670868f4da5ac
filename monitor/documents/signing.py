"""Ed25519 signatures of evidence manifests (RFC 8032), so a package can be shown
untouched without the database: the manifest lists every file's SHA-256 and the
signature covers the manifest's exact bytes.

Pure Python on hashlib (the standard library has no Ed25519 and the monitor keeps its
dependencies few): slow by cryptographic standards (milliseconds a signature), which
is plenty for one manifest per package. Verified against the RFC 8032 test vectors.

The key is a 32-byte seed in <instance folder>/evidence-signing.key (created on first
use, readable by the owner only); ``monitor evidence-key`` prints the public key."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from monitor import settings
from monitor.errors import MonitorError

KEY_FILE = "evidence-signing.key"

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_I = pow(2, (_P - 1) // 4, _P)


class SigningError(MonitorError):
    """The signing key cannot be read or created."""


def _inverse(x: int) -> int:
    return pow(x, _P - 2, _P)


def _add(a, b):
    # Extended twisted Edwards coordinates (X, Y, Z, T).
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    A = (y1 - x1) * (y2 - x2) % _P
    B = (y1 + x1) * (y2 + x2) % _P
    C = 2 * t1 * t2 * _D % _P
    Dd = 2 * z1 * z2 % _P
    E, F, G, H = B - A, Dd - C, Dd + C, B + A
    return (E * F % _P, G * H % _P, F * G % _P, E * H % _P)


def _multiply(scalar: int, point):
    result = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _recover_x(y: int, sign: int) -> int | None:
    if y >= _P:
        return None
    x2 = (y * y - 1) * _inverse(_D * y * y + 1)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _I % _P
    if (x * x - x2) % _P:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


_GY = 4 * _inverse(5) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def _encode(point) -> bytes:
    x, y, z, _ = point
    zi = _inverse(z)
    x, y = x * zi % _P, y * zi % _P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _decode(data: bytes):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def _equal(a, b) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _sha512_int(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


def _expand(seed: bytes) -> tuple[int, bytes]:
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, digest[32:]


def public_key(seed: bytes) -> bytes:
    a, _ = _expand(seed)
    return _encode(_multiply(a, _G))


def sign(seed: bytes, message: bytes) -> bytes:
    a, prefix = _expand(seed)
    public = _encode(_multiply(a, _G))
    r = _sha512_int(prefix, message) % _L
    R = _encode(_multiply(r, _G))
    h = _sha512_int(R, public, message) % _L
    return R + int.to_bytes((r + h * a) % _L, 32, "little")


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    A, R = _decode(public), _decode(signature[:32])
    if A is None or R is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    h = _sha512_int(signature[:32], public, message) % _L
    return _equal(_multiply(s, _G), _add(R, _multiply(h, A)))


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
