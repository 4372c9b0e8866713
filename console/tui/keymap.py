"""Read the operator's key remapping from TRUST_CONSOLE_KEYMAP."""

from __future__ import annotations

import os

KEYMAP_VARIABLE = "TRUST_CONSOLE_KEYMAP"


def parse_keymap(value: str, known_ids: set[str]) -> tuple[dict[str, str], list[str]]:
    """Parse `id=keys` pairs separated by commas or semicolons; return the keymap and one error per bad pair.

    Several keys for one binding are separated by spaces, such as `quit=q Q`,
    because commas already separate the pairs.
    """
    keymap: dict[str, str] = {}
    errors: list[str] = []
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        binding_id, separator, keys = item.partition("=")
        binding_id, keys = binding_id.strip(), keys.strip()
        if not separator or not keys:
            errors.append(f"{item!r} is not of the form binding-id=key")
        elif binding_id not in known_ids:
            errors.append(f"{binding_id!r} is not a binding id; the help screen lists them")
        else:
            keymap[binding_id] = ",".join(keys.split())
    return keymap, errors


def keymap_from_environment(known_ids: set[str]) -> tuple[dict[str, str], list[str]]:
    return parse_keymap(os.environ.get(KEYMAP_VARIABLE, ""), known_ids)
