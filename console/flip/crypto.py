"""FLIP's AES-256-GCM payload envelope: seal, open, and the agent's payload decoder.

Wire form: base64 of the JSON text `{"v": 1, "kid": ..., "iv": ..., "ct": ...}`,
where `iv` is the base64 of a 12-byte nonce and `ct` the base64 of the
ciphertext followed by the 16-byte tag. The associated data bound into the tag
is `FLIP|v1|{kid}|{context}`, and a task payload's context is
`task:{task_type}`, so a payload sealed for one task type fails authentication
under another. There is no fallback to unencrypted or CBC payloads.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..handlers import InvalidPayload, PayloadDecoder

SHARED_KID = "shared"
"""Key id under which FLIP registers the shared AES_KEY_BASE64."""

ENVELOPE_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
MAX_KID_SHOWN = 64
"""Characters of an unknown kid quoted in an error, because the kid is text from the hub."""

AUTHENTICATION_FAILED = "Invalid payload: failed authentication"


def task_context(task_type: str) -> str:
    """Return the context a task payload is sealed under."""
    return f"task:{task_type}"


def associated_data(kid: str, context: str) -> bytes:
    """Return the bytes bound into the GCM tag: the envelope version, the kid and the context."""
    return f"FLIP|v{ENVELOPE_VERSION}|{kid}|{context}".encode()


def key_fingerprint(key: bytes) -> str:
    """Return the first 12 hex characters of the key's SHA-256, as the hub's heartbeat reply shows it."""
    return hashlib.sha256(key).hexdigest()[:12]


def decode_key(key_base64: str) -> bytes:
    """Decode a base64 AES-256 key, raising ValueError unless it is valid base64 of 32 bytes."""
    try:
        key = base64.b64decode(key_base64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("AES key is not valid base64") from None
    _check_key(key)
    return key


def seal(plaintext: str, key: bytes, context: str, *, kid: str = SHARED_KID, nonce: bytes | None = None) -> str:
    """Encrypt `plaintext` into an envelope bound to `kid` and `context`.

    A fresh random nonce is drawn unless `nonce` is given. Pass one only in
    known-answer tests, because reusing a nonce with the same key breaks GCM.
    """
    _check_key(key)
    if nonce is None:
        nonce = os.urandom(NONCE_BYTES)
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes, got {len(nonce)}")

    ciphertext = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), associated_data(kid, context))
    envelope = {
        "v": ENVELOPE_VERSION,
        "kid": kid,
        "iv": base64.b64encode(nonce).decode("ascii"),
        "ct": base64.b64encode(ciphertext).decode("ascii"),
    }
    return base64.b64encode(json.dumps(envelope).encode("utf-8")).decode("ascii")


def open_envelope(wire: str, keys: Mapping[str, bytes], context: str) -> str:
    """Decrypt an envelope with the key its kid names; return the plaintext.

    Raises InvalidPayload with "failed authentication" for a tampered envelope,
    a wrong key or another context. An unknown kid gets a message naming it,
    and any other shape "not an encrypted envelope (reason)".
    """
    kid, nonce, ciphertext = _parse(wire)
    key = keys.get(kid)
    if key is None:
        raise InvalidPayload(f"Invalid payload: unknown kid {kid[:MAX_KID_SHOWN]!r}, this trust has no key with that id")
    _check_key(key)

    try:
        plaintext = AESGCM(key).decrypt(nonce, ciphertext, associated_data(kid, context))
    except InvalidTag:
        raise InvalidPayload(AUTHENTICATION_FAILED) from None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("Invalid payload: the decrypted payload is not UTF-8 text") from None


def payload_decoder(keys: Mapping[str, bytes]) -> PayloadDecoder:
    """Build the agent's decoder: each payload is opened under its own task type's context."""
    for key in keys.values():
        _check_key(key)
    keys_by_kid = dict(keys)

    def decode(task_type: str, payload: str) -> str:
        return open_envelope(payload, keys_by_kid, task_context(task_type))

    return decode


def _parse(wire: str) -> tuple[str, bytes, bytes]:
    """Return (kid, nonce, ciphertext with tag) from the wire form, or raise InvalidPayload."""
    raw = _strict_base64(wire)
    if raw is None:
        raise _not_envelope("not valid base64")
    try:
        envelope: Any = json.loads(raw)
    except ValueError:
        raise _not_envelope("not JSON inside the base64") from None
    if not isinstance(envelope, dict):
        raise _not_envelope(f"a JSON {type(envelope).__name__}, expected an object")

    version = envelope.get("v")
    if isinstance(version, bool) or not isinstance(version, int) or version != ENVELOPE_VERSION:
        raise _not_envelope(f"'v' must be the integer {ENVELOPE_VERSION}")
    for field in ("kid", "iv", "ct"):
        if not isinstance(envelope.get(field), str):
            raise _not_envelope(f"'{field}' must be a string")

    nonce = _strict_base64(envelope["iv"])
    if nonce is None:
        raise _not_envelope("'iv' is not valid base64")
    if len(nonce) != NONCE_BYTES:
        raise _not_envelope(f"the nonce is {len(nonce)} bytes, expected {NONCE_BYTES}")
    ciphertext = _strict_base64(envelope["ct"])
    if ciphertext is None:
        raise _not_envelope("'ct' is not valid base64")
    if len(ciphertext) < TAG_BYTES:
        raise _not_envelope(f"'ct' is {len(ciphertext)} bytes, shorter than the {TAG_BYTES}-byte tag")
    return envelope["kid"], nonce, ciphertext


def _strict_base64(text: str) -> bytes | None:
    """Decode standard padded base64, or return None for any other character or bad padding."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _not_envelope(reason: str) -> InvalidPayload:
    return InvalidPayload(f"Invalid payload: not an encrypted envelope ({reason})")


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"AES-256 key must be {KEY_BYTES} bytes, got {len(key)}")
