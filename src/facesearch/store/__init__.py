"""Vector stores: one interface (base.py), an embedded and an OpenSearch backend."""
