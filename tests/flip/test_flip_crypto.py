"""FLIP's AES-GCM envelope: the known-answer vector, authentication, strict parsing and the key setting."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.flip.crypto import (
    AUTHENTICATION_FAILED,
    SHARED_KID,
    decode_key,
    key_fingerprint,
    open_envelope,
    payload_decoder,
    seal,
    task_context,
)
from console.handlers import InvalidPayload
from console.records import summarize_payload

KAT_KEY = bytes(range(32))
KAT_NONCE = bytes(range(12))
KAT_ENVELOPE = (
    "eyJ2IjogMSwgImtpZCI6ICJzaGFyZWQiLCAiaXYiOiAiQUFFQ0F3UUZCZ2NJQ1FvTCIsICJjdCI6ICJMR3k1Ykt2SW8zWCtOdkw1MFo3MFNwSTgzd1NLbGlyaUxJa25PQT09In0="
)
KEYS = {SHARED_KID: KAT_KEY}


def wire(envelope: object) -> str:
    """Encode any JSON value the way an envelope travels."""
    return base64.b64encode(json.dumps(envelope).encode()).decode()


def sealed_fields() -> dict[str, object]:
    return json.loads(base64.b64decode(seal('{"a": 1}', KAT_KEY, task_context("echo"))))


def test_known_answer_vector_seals_exactly() -> None:
    assert seal("known-answer", KAT_KEY, "kat", nonce=KAT_NONCE) == KAT_ENVELOPE


def test_known_answer_vector_opens() -> None:
    assert open_envelope(KAT_ENVELOPE, KEYS, "kat") == "known-answer"


def test_round_trip_uses_fresh_nonces() -> None:
    first = seal('{"x": "é"}', KAT_KEY, task_context("echo"))
    second = seal('{"x": "é"}', KAT_KEY, task_context("echo"))

    assert first != second
    assert open_envelope(first, KEYS, task_context("echo")) == '{"x": "é"}'


def test_retargeted_envelope_fails_authentication() -> None:
    sealed = seal('{"imaging_project_id": "x"}', KAT_KEY, task_context("get_imaging_status"))

    with pytest.raises(InvalidPayload) as raised:
        open_envelope(sealed, KEYS, task_context("delete_imaging"))

    assert str(raised.value) == AUTHENTICATION_FAILED


def test_tampered_ciphertext_fails_authentication() -> None:
    fields = sealed_fields()
    ciphertext = bytearray(base64.b64decode(fields["ct"]))
    ciphertext[0] ^= 1
    fields["ct"] = base64.b64encode(bytes(ciphertext)).decode()

    with pytest.raises(InvalidPayload) as raised:
        open_envelope(wire(fields), KEYS, task_context("echo"))

    assert str(raised.value) == AUTHENTICATION_FAILED


def test_wrong_key_fails_authentication() -> None:
    sealed = seal("{}", KAT_KEY, task_context("echo"))

    with pytest.raises(InvalidPayload) as raised:
        open_envelope(sealed, {SHARED_KID: bytes(32)}, task_context("echo"))

    assert str(raised.value) == AUTHENTICATION_FAILED


def test_swapped_kid_fails_authentication() -> None:
    fields = sealed_fields()
    fields["kid"] = "other"

    with pytest.raises(InvalidPayload) as raised:
        open_envelope(wire(fields), {SHARED_KID: KAT_KEY, "other": KAT_KEY}, task_context("echo"))

    assert str(raised.value) == AUTHENTICATION_FAILED


def test_unknown_kid_named() -> None:
    sealed = seal("{}", KAT_KEY, task_context("echo"), kid="trust-7")

    with pytest.raises(InvalidPayload) as raised:
        open_envelope(sealed, KEYS, task_context("echo"))

    assert str(raised.value) == "Invalid payload: unknown kid 'trust-7', this trust has no key with that id"


def changed(**fields: object) -> str:
    envelope = sealed_fields()
    for name, value in fields.items():
        if value is None:
            envelope.pop(name)
        else:
            envelope[name] = value
    return wire(envelope)


MALFORMED = [
    ('{"v": 1}', "not valid base64"),
    (KAT_ENVELOPE[:-2], "not valid base64"),
    (KAT_ENVELOPE + "\n", "not valid base64"),
    ("éé==", "not valid base64"),
    (base64.b64encode(b"\xff\xfe not json").decode(), "not JSON inside the base64"),
    (wire([1, "shared"]), "a JSON list, expected an object"),
    (changed(v=True), "'v' must be the integer 1"),
    (changed(v=1.0), "'v' must be the integer 1"),
    (changed(v="1"), "'v' must be the integer 1"),
    (changed(v=2), "'v' must be the integer 1"),
    (changed(v=None), "'v' must be the integer 1"),
    (changed(kid=7), "'kid' must be a string"),
    (changed(kid=None), "'kid' must be a string"),
    (changed(iv=None), "'iv' must be a string"),
    (changed(ct=["x"]), "'ct' must be a string"),
    (changed(iv="not base64!"), "'iv' is not valid base64"),
    (changed(iv=base64.b64encode(bytes(16)).decode()), "the nonce is 16 bytes, expected 12"),
    (changed(ct="***"), "'ct' is not valid base64"),
    (changed(ct=base64.b64encode(bytes(15)).decode()), "'ct' is 15 bytes, shorter than the 16-byte tag"),
]


@pytest.mark.parametrize(("payload", "reason"), MALFORMED)
def test_malformed_envelope_reason(payload: str, reason: str) -> None:
    with pytest.raises(InvalidPayload) as raised:
        open_envelope(payload, KEYS, task_context("echo"))

    assert str(raised.value) == f"Invalid payload: not an encrypted envelope ({reason})"


def test_decoder_binds_task_type() -> None:
    decode = payload_decoder(KEYS)
    sealed = seal('{"seconds": 1}', KAT_KEY, task_context("sleep"))

    assert decode("sleep", sealed) == '{"seconds": 1}'
    with pytest.raises(InvalidPayload, match="failed authentication"):
        decode("echo", sealed)


def test_plain_json_rejected_when_key_held() -> None:
    with pytest.raises(InvalidPayload, match="not an encrypted envelope"):
        payload_decoder(KEYS)("echo", '{"message": "hi"}')


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        seal("x", bytes(16), "kat")
    with pytest.raises(ValueError, match="32 bytes"):
        payload_decoder({SHARED_KID: bytes(31)})
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key(base64.b64encode(bytes(24)).decode())
    with pytest.raises(ValueError, match="not valid base64"):
        decode_key("%%%")


def test_fingerprint_is_sha256_prefix() -> None:
    assert key_fingerprint(KAT_KEY) == "630dcd2966c4"
    assert len(key_fingerprint(os.urandom(32))) == 12


@pytest.mark.parametrize(
    ("value", "problem"),
    [("not*base64", "is not valid base64"), (base64.b64encode(bytes(16)).decode(), "decodes to 16 bytes")],
)
def test_bad_key_setting_exits_2(tmp_path: Path, value: str, problem: str) -> None:
    env = {
        **os.environ,
        "CENTRAL_HUB_API_URL": "http://127.0.0.1:9/api",
        "TRUST_API_KEY": "k",
        "STATE_DIR": str(tmp_path / "state"),
        "AES_KEY_BASE64": value,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "console", "--headless"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 2
    assert len(lines) == 1
    assert "AES_KEY_BASE64" in lines[0]
    assert problem in lines[0]
    assert value not in completed.stderr


def test_sealed_payload_summary_names_envelope() -> None:
    wire = seal('{"query": "SELECT 1"}', KAT_KEY, task_context("cohort_query"))

    summary = summarize_payload(wire)

    assert summary.startswith("encrypted envelope, ")
    assert "SELECT" not in summary
    assert summarize_payload(base64.b64encode(b"\xff\xfe not json").decode()).startswith("not JSON")
