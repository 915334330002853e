"""facesearch: self-hosted face detection, indexing and search."""

__version__ = "0.1.0"
