"""Build the agent from settings: its handlers, payload decoder and health source.

The console, the headless runner and the demo all start the agent through
`build_agent`, so each host gets the same handlers and the same checks.
"""

from __future__ import annotations

import logging

from .agent import Agent
from .events import EventBus
from .flip.cohort_results import CohortResultsPoster
from .flip.crypto import SHARED_KID, decode_key, key_fingerprint, payload_decoder
from .flip.handlers import FLIP_TASK_TYPES, FlipHandlers
from .flip.health import HealthCollector
from .flip.local_services import LocalServices, Service, build_local_http_client
from .handlers import default_registry
from .hub_client import build_http_client
from .settings import Settings

log = logging.getLogger(__name__)


def build_agent(settings: Settings, bus: EventBus | None = None) -> Agent:
    """Create an agent with the diagnostic and FLIP handlers, payload decryption and health snapshots.

    Payloads are decrypted when AES_KEY_BASE64 is set. The health snapshot is
    collected only when TRUST_INTERNAL_SERVICE_KEY is set, because every FLIP
    trust with local services needs that key. Without it, nothing probes the
    default service hosts.
    """
    registry = default_registry()
    local_http = build_local_http_client()
    hub_http = build_http_client(settings)

    services = LocalServices(settings, local_http)
    FlipHandlers(settings, services, CohortResultsPoster(settings, hub_http)).register(registry)

    decoder = None
    fingerprint = None
    if settings.aes_key_base64 is not None:
        key = decode_key(settings.aes_key_base64.get_secret_value())
        decoder = payload_decoder({SHARED_KID: key})
        fingerprint = key_fingerprint(key)

    health = None
    if settings.trust_internal_service_key is not None:
        health = HealthCollector(
            local_http,
            {name.value: services.base_url(name) for name in Service},
            interval_seconds=settings.health_collect_interval_seconds,
        )
    elif settings.enabled_task_types is None or set(settings.enabled_task_types) & set(FLIP_TASK_TYPES):
        log.warning(
            "TRUST_INTERNAL_SERVICE_KEY is not set: FLIP task types fail and heartbeats carry no health snapshot;"
            " set it, or set ENABLED_TASK_TYPES to the types this trust runs"
        )

    return Agent(
        settings,
        registry=registry,
        bus=bus,
        on_close=[local_http.aclose, hub_http.aclose],
        payload_decoder=decoder,
        health=health,
        local_key_fingerprint=fingerprint,
    )
