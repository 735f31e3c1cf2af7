"""The loopback DMarket's check of a signed request, as the real API makes it: Ed25519 over
method + path?query + body + X-Sign-Date, under the account's public key."""

from __future__ import annotations

from collections.abc import Mapping

import nacl.exceptions
import nacl.signing

SIGNATURE_PREFIX = "dmar ed25519 "


class SignatureCheck:
    """Verifies requests against one public key (hex); None accepts no signature at all."""

    def __init__(self, public_key_hex: str | None) -> None:
        self.required = bool(public_key_hex)
        self._public_key_hex = public_key_hex
        self._verify_key = (
            nacl.signing.VerifyKey(bytes.fromhex(public_key_hex)) if public_key_hex else None
        )

    def verdict(
        self, method: str, raw_path: str, body: bytes, headers: Mapping[str, str]
    ) -> bool | None:
        """True if signed and verified, False if signed badly, None if not signed."""
        sign = headers.get("x-request-sign")
        if sign is None:
            return None
        if self._verify_key is None or headers.get("x-api-key") != self._public_key_hex:
            return False
        if not sign.startswith(SIGNATURE_PREFIX):
            return False
        message = f"{method}{raw_path}{body.decode()}{headers.get('x-sign-date', '')}".encode()
        try:
            self._verify_key.verify(message, bytes.fromhex(sign.removeprefix(SIGNATURE_PREFIX)))
        except (ValueError, nacl.exceptions.BadSignatureError):
            return False
        return True
