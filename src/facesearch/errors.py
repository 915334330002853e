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
