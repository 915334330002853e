"""The OpenSearch endpoint: URL checks (path prefixes, plain HTTP only on loopback) and the opensearch-py client.

Endpoints come in three shapes:

* a self-hosted node, ``http://127.0.0.1:9200`` (tests, development);
* an Amazon OpenSearch Service domain, ``https://search-….es.amazonaws.com``, signed with SigV4;
* a domain behind a path, as LocalStack serves them: ``http://127.0.0.1:4566/opensearch/<region>/<domain>``.
  The path becomes opensearch-py's ``url_prefix``, so every request (``/_bulk``, ``/<index>/_search``) goes
  below it.

Authentication is injected: ``http_auth`` is whatever opensearch-py accepts (a (user, password) tuple, or a
SigV4 signer — ``opensearchpy.AWSV4SignerAuth(credentials, region, "es")`` with
``connection_class=RequestsHttpConnection``, or ``Urllib3AWSV4SignerAuth`` with the default urllib3
connection). The caller finds the credentials (facesearch/aws/ does, with boto3); this module never imports
an AWS SDK.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opensearchpy import OpenSearch

from facesearch.errors import InvalidParameterException


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    """A parsed OpenSearch URL."""

    url: str  # as given, without a trailing slash
    scheme: str
    host: str
    port: int
    path: str  # "" or "/opensearch/us-east-1/facesearch" (no trailing slash)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def host_config(self) -> dict[str, Any]:
        """opensearch-py's host dict: the path as ``url_prefix``."""
        config: dict[str, Any] = {"host": self.host, "port": self.port, "scheme": self.scheme}
        if self.scheme == "https":
            config["use_ssl"] = True
        if self.path:
            config["url_prefix"] = self.path
        return config


def parse_endpoint(url: str) -> Endpoint:
    """Check and split ``http(s)://host[:port][/path/prefix]``."""
    if not isinstance(url, str):
        raise InvalidParameterException(f"OpenSearch url must be a string, got {type(url).__name__}")
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidParameterException(f"OpenSearch url {url!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameterException(f"OpenSearch url must be http(s)://host[:port][/path], got {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidParameterException(
            "OpenSearch url must not carry a query, a fragment or credentials (pass http_auth instead)"
        )
    default_port = 443 if parts.scheme == "https" else 80
    return Endpoint(url, parts.scheme, parts.hostname, port or default_port, parts.path.rstrip("/"))


def open_client(
    endpoint: Endpoint,
    *,
    timeout: float,
    allow_insecure_http: bool = False,
    http_auth: Any = None,
    connection_class: Any = None,
    signed: bool = False,
) -> OpenSearch:
    """An opensearch-py client for ``endpoint``. Plain HTTP is refused off loopback (face descriptors are
    biometric data) unless ``allow_insecure_http``; ``signed`` (SigV4) requests need https off loopback too,
    since a signature authenticates but does not encrypt."""
    if endpoint.scheme == "http" and not endpoint.loopback:
        if signed:
            raise InvalidParameterException(
                "SigV4-signed requests must use https (plain HTTP only to a loopback endpoint such as LocalStack)"
            )
        if not allow_insecure_http:
            raise InvalidParameterException(
                f"refusing plain HTTP to {endpoint.host}: face descriptors are biometric data; use https "
                "(plain HTTP is for loopback only, or pass allow_insecure_http=True)"
            )
    options: dict[str, Any] = {"timeout": timeout, "http_compress": not endpoint.loopback}
    if endpoint.scheme == "https":
        options |= {"use_ssl": True, "verify_certs": True}
    if http_auth is not None:
        options["http_auth"] = http_auth
    if connection_class is not None:
        options["connection_class"] = connection_class
    return OpenSearch(hosts=[endpoint.host_config()], **options)
