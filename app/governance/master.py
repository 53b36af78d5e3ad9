"""The master key (``SWITCHYARD_MASTER_KEY``, or the file named by ``SWITCHYARD_MASTER_KEY_FILE``) and the
rule for serving without one: fine on a loopback host (the keyless quick start), refused on any other host
unless ``SWITCHYARD_AUTH=disabled`` says so."""

from __future__ import annotations

import ipaddress
import logging

from app.errors import ConfigError
from app.observability.logging import register_secret
from app.settings.settings import Settings

log = logging.getLogger("switchyard.governance")
MIN_LENGTH = 16


def master_key(settings: Settings) -> str | None:
    """The configured master key (registered as a secret for log redaction), or None. An unreadable or
    empty key file is a ``ConfigError``: a gateway meant to be protected never starts open."""
    value: str | None = None
    if settings.master_key is not None:
        value = settings.master_key.get_secret_value().strip()
    elif settings.master_key_file is not None:
        try:
            lines = settings.master_key_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            path = str(settings.master_key_file)
            raise ConfigError(path, "SWITCHYARD_MASTER_KEY_FILE", f"cannot read it ({exc.strerror})") from None
        value = lines[0].strip() if lines else ""
        if not value:
            raise ConfigError(str(settings.master_key_file), "SWITCHYARD_MASTER_KEY_FILE", "the file is empty")
    if not value:
        return None
    register_secret(value)
    if len(value) < MIN_LENGTH:
        log.warning("the master key is shorter than %d characters: use a long random value", MIN_LENGTH)
    return value


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``::1`` (a listen address only this machine can reach)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def startup_problem(settings: Settings) -> str | None:
    """Why ``switchyard serve`` must not start with ``settings``, or None."""
    try:
        key = master_key(settings)
    except ConfigError as exc:
        return str(exc)
    if key is not None or settings.auth == "disabled" or is_loopback_host(settings.host):
        return None
    return (
        f"refusing to serve on {settings.host} without a master key: anyone who reaches the port could use "
        "your provider keys. Set SWITCHYARD_MASTER_KEY (or SWITCHYARD_MASTER_KEY_FILE) to require keys, "
        "or SWITCHYARD_AUTH=disabled to serve without authentication on purpose."
    )
