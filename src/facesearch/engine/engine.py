"""The face engine: image bytes in, faces (box, landmarks, quality, descriptor) out.

One engine per process holds the ONNX sessions (detector nets and embedder); building sessions costs far
more than running them, so Lambda handlers and the CLI create it once and reuse it.
"""

from __future__ import annotations

import numpy as np

from facesearch.engine.align import align_face
from facesearch.engine.cores import available_cores
from facesearch.engine.decode import DecodedImage, decode_image
from facesearch.engine.detect import DetectedFace, MtcnnDetector
from facesearch.engine.embed import Embedder
from facesearch.engine.quality import QualityFilter, assess_quality, quality_reasons
from facesearch.engine.types import FACE_MODEL_VERSION, AnalyzedImage, Face

__all__ = ["FACE_MODEL_VERSION", "AnalyzedImage", "Face", "FaceEngine"]

# Smallest face searched for, as a share of the image's longer side (on top of ``min_face_size`` pixels):
# Rekognition's documented minimum, 40 px in a 1920 px image. Faces that small are too small to identify
# reliably anyway, and on large photos the finest pyramid levels cost more than all the others together
# (faces-dev detection takes half the time). The levels skipped are the finest of the exhaustive search's own
# grid, so faces found come out the same and the calibrated match distance holds (BENCHMARKS.md).
MIN_FACE_FRACTION = 40 / 1920


class FaceEngine:
    """Detect → align → assess → embed, with the models loaded once."""

    def __init__(
        self,
        *,
        threads: int | None = None,
        min_face_size: int = 20,
        min_face_fraction: float = MIN_FACE_FRACTION,
        batch_size: int = 32,
    ) -> None:
        threads = threads or available_cores()
        self.min_face_size = min_face_size
        self.min_face_fraction = min_face_fraction
        self.detector = MtcnnDetector(threads=threads)
        self.embedder = Embedder(threads=threads, batch_size=batch_size)

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(data)

    def analyze(
        self,
        image: bytes | DecodedImage,
        *,
        max_faces: int | None = None,
        embed: bool = True,
        quality_filter: QualityFilter | str = QualityFilter.NONE,
        min_face_size: int | None = None,
    ) -> AnalyzedImage:
        """All faces largest first; faces failing ``quality_filter`` carry reasons and no descriptor.

        ``max_faces`` caps how many faces are detected and returned (the largest ones), like DetectFaces;
        IndexFaces' MaxFaces, which reports the excess as EXCEEDS_MAX_FACES, is the collection service's job.
        """
        decoded = image if isinstance(image, DecodedImage) else decode_image(image)
        # An explicit ``min_face_size`` means "down to this size, whatever the image size"; otherwise the
        # engine's grid is searched from the larger of its pixel floor and its share of the image.
        skip = 0.0 if min_face_size else self.min_face_fraction * max(decoded.width, decoded.height)
        detected: list[DetectedFace] = self.detector.detect(
            decoded.rgb, min_face_size=min_face_size or self.min_face_size, skip_faces_under=skip, max_faces=max_faces
        )
        chips: list[np.ndarray] = []
        faces: list[Face] = []
        for det in detected:
            chip = align_face(decoded.rgb, det.landmarks)
            quality = assess_quality(chip, det.landmarks, det.box)
            reasons = tuple(quality_reasons(quality, det.confidence, quality_filter))
            faces.append(Face(det.box, det.landmarks, det.confidence, quality, None, reasons))
            chips.append(chip)
        if embed and faces:
            wanted = [i for i, f in enumerate(faces) if not f.rejected_reasons]
            if wanted:
                vectors = self.embedder.embed(np.stack([chips[i] for i in wanted]))
                for i, vec in zip(wanted, vectors, strict=True):
                    f = faces[i]
                    faces[i] = Face(f.box, f.landmarks, f.confidence, f.quality, vec, f.rejected_reasons)
        return AnalyzedImage(decoded, faces)
