"""Downloads through torchvision, but only after a quick check that the network is there.

Without the check, a machine with no network spends a minute in retries before failing.
"""
from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

from lowdata.errors import UsageError
from lowdata.io import cache_root

CONNECT_TIMEOUT_S = 3.0


def download_root() -> Path:
    return cache_root() / "downloads"


def network_available(url: str) -> bool:
    host = urlparse(url).hostname or url
    port = 443 if url.startswith("https") else 80
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def require_network(url: str, offline_fix: str) -> None:
    if not network_available(url):
        host = urlparse(url).hostname or url
        raise UsageError(f"cannot reach {host} to download the data (offline?); use {offline_fix}")
