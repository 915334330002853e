"""Accountability: every search and every change leaves a record of who did it, when, and what came back.

Where a request is audited: ``FaceCollectionService._audit`` (collections/service.py) builds an ``AuditRecord``
(records.py) and writes it to the configured ``AuditSink`` (sinks.py) before the result is returned — and, for a
change of state, an intent record before the change. ``ChainedAuditSink`` (chain.py) seals every record into an
HMAC'd hash chain with checkpoints; ``verify.py`` finds and locates tampering.
"""

from facesearch.audit.chain import ChainedAuditSink, JsonlCheckpointStore, load_key
from facesearch.audit.records import AuditRecord
from facesearch.audit.sinks import AuditSink, JsonlAuditSink, MemoryAuditSink

__all__ = [
    "AuditRecord",
    "AuditSink",
    "ChainedAuditSink",
    "JsonlAuditSink",
    "JsonlCheckpointStore",
    "MemoryAuditSink",
    "load_key",
]
