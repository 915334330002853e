"""Typed errors named after Rekognition's, so the API layer can map them 1:1 without translation."""

from __future__ import annotations


class FaceSearchError(Exception):
    """Base error; ``code`` is the Rekognition error name, ``http_status`` the status it maps to."""

    code = "InternalServerError"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"__type": self.code, "Code": self.code, "Message": self.message}


class InvalidParameterException(FaceSearchError):
    code = "InvalidParameterException"
    http_status = 400


class InvalidImageFormatException(FaceSearchError):
    """The bytes are not a decodable image (corrupt, truncated, empty, unsupported)."""

    code = "InvalidImageFormatException"
    http_status = 400


class ImageTooLargeException(FaceSearchError):
    """Image exceeds the byte or pixel limits (decompression-bomb guard)."""

    code = "ImageTooLargeException"
    http_status = 400


class ResourceNotFoundException(FaceSearchError):
    code = "ResourceNotFoundException"
    http_status = 400


class ResourceAlreadyExistsException(FaceSearchError):
    code = "ResourceAlreadyExistsException"
    http_status = 400


class ConflictException(FaceSearchError):
    """E.g. CreateUser with a UserId that already exists (Rekognition's name for it)."""

    code = "ConflictException"
    http_status = 400


class ResourceInUseException(FaceSearchError):
    code = "ResourceInUseException"
    http_status = 400


class InvalidS3ObjectException(FaceSearchError):
    code = "InvalidS3ObjectException"
    http_status = 400


class InvalidPaginationTokenException(FaceSearchError):
    code = "InvalidPaginationTokenException"
    http_status = 400


class AccessDeniedException(FaceSearchError):
    code = "AccessDeniedException"
    http_status = 403


class ModelUnavailableError(FaceSearchError):
    """A model file is missing or its sha256 does not match the pinned value."""

    code = "ServiceUnavailableException"
    http_status = 503


class AuditWriteError(FaceSearchError):
    """The audit record of an operation could not be written: the operation did not happen (or was rolled
    back), and its result is not returned. Fail closed: no record, no result."""

    code = "ServiceUnavailableException"
    http_status = 503


class BackendUnavailableError(FaceSearchError):
    """The vector store cannot be reached (OpenSearch down, wrong URL, credentials refused)."""

    code = "ServiceUnavailableException"
    http_status = 503


class StorageFullError(FaceSearchError):
    """The disk holding the store or the audit log is full; nothing was written."""

    code = "ServiceUnavailableException"
    http_status = 507


def typed_error(exc: BaseException) -> FaceSearchError | None:
    """The typed error for an untyped failure from a backend or the OS, or None if it has no typed meaning.

    Looked up by name and errno so this module imports no backend library.
    """
    import errno
    import sqlite3

    if isinstance(exc, FaceSearchError):
        return exc
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"no space left on the device: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        return StorageFullError(f"the store's disk is full: {exc}")
    names = {c.__module__.split(".")[0] + "." + c.__name__ for c in type(exc).__mro__}
    if names & {"opensearchpy.ConnectionError", "opensearchpy.ConnectionTimeout", "urllib3.NewConnectionError"}:
        return BackendUnavailableError(f"OpenSearch is unreachable: {exc}")
    if isinstance(exc, ConnectionError):
        return BackendUnavailableError(f"the backend is unreachable: {exc}")
    return None
