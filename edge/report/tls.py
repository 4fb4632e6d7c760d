"""TLS material of the MQTT link: the client's SSLContext from ``[mqtt.tls]``, and
noticing when its certificate files change (rotation), so the link reconnects with
the new ones. Knows nothing about MQTT."""

from __future__ import annotations

import logging
import os
import ssl
from typing import Any

from edge.config import TlsSection
from edge.errors import LinkError

log = logging.getLogger("edge.report.link")  # its lines read as the link's, as before


class TlsFiles:
    """Builds the client's SSLContext from [mqtt.tls] and notices when its files change."""

    def __init__(self, tls: TlsSection) -> None:
        self.tls = tls
        self._sig: tuple[Any, ...] | None = None
        self._ctx: ssl.SSLContext | None = None

    def _signature(self) -> tuple[Any, ...]:
        sig: list[Any] = []
        for p in (self.tls.ca_file, self.tls.cert_file, self.tls.key_file):
            if p is None:
                sig.append(None)
                continue
            try:
                st = os.stat(p)
                sig.append((str(p), st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                sig.append((str(p), "missing"))
        return tuple(sig)

    def changed(self) -> bool:
        return self._sig is not None and self._signature() != self._sig

    def context(self) -> ssl.SSLContext:
        """The current context, rebuilt if a file changed. Raises LinkError with the
        file at fault when one cannot be read or does not hold what it should."""
        sig = self._signature()
        if self._ctx is not None and sig == self._sig:
            return self._ctx
        t = self.tls
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            if t.ca_file is not None:
                ctx.load_verify_locations(cafile=str(t.ca_file))
            else:
                ctx.load_default_certs()
        except (OSError, ssl.SSLError) as exc:
            raise LinkError(f"TLS: cannot load CA file {t.ca_file}: {exc}") from None
        if t.cert_file is not None:
            try:
                ctx.load_cert_chain(str(t.cert_file),
                                    str(t.key_file) if t.key_file else None)
            except (OSError, ssl.SSLError) as exc:
                raise LinkError(f"TLS: cannot load client certificate {t.cert_file} / key "
                                f"{t.key_file}: {exc}") from None
        if t.insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self._ctx is not None:
            log.info("TLS: certificate files changed, new context loaded")
        self._ctx, self._sig = ctx, sig
        return ctx
