"""Vector stores: one interface (base.py), an embedded and an OpenSearch backend."""

import facesearch.native_order  # noqa: F401  (must run before any backend imports usearch)
