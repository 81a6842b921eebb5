"""Hugging Face hub datasets, tried only once a connection to the hub has been seen to open, so an
offline machine gets its answer in seconds instead of after the client's retries."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

_TRUE = {"1", "ON", "YES", "TRUE"}


class HubUnreachableError(ConnectionError):
    """No connection to the hub (or to the HTTPS proxy) opened within the probe's timeout."""


def _offline() -> bool:
    flags = (os.environ.get(k, "").upper() for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(flag in _TRUE for flag in flags)


def _probe_address() -> tuple[str, int, str]:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    proxy = next(
        (os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY") if os.environ.get(k)),
        None,
    )
    url = urlsplit(proxy or endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.hostname or "", port, endpoint


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub endpoint (``HF_ENDPOINT``, or the HTTPS proxy when one
    is set) opens within ``timeout`` seconds, name resolution included."""
    host, port, _ = _probe_address()
    opened: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            opened.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)  # bounds a hanging DNS lookup too
    thread.start()
    thread.join(timeout)
    return bool(opened)


def load_hub_dataset(name: str) -> Any:
    """``datasets.load_dataset(name)``, after checking that the hub answers.

    With ``HF_HUB_OFFLINE=1`` the check is skipped and ``datasets`` reads its local cache only.

    Raises:
        HubUnreachableError: the hub cannot be reached; the message says what to do.
    """
    if not _offline() and not hub_reachable():
        _, _, endpoint = _probe_address()
        raise HubUnreachableError(
            f"the hub at {endpoint} cannot be reached (offline?); with HF_HUB_OFFLINE=1 a copy "
            "in the local Hugging Face cache is used"
        )
    import datasets

    return datasets.load_dataset(name)
