"""Accountability: every search and every deletion leaves a record of who did it, when, and what came back.

Where a search is audited: ``FaceCollectionService._audit`` (collections/service.py) builds an ``AuditRecord``
(records.py) and writes it to the configured ``AuditSink`` (sinks.py) before the result is returned.
"""

from facesearch.audit.records import AuditRecord
from facesearch.audit.sinks import AuditSink, JsonlAuditSink, MemoryAuditSink

__all__ = ["AuditRecord", "AuditSink", "JsonlAuditSink", "MemoryAuditSink"]
