"""The embedded vector store (SQLite + faiss in a local directory); see store.py for the design.

Importing this package imports faiss (the ``embedded`` extra); the OpenSearch store and the Lambda runtime
never import it.
"""

from facesearch.store.embedded.store import EmbeddedStore

__all__ = ["EmbeddedStore"]
