"""The OpenSearch vector store (one k-NN index per collection); see store.py for the design.

Modules: client.py (endpoint URL, authentication, the opensearch-py client), mapping.py (names and index
bodies), documents.py (face and user documents and their requests), maintenance.py (bulk load, force merge,
purge, segment statistics), store.py (the VectorStore).
"""

from facesearch.store.opensearch.documents import MAX_K, OpenSearchStoreError
from facesearch.store.opensearch.store import OpenSearchStore

__all__ = ["MAX_K", "OpenSearchStore", "OpenSearchStoreError"]
