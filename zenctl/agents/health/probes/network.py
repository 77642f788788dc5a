"""`tcp`, `http` and `tls` checks, on plain sockets with one deadline for resolve, connect, handshake and read.

Name resolution is separate from connecting so a temporary resolver failure can be retried (see
`with_dns_retry`) instead of being reported as the service being down.
"""

import http.client
import re
import socket
import ssl
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from zenctl.agents.health.decide import level
from zenctl.agents.health.probes import Metric, Outcome, describe, remaining

BODY_LIMIT = 1 << 20  # bytes of a response body searched by `body`


def resolve(host: str, port: int) -> list[tuple]:
    """Addresses of host:port (raises socket.gaierror; EAI_AGAIN is retried by the caller)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def connect(host: str, port: int, deadline: float) -> socket.socket:
    """A connected socket to the first address of host:port that answers before the deadline."""
    error: OSError | None = None
    for family, kind, proto, _, address in resolve(host, port):
        sock = socket.socket(family, kind, proto)
        sock.settimeout(remaining(deadline))
        try:
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if time.monotonic() >= deadline:
                break
    raise error or OSError(f"no address for {host}")


def probe_tcp(service, deadline: float) -> Outcome:
    start = time.monotonic()
    try:
        connect(service.host, service.port, deadline).close()
    except socket.gaierror:
        raise
    except OSError as exc:
        return Outcome("critical", f"{service.host}:{service.port}: {describe(exc)}", down=True)
    ms = (time.monotonic() - start) * 1000
    return Outcome("ok", f"{service.host}:{service.port} accepts connections ({ms:.0f} ms)",
                   metrics=[Metric("time", round(ms / 1000, 4), "s")])


def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    if verify:
        return ssl.create_default_context(cafile=ca_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def probe_http(service, deadline: float) -> Outcome:
    url = urlsplit(service.url)
    https = url.scheme == "https"
    host, port = url.hostname, url.port or (443 if https else 80)
    start = time.monotonic()
    try:
        sock = connect(host, port, deadline)
    except socket.gaierror:
        raise
    except OSError as exc:
        return Outcome("critical", f"{service.url}: {describe(exc)}", down=True)
    try:
        if https:
            try:
                sock = _tls_context(service.verify, service.ca_file).wrap_socket(sock, server_hostname=host)
            except ssl.SSLCertVerificationError as exc:
                return Outcome("critical", f"{service.url}: certificate not trusted: {exc.verify_message}",
                               evidence={"tls_error": exc.verify_message})
        conn = (http.client.HTTPSConnection if https else http.client.HTTPConnection)(host, port)
        conn.sock = sock  # already connected (and wrapped) under our deadline
        sock.settimeout(remaining(deadline))
        conn.request("GET", (url.path or "/") + (f"?{url.query}" if url.query else ""),
                     headers={"User-Agent": "zenctl-health", "Connection": "close"})
        response = conn.getresponse()
        body = response.read(BODY_LIMIT)
        conn.close()
    except OSError as exc:
        sock.close()
        return Outcome("critical", f"{service.url}: {describe(exc)}", down=True)
    except http.client.HTTPException as exc:
        sock.close()
        return Outcome("critical", f"{service.url}: bad HTTP response: {describe(exc)}", down=True)
    ms = (time.monotonic() - start) * 1000
    metrics = [Metric("time", round(ms / 1000, 4), "s",
                      service.latency_warning_ms and service.latency_warning_ms / 1000,
                      service.latency_critical_ms and service.latency_critical_ms / 1000),
               Metric("size", len(body), "B")]
    evidence = {"http_status": response.status, "ms": round(ms, 1), "bytes": len(body)}
    if response.status not in service.status:
        expected = "/".join(str(code) for code in service.status)
        return Outcome("critical", f"{service.url}: HTTP {response.status} {response.reason}, expected {expected}",
                       down=True, metrics=metrics, evidence=evidence)
    if service.body and not re.search(service.body.encode(), body):
        return Outcome("critical", f"{service.url}: HTTP {response.status} but the body does not match "
                                   f"{service.body!r}", down=True, metrics=metrics, evidence=evidence)
    status = level(ms, service.latency_warning_ms, service.latency_critical_ms)
    bound = service.latency_critical_ms if status == "critical" else service.latency_warning_ms
    slow = "" if status == "ok" else f" (slower than {bound:g} ms)"
    return Outcome(status, f"{service.url}: HTTP {response.status} in {ms:.0f} ms{slow}", metrics=metrics,
                   evidence=evidence)


def certificate_expiry(service, deadline: float):
    """(the certificate, where it came from) for a tls check: from its `file` or from the server."""
    from cryptography import x509

    if service.file:
        with open(service.file, "rb") as handle:
            return x509.load_pem_x509_certificate(handle.read()), service.file
    name = service.server_name or service.host
    sock = connect(service.host, service.port, deadline)
    try:
        with _tls_context(False, None).wrap_socket(sock, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    finally:
        sock.close()
    return x509.load_der_x509_certificate(der), f"{service.host}:{service.port}"


def days_left(service, deadline: float) -> tuple[float, dict]:
    """Days until the certificate expires (negative when it has), and what it is."""
    certificate, source = certificate_expiry(service, deadline)
    not_after = certificate.not_valid_after_utc
    days = (not_after - datetime.now(timezone.utc)).total_seconds() / 86400
    return days, {"source": source, "subject": certificate.subject.rfc4514_string(),
                  "issuer": certificate.issuer.rfc4514_string(), "not_after": not_after.isoformat(),
                  "days_left": round(days, 2)}


def probe_tls(service, deadline: float) -> Outcome:
    try:
        days, evidence = days_left(service, deadline)
    except socket.gaierror:
        raise
    except (OSError, ValueError) as exc:
        where = service.file or f"{service.host}:{service.port}"
        return Outcome("critical", f"{where}: cannot read the certificate: {describe(exc)}",
                       down=service.file is None, evidence={"error": describe(exc)})
    metric = Metric("days_left", round(days, 2), "d", service.warning_days, service.critical_days)
    where = evidence["source"]
    if days <= 0:
        return Outcome("critical", f"{where}: certificate expired {-days:.1f} days ago ({evidence['not_after']})",
                       metrics=[metric], evidence=evidence)
    status = "critical" if days <= service.critical_days else "warning" if days <= service.warning_days else "ok"
    return Outcome(status, f"{where}: certificate expires in {days:.1f} days ({evidence['not_after']})",
                   metrics=[metric], evidence=evidence)
