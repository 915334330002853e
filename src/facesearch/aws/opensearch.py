"""SigV4 for an Amazon OpenSearch Service domain: the signer the OpenSearch store is handed when
``FACESEARCH_OPENSEARCH_AUTH=sigv4`` (the store itself never imports boto3)."""

from __future__ import annotations

from typing import Any


def sigv4_auth(region: str, *, service: str = "es", session: Any | None = None) -> Any:
    """opensearch-py's urllib3 SigV4 signer over the process's credentials (the Lambda execution role); the
    credentials object refreshes itself, so one signer serves a warm container for its whole life."""
    import boto3
    from opensearchpy import Urllib3AWSV4SignerAuth

    credentials = (session or boto3.Session()).get_credentials()
    if credentials is None:
        raise RuntimeError("FACESEARCH_OPENSEARCH_AUTH=sigv4 but no AWS credentials are available to sign with")
    return Urllib3AWSV4SignerAuth(credentials, region, service)
