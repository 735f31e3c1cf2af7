"""DMarket's request signature, as its official trading tools make it.

Ed25519 over method + path with query + body + timestamp (Unix seconds); sent as
`X-Api-Key` (public key, hex), `X-Sign-Date` (the timestamp) and
`X-Request-Sign: dmar ed25519 <signature hex>`. The secret key DMarket hands out is the
hex of NaCl's 64-byte signing key: the 32-byte seed followed by the public key.
"""

from __future__ import annotations

import time
from typing import Final

import nacl.signing

from worker.errors import ConfigError

PUBLIC_KEY_VARIABLE: Final = "MARKETSCAN_DMARKET_PUBLIC_KEY"
SECRET_KEY_VARIABLE: Final = "MARKETSCAN_DMARKET_SECRET_KEY"
SIGNATURE_PREFIX: Final = "dmar ed25519 "
_PUBLIC_KEY_BYTES: Final = 32
_SECRET_KEY_BYTES: Final = 64


class RequestSigner:
    """Signs requests with one DMarket key pair; holds the secret and never shows it."""

    def __init__(self, public_key_hex: str, secret_key_hex: str) -> None:
        """Check the pair; ConfigError naming the variable at fault, never quoting a key."""
        public = _key_bytes(public_key_hex, _PUBLIC_KEY_BYTES, PUBLIC_KEY_VARIABLE)
        secret = _key_bytes(secret_key_hex, _SECRET_KEY_BYTES, SECRET_KEY_VARIABLE)
        signing_key = nacl.signing.SigningKey(secret[:_PUBLIC_KEY_BYTES])
        derived_public = bytes(signing_key.verify_key)
        if derived_public != secret[_PUBLIC_KEY_BYTES:]:
            raise ConfigError(
                f"{SECRET_KEY_VARIABLE}: not a DMarket secret key (its second half must be "
                "the public key its first half derives)"
            )
        if derived_public != public:
            raise ConfigError(
                f"{SECRET_KEY_VARIABLE}: does not belong to {PUBLIC_KEY_VARIABLE} "
                "(they are from different key pairs)"
            )
        self.public_key_hex = public.hex()
        self._signing_key = signing_key

    def headers(
        self, method: str, path_with_query: str, body: str = "", now: float | None = None
    ) -> dict[str, str]:
        """The three headers that authenticate this request at this moment."""
        timestamp = str(int(time.time() if now is None else now))
        message = f"{method.upper()}{path_with_query}{body}{timestamp}".encode()
        signature = self._signing_key.sign(message).signature.hex()
        return {
            "X-Api-Key": self.public_key_hex,
            "X-Sign-Date": timestamp,
            "X-Request-Sign": SIGNATURE_PREFIX + signature,
        }

    def __repr__(self) -> str:
        return f"RequestSigner(public_key={self.public_key_hex[:8]}...)"


def signer_from(public_key_hex: str | None, secret_key_hex: str | None) -> RequestSigner | None:
    """The signer both variables describe, None when neither is set (unsigned requests)."""
    if not public_key_hex and not secret_key_hex:
        return None
    if not public_key_hex:
        raise ConfigError(f"{PUBLIC_KEY_VARIABLE}: must be set when {SECRET_KEY_VARIABLE} is")
    if not secret_key_hex:
        raise ConfigError(f"{SECRET_KEY_VARIABLE}: must be set when {PUBLIC_KEY_VARIABLE} is")
    return RequestSigner(public_key_hex, secret_key_hex)


def _key_bytes(text: str, length: int, variable: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        raise ConfigError(f"{variable}: must be hexadecimal ({length * 2} hex digits)") from None
    if len(key) != length:
        raise ConfigError(f"{variable}: must be {length * 2} hex digits, got {len(key) * 2}")
    return key
