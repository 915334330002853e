"""The face collection service: Rekognition's face-collection API as a library.

Methods take Rekognition's request fields as keyword arguments and return Rekognition's response dicts, so an
HTTP layer can expose them 1:1 and an existing Rekognition client can talk to it. Extensions are additive and
named so they cannot collide with Rekognition fields (``AllFaces``, ``MatchExplanation``, ``ReviewRequired``,
``FaceMatchThresholdFloor``).

Accountability is part of the API, not bolted on: every search writes an audit record before its result is
returned, thresholds below the collection's floor are refused, and every match says whether a human must
review it before anyone acts on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from facesearch.audit import AuditRecord, AuditSink
from facesearch.collections import risk, shapes
from facesearch.collections import validation as v
from facesearch.collections.images import image_bytes
from facesearch.collections.pagination import decode_token, encode_token
from facesearch.collections.shapes import compared_face, face_detail, stored_face
from facesearch.engine.similarity import DEFAULT_THRESHOLD, distance_from_similarity, similarity_from_distance
from facesearch.engine.types import FACE_MODEL_VERSION, AnalyzedImage, QualityFilter
from facesearch.errors import (
    ConflictException,
    InvalidParameterException,
    ResourceNotFoundException,
)
from facesearch.store.base import VectorStore
from facesearch.store.records import CollectionRecord, FaceRecord, Neighbor, UserRecord

if TYPE_CHECKING:
    from facesearch.engine.engine import FaceEngine
    from facesearch.wiring import LazyEngine

MAX_SEARCH_FACES = 4096
# Rekognition's per-image cap: IndexFaces, DetectFaces, CompareFaces (target) and searches consider the
# 100 largest faces; it also bounds the work a single crowd photo can cost.
MAX_FACES_PER_IMAGE = 100
MAX_USERS = 500
QUALITY_FILTERS = tuple(q.value for q in QualityFilter)


@dataclass(frozen=True)
class RequestContext:
    """Who is asking and why; recorded with every search. ``caller`` is an IAM ARN in AWS, a user name locally."""

    caller: str = "local"
    purpose: str | None = None
    request_id: str | None = None


class FaceCollectionService:
    def __init__(
        self,
        engine: FaceEngine | LazyEngine,
        store: VectorStore,
        audit: AuditSink,
        *,
        s3_client: Any | None = None,
        arn_prefix: str = "arn:aws:rekognition:local:000000000000",
        default_floor: float = DEFAULT_THRESHOLD,
        false_candidate_budget: float = risk.DEFAULT_BUDGET,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.store = store
        self.audit = audit
        self.s3 = s3_client
        self.arn_prefix = arn_prefix
        self.default_floor = default_floor
        if false_candidate_budget <= 0:
            raise ValueError(f"false_candidate_budget must be > 0, got {false_candidate_budget}")
        self.budget = false_candidate_budget
        self.clock = clock

    # ----------------------------------------------------------------------------------- collections
    def create_collection(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        floor = v.percentage(p, "FaceMatchThresholdFloor", self.default_floor)
        if floor < self.default_floor:
            raise InvalidParameterException(
                f"FaceMatchThresholdFloor can only be raised above the service floor {self.default_floor}, got {floor}"
            )
        review = p.get("ReviewRequired", True)
        if not isinstance(review, bool):
            raise InvalidParameterException("ReviewRequired must be a boolean")
        record = CollectionRecord(cid, self.clock(), FACE_MODEL_VERSION, floor, review)
        self.store.create_collection(record)
        self._audit("CreateCollection", context, cid, details={"floor": floor, "review_required": review})
        return {"StatusCode": 200, "CollectionArn": self._arn(cid), "FaceModelVersion": FACE_MODEL_VERSION}

    def describe_collection(self, **p: Any) -> dict[str, Any]:
        record = self.store.get_collection(v.collection_id(p))
        faces = self.store.count_faces(record.collection_id)
        default = self.default_threshold(record, faces)
        return {
            "FaceCount": faces,
            "UserCount": self.store.count_users(record.collection_id),
            "FaceModelVersion": record.face_model_version,
            "CollectionARN": self._arn(record.collection_id),
            "CreationTimestamp": record.created_at,
            "FaceMatchThresholdFloor": self.floor(record),
            "ReviewRequired": record.review_required,
            # Not in Rekognition: what a search of this collection risks at its size (collections/risk.py).
            "DefaultFaceMatchThreshold": default,
            "FalseCandidateBudget": self.budget,
            "RefusesThresholdsOverBudget": self._refuses_over_budget(record),
            "FalseMatchRisk": [risk.risk_at(t, faces) for t in sorted({self.floor(record), default})],
        }

    def default_threshold(self, record: CollectionRecord, faces: int) -> float:
        """The threshold of a search that names none: within the false-candidate budget at the current size."""
        return risk.budgeted_threshold(faces, budget=self.budget, floor=self.floor(record))

    def floor(self, record: CollectionRecord) -> float:
        """The collection's floor, never below the service's: a collection created when similarity 80 meant a
        stricter distance (before the LFW refit, docs/similarity.md) is held to today's service floor."""
        return max(record.threshold_floor, self.default_floor)

    @staticmethod
    def _refuses_over_budget(record: CollectionRecord) -> bool:
        return record.threshold_floor >= risk.IDENTIFICATION_FLOOR

    def list_collections(self, **p: Any) -> dict[str, Any]:
        limit = v.integer(p, "MaxResults", 1000, 0, 4096) or 1000
        after = decode_token(p.get("NextToken"), "ListCollections")
        records = [r for r in self.store.list_collections() if after is None or r.collection_id > after]
        page = records[:limit]
        out: dict[str, Any] = {
            "CollectionIds": [r.collection_id for r in page],
            "FaceModelVersions": [r.face_model_version for r in page],
        }
        if len(records) > limit:
            out["NextToken"] = encode_token("ListCollections", page[-1].collection_id)
        return out

    def delete_collection(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        faces = self.store.count_faces(cid)
        self.store.delete_collection(cid)
        self._audit("DeleteCollection", context, cid, details={"faces_deleted": faces})
        return {"StatusCode": 200}

    # ------------------------------------------------------------------------------------------ faces
    def index_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        self.store.get_collection(cid)  # unknown collection fails before any image work
        external = p.get("ExternalImageId")
        if external is not None:
            v.match(external, v.EXTERNAL_IMAGE_ID, "ExternalImageId")
        max_faces = v.integer(p, "MaxFaces", None, 1, None)
        quality = v.choice(p, "QualityFilter", "AUTO", QUALITY_FILTERS)
        attributes = _attributes(p)
        data, source = image_bytes(v.require(p, "Image"), self.s3)
        analyzed = self.engine.analyze(data, quality_filter=quality, max_faces=MAX_FACES_PER_IMAGE)
        source = source if source != "bytes" else f"sha256:{analyzed.image.sha256}"
        image_id = _image_id(cid, external, analyzed.image.sha256)
        now = self.clock()
        records: list[FaceRecord] = []
        face_records: list[dict[str, Any]] = []
        unindexed: list[dict[str, Any]] = []
        for number, face in enumerate(analyzed.faces):
            detail = face_detail(face, analyzed.width, analyzed.height, attributes)
            if face.rejected_reasons or face.descriptor is None:
                unindexed.append({"Reasons": list(face.rejected_reasons), "FaceDetail": detail})
                continue
            if max_faces is not None and len(records) >= max_faces:
                unindexed.append({"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": detail})
                continue
            record = FaceRecord(
                face_id=_face_id(image_id, number),
                image_id=image_id,
                vector=np.asarray(face.descriptor, dtype=np.float32),
                bounding_box=shapes.bounding_box(face, analyzed.width, analyzed.height),
                confidence=float(face.confidence),
                indexed_at=now,
                external_image_id=external,
                source=source,
                quality=face.quality.as_dict(),
            )
            records.append(record)
            face_records.append({"Face": stored_face(record), "FaceDetail": detail})
        # A re-delivered or retried image yields the same FaceIds: store only the ones not stored yet, so
        # at-least-once delivery never duplicates a face (the response still lists them all).
        stored = self.store.get_faces(cid, [r.face_id for r in records]) if records else {}
        new = [r for r in records if r.face_id not in stored]
        if new:
            self.store.add_faces(cid, new)
        self._audit(
            "IndexFaces",
            context,
            cid,
            image=analyzed,
            results=[{"FaceId": r.face_id, "ExternalImageId": r.external_image_id} for r in records],
            details={"source": source, "unindexed": len(unindexed), "already_indexed": len(records) - len(new)},
        )
        return shapes.index_faces_response(analyzed, face_records, unindexed)

    def list_faces(self, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        self.store.get_collection(cid)
        limit = v.integer(p, "MaxResults", 1000, 0, 4096) or 1000
        user = v.user_id(p) if p.get("UserId") is not None else None
        scope = f"ListFaces:{cid}:{user or ''}"
        after = decode_token(p.get("NextToken"), scope)
        if p.get("FaceIds") is not None:
            ids = v.face_ids(p, maximum=4096)
            found = self.store.get_faces(cid, ids)
            faces = [found[i] for i in sorted(found) if (user is None or found[i].user_id == user)]
            faces = [f for f in faces if after is None or f.face_id > after]
            page, more = faces[:limit], len(faces) > limit
        else:
            page = self.store.list_faces(cid, after=after, limit=limit + 1, user_id=user)
            page, more = page[:limit], len(page) > limit
        out: dict[str, Any] = {"Faces": [stored_face(f) for f in page], "FaceModelVersion": FACE_MODEL_VERSION}
        if more:
            out["NextToken"] = encode_token(scope, page[-1].face_id)
        return out

    def delete_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        self.store.get_collection(cid)
        ids = v.face_ids(p, maximum=4096)
        found = self.store.get_faces(cid, ids)
        unsuccessful, deletable = [], []
        for fid in dict.fromkeys(ids):
            face = found.get(fid)
            if face is None:
                unsuccessful.append({"FaceId": fid, "Reasons": ["FACE_NOT_FOUND"]})
            elif face.user_id is not None:
                unsuccessful.append(
                    {"FaceId": fid, "UserId": face.user_id, "Reasons": ["ASSOCIATED_TO_AN_EXISTING_USER"]}
                )
            else:
                deletable.append(fid)
        deleted = self.store.delete_faces(cid, deletable) if deletable else []
        self._audit("DeleteFaces", context, cid, results=[{"FaceId": f} for f in deleted])
        return {"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": unsuccessful}

    def erase_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        """Not in Rekognition: delete a person for good — every face with an ExternalImageId, or every face of
        a user and the user itself. The one operation behind `facesearch faces delete --external-id`, the
        S3 ObjectRemoved handler and an erasure request, so each removes the same things and is audited alike.
        """
        cid = v.collection_id(p)
        self.store.get_collection(cid)
        external, user = p.get("ExternalImageId"), p.get("UserId")
        if (external is None) == (user is None):
            raise InvalidParameterException("give exactly one of ExternalImageId or UserId")
        if external is not None:
            v.match(external, v.EXTERNAL_IMAGE_ID, "ExternalImageId")
            faces = [f for f in self._all_faces(cid) if f.external_image_id == external]
        else:
            user = v.user_id(p)
            self._user(cid, user)
            faces = self._user_faces(cid, user)
        ids = [f.face_id for f in faces]
        if user is not None and ids:
            self.store.set_face_user(cid, ids, None)
        deleted: list[str] = []
        for start in range(0, len(ids), 4096):
            deleted += self.store.delete_faces(cid, ids[start : start + 4096])
        if user is not None:
            self.store.delete_user(cid, user)
        self._audit(
            "EraseFaces",
            context,
            cid,
            user_id=user,
            results=[{"FaceId": f} for f in deleted],
            details={"external_image_id": external} if external is not None else {},
        )
        return {"DeletedFaces": deleted, **({"DeletedUser": user} if user is not None else {})}

    def purge_deleted_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        """Not in Rekognition: make sure deleted faces' descriptors are gone from the backend's files (the
        embedded store erases them in DeleteFaces; OpenSearch keeps them in segments until this runs)."""
        cid = v.collection_id(p)
        self.store.get_collection(cid)
        report = self.store.purge_deleted(cid)
        self._audit("PurgeDeletedFaces", context, cid, details=report)
        return report

    # ----------------------------------------------------------------------------------------- search
    def search_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        collection = self.store.get_collection(cid)
        fid = v.face_id(v.require(p, "FaceId"))
        max_faces = v.count(p, "MaxFaces", 80, 1, MAX_SEARCH_FACES)
        threshold = self._threshold(collection, p, "FaceMatchThreshold")
        face = self.store.get_faces(cid, [fid]).get(fid)
        if face is None:
            raise ResourceNotFoundException(f"face {fid} is not in collection {cid}")
        neighbors = [n for n in self._search(cid, face.vector, max_faces + 1, threshold) if n.face.face_id != fid]
        matches = self._matches(collection, neighbors[:max_faces], threshold)
        self._audit(
            "SearchFaces", context, cid, threshold=threshold, face_id=fid, results=shapes.audit_matches(matches)
        )
        return {
            "SearchedFaceId": fid,
            "FaceMatches": matches,
            "FaceModelVersion": FACE_MODEL_VERSION,
            "FaceMatchThreshold": threshold,  # not in Rekognition: the threshold applied (it may be the default)
        }

    def search_faces_by_image(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        collection = self.store.get_collection(cid)
        max_faces = v.count(p, "MaxFaces", 80, 1, MAX_SEARCH_FACES)
        threshold = self._threshold(collection, p, "FaceMatchThreshold")
        quality = v.choice(p, "QualityFilter", "NONE", QUALITY_FILTERS)
        all_faces = bool(p.get("AllFaces", False))
        data, source = image_bytes(v.require(p, "Image"), self.s3)
        analyzed = self.engine.analyze(data, quality_filter=quality, max_faces=MAX_FACES_PER_IMAGE)
        searchable = [f for f in analyzed.faces if f.descriptor is not None]
        if not searchable:
            why = "no faces" if not analyzed.faces else "no faces that pass QualityFilter " + quality
            raise InvalidParameterException(f"There are {why} in the image")
        targets = searchable if all_faces else searchable[:1]
        searched = []
        for face in targets:
            neighbors = self._search(cid, face.descriptor, max_faces, threshold)
            matched = self._matches(collection, neighbors, threshold)
            searched.append({**shapes.box_and_confidence(face, analyzed), "FaceMatches": matched})
        out = shapes.search_faces_by_image_response(searched, all_faces)
        out["FaceMatchThreshold"] = threshold  # not in Rekognition: the threshold applied (it may be the default)
        self._audit(
            "SearchFacesByImage",
            context,
            cid,
            threshold=threshold,
            image=analyzed,
            results=[m for s in searched for m in shapes.audit_matches(s["FaceMatches"])],
            details={"source": source, "faces_searched": len(searched)},
        )
        return out

    def compare_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        threshold = v.percentage(p, "SimilarityThreshold", self.default_floor)
        if threshold < self.default_floor:
            raise InvalidParameterException(
                f"SimilarityThreshold {threshold} is below the service floor {self.default_floor}"
            )
        quality = v.choice(p, "QualityFilter", "NONE", QUALITY_FILTERS)
        src_bytes, _ = image_bytes(v.require(p, "SourceImage"), self.s3, "SourceImage")
        tgt_bytes, _ = image_bytes(v.require(p, "TargetImage"), self.s3, "TargetImage")
        source = self.engine.analyze(src_bytes, quality_filter=quality, max_faces=MAX_FACES_PER_IMAGE)
        target = self.engine.analyze(tgt_bytes, quality_filter=quality, max_faces=MAX_FACES_PER_IMAGE)
        src_faces = [f for f in source.faces if f.descriptor is not None]
        if not src_faces:
            raise InvalidParameterException("There are no faces in the SourceImage")
        probe = src_faces[0]
        max_distance = distance_from_similarity(threshold)
        matches: list[dict[str, Any]] = []
        unmatched: list[dict[str, Any]] = []
        for face in target.faces:
            shape = compared_face(face, target.width, target.height)
            if face.descriptor is None:
                unmatched.append(shape)
                continue
            distance = float(np.linalg.norm(face.descriptor - probe.descriptor))
            if distance <= max_distance:
                matches.append({"Similarity": shapes.similarity(distance), "Face": shape})
            else:
                unmatched.append(shape)
        matches.sort(key=lambda m: -m["Similarity"])
        self._audit(
            "CompareFaces",
            context,
            None,
            threshold=threshold,
            image=source,
            results=[{"Similarity": m["Similarity"], "BoundingBox": m["Face"]["BoundingBox"]} for m in matches],
            details={"target_image_sha256": target.image.sha256},
        )
        return {
            "SourceImageFace": shapes.box_and_confidence(probe, source),
            "FaceMatches": matches,
            "UnmatchedFaces": unmatched,
        }

    def detect_faces(self, **p: Any) -> dict[str, Any]:
        attributes = _attributes(p, "Attributes")
        data, _ = image_bytes(v.require(p, "Image"), self.s3)
        analyzed = self.engine.analyze(data, embed=False, max_faces=MAX_FACES_PER_IMAGE)
        return {
            "FaceDetails": [face_detail(f, analyzed.width, analyzed.height, attributes) for f in analyzed.faces],
            "OrientationCorrection": shapes.orientation(analyzed),
        }

    # ------------------------------------------------------------------------------------------ users
    def create_user(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        uid = v.user_id(p)
        self.store.get_collection(cid)
        if self.store.get_user(cid, uid) is not None:
            raise ConflictException(f"A user with id {uid} already exists in collection {cid}")
        self.store.create_user(cid, UserRecord(uid, self.clock(), "CREATED"))
        self._audit("CreateUser", context, cid, user_id=uid)
        return {}

    def delete_user(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        uid = v.user_id(p)
        self._user(cid, uid)
        self.store.delete_user(cid, uid)
        self._audit("DeleteUser", context, cid, user_id=uid)
        return {}

    def list_users(self, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        self.store.get_collection(cid)
        limit = v.integer(p, "MaxResults", MAX_USERS, 1, MAX_USERS) or MAX_USERS
        scope = f"ListUsers:{cid}"
        after = decode_token(p.get("NextToken"), scope)
        users = self.store.list_users(cid, after=after, limit=limit + 1)
        page = users[:limit]
        out: dict[str, Any] = {"Users": [{"UserId": u.user_id, "UserStatus": u.status} for u in page]}
        if len(users) > limit:
            out["NextToken"] = encode_token(scope, page[-1].user_id)
        return out

    def associate_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        uid = v.user_id(p)
        ids = v.face_ids(p, maximum=100)
        threshold = v.percentage(p, "UserMatchThreshold", 75.0)
        self._user(cid, uid)
        found = self.store.get_faces(cid, ids)
        existing = [f.vector for f in self._user_faces(cid, uid)]
        associated: list[str] = []
        unsuccessful: list[dict[str, Any]] = []
        for fid in dict.fromkeys(ids):
            face = found.get(fid)
            if face is None:
                unsuccessful.append({"FaceId": fid, "Reasons": ["FACE_NOT_FOUND"]})
                continue
            if face.user_id not in (None, uid):
                unsuccessful.append(
                    {"FaceId": fid, "UserId": face.user_id, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
                )
                continue
            if existing:
                best = float(similarity_from_distance(min(float(np.linalg.norm(e - face.vector)) for e in existing)))
                if best < threshold:
                    unsuccessful.append(
                        {
                            "FaceId": fid,
                            "UserId": uid,
                            "Confidence": round(best, 4),
                            "Reasons": ["LOW_MATCH_CONFIDENCE"],
                        }
                    )
                    continue
            associated.append(fid)
        if associated:
            self.store.set_face_user(cid, associated, uid)
        self._audit("AssociateFaces", context, cid, user_id=uid, results=[{"FaceId": f} for f in associated])
        return {
            "AssociatedFaces": [{"FaceId": f} for f in associated],
            "UnsuccessfulFaceAssociations": unsuccessful,
            "UserStatus": self._user(cid, uid).status,
        }

    def disassociate_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        uid = v.user_id(p)
        ids = v.face_ids(p, maximum=100)
        self._user(cid, uid)
        found = self.store.get_faces(cid, ids)
        done: list[str] = []
        unsuccessful: list[dict[str, Any]] = []
        for fid in dict.fromkeys(ids):
            face = found.get(fid)
            if face is None:
                unsuccessful.append({"FaceId": fid, "Reasons": ["FACE_NOT_FOUND"]})
            elif face.user_id != uid:
                unsuccessful.append(
                    {"FaceId": fid, "UserId": face.user_id, "Reasons": ["ASSOCIATED_TO_A_DIFFERENT_USER"]}
                )
            else:
                done.append(fid)
        if done:
            self.store.set_face_user(cid, done, None)
        self._audit("DisassociateFaces", context, cid, user_id=uid, results=[{"FaceId": f} for f in done])
        return {
            "DisassociatedFaces": [{"FaceId": f} for f in done],
            "UnsuccessfulFaceDisassociations": unsuccessful,
            "UserStatus": self._user(cid, uid).status,
        }

    def search_users(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        collection = self.store.get_collection(cid)
        threshold = self._threshold(collection, p, "UserMatchThreshold")
        max_users = v.count(p, "MaxUsers", 5, 1, MAX_USERS)
        if (p.get("UserId") is None) == (p.get("FaceId") is None):
            raise InvalidParameterException("give exactly one of UserId or FaceId")
        out: dict[str, Any] = {"FaceModelVersion": FACE_MODEL_VERSION}
        if p.get("FaceId") is not None:
            fid = v.face_id(p["FaceId"])
            face = self.store.get_faces(cid, [fid]).get(fid)
            if face is None:
                raise ResourceNotFoundException(f"face {fid} is not in collection {cid}")
            probes, exclude_user = [face.vector], face.user_id
            out["SearchedFace"] = {"FaceId": fid}
        else:
            uid = v.user_id(p)
            self._user(cid, uid)
            faces = self._user_faces(cid, uid)
            if not faces:
                raise InvalidParameterException(f"user {uid} has no associated faces to search with")
            probes, exclude_user = [f.vector for f in faces], uid
            out["SearchedUser"] = {"UserId": uid}
        out["UserMatches"] = self._user_matches(cid, probes, threshold, max_users, exclude_user)
        out["UserMatchThreshold"] = threshold  # not in Rekognition: the threshold applied (it may be the default)
        self._audit(
            "SearchUsers",
            context,
            cid,
            threshold=threshold,
            face_id=p.get("FaceId"),
            user_id=p.get("UserId"),
            results=[{"UserId": m["User"]["UserId"], "Similarity": m["Similarity"]} for m in out["UserMatches"]],
        )
        return out

    def search_users_by_image(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        cid = v.collection_id(p)
        collection = self.store.get_collection(cid)
        threshold = self._threshold(collection, p, "UserMatchThreshold")
        max_users = v.count(p, "MaxUsers", 5, 1, MAX_USERS)
        quality = v.choice(p, "QualityFilter", "NONE", QUALITY_FILTERS)
        data, source = image_bytes(v.require(p, "Image"), self.s3)
        analyzed = self.engine.analyze(data, quality_filter=quality, max_faces=MAX_FACES_PER_IMAGE)
        searchable = [f for f in analyzed.faces if f.descriptor is not None]
        if not searchable:
            raise InvalidParameterException("There are no faces in the image")
        probe = searchable[0]
        assert probe.descriptor is not None
        matches = self._user_matches(cid, [probe.descriptor], threshold, max_users, None)
        unsearched = []
        for face in analyzed.faces:
            if face is probe:
                continue
            reasons = list(face.rejected_reasons) or ["FACE_NOT_LARGEST"]
            unsearched.append({"FaceDetails": face_detail(face, analyzed.width, analyzed.height), "Reasons": reasons})
        self._audit(
            "SearchUsersByImage",
            context,
            cid,
            threshold=threshold,
            image=analyzed,
            results=[{"UserId": m["User"]["UserId"], "Similarity": m["Similarity"]} for m in matches],
            details={"source": source},
        )
        return {
            "UserMatches": matches,
            "FaceModelVersion": FACE_MODEL_VERSION,
            "SearchedFace": {"FaceDetail": face_detail(probe, analyzed.width, analyzed.height)},
            "UnsearchedFaces": unsearched,
            "UserMatchThreshold": threshold,  # not in Rekognition: the threshold applied (it may be the default)
        }

    # -------------------------------------------------------------------------------------- internals
    def _arn(self, cid: str) -> str:
        return f"{self.arn_prefix}:collection/{cid}"

    def _threshold(self, collection: CollectionRecord, p: dict[str, Any], name: str) -> float:
        """The request's threshold, checked against the floor (and the budget in identification collections),
        or the budgeted default when the request names none."""
        faces = self.store.count_faces(collection.collection_id)
        if p.get(name) is None:
            return self.default_threshold(collection, faces)
        floor = self.floor(collection)
        threshold = v.percentage(p, name, floor)
        if threshold < floor:
            raise InvalidParameterException(
                f"{name} {threshold} is below collection {collection.collection_id}'s floor of {floor}"
            )
        if self._refuses_over_budget(collection) and risk.exceeds_budget(threshold, faces, self.budget):
            expected = risk.expected_false_candidates(threshold, faces)
            raise InvalidParameterException(
                f"{name} {threshold} would return {expected:.3g} false candidates on average per search of someone "
                f"not in collection {collection.collection_id} ({faces} faces × FMR "
                f"{risk.fmr_at_similarity(threshold):.3g} per comparison), over its limit of {self.budget}; use "
                f"≥ {self.default_threshold(collection, faces)} or omit {name} for the budgeted default"
            )
        return threshold

    def _search(self, cid: str, vector: np.ndarray | None, k: int, threshold: float) -> list[Neighbor]:
        assert vector is not None, "only faces with a descriptor are searched"
        return self.store.search(
            cid, np.asarray(vector, np.float32), k=k, max_distance=distance_from_similarity(threshold)
        )

    def _matches(
        self, collection: CollectionRecord, neighbors: list[Neighbor], threshold: float
    ) -> list[dict[str, Any]]:
        max_distance = distance_from_similarity(threshold)
        return [shapes.face_match(collection, n, max_distance) for n in neighbors]

    def _user(self, cid: str, uid: str) -> UserRecord:
        self.store.get_collection(cid)
        user = self.store.get_user(cid, uid)
        if user is None:
            raise ResourceNotFoundException(f"user {uid} does not exist in collection {cid}")
        return user

    def _user_faces(self, cid: str, uid: str) -> list[FaceRecord]:
        return self._all_faces(cid, uid)

    def _all_faces(self, cid: str, uid: str | None = None) -> list[FaceRecord]:
        faces: list[FaceRecord] = []
        after = None
        while True:
            page = self.store.list_faces(cid, after=after, limit=1000, user_id=uid)
            faces.extend(page)
            if len(page) < 1000:
                return faces
            after = page[-1].face_id

    def _user_matches(
        self, cid: str, probes: list[np.ndarray], threshold: float, max_users: int, exclude_user: str | None
    ) -> list[dict[str, Any]]:
        best: dict[str, float] = {}
        for probe in probes:
            for n in self._search(cid, probe, MAX_SEARCH_FACES, threshold):
                uid = n.face.user_id
                if uid is None or uid == exclude_user:
                    continue
                best[uid] = min(best.get(uid, np.inf), n.distance)
        ranked = sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:max_users]
        out = []
        for uid, distance in ranked:
            user = self.store.get_user(cid, uid)
            status = user.status if user else "ACTIVE"
            out.append(shapes.user_match(uid, status, distance))
        return out

    def _audit(
        self,
        operation: str,
        context: RequestContext | None,
        cid: str | None,
        *,
        threshold: float | None = None,
        image: AnalyzedImage | None = None,
        face_id: str | None = None,
        user_id: str | None = None,
        results: list[dict[str, Any]] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        ctx = context or RequestContext()
        self.audit.write(
            AuditRecord(
                operation=operation,
                caller=ctx.caller,
                collection_id=cid,
                purpose=ctx.purpose,
                request_id=ctx.request_id,
                query_image_sha256=image.image.sha256 if image else None,
                query_face_id=face_id,
                query_user_id=user_id,
                threshold=threshold,
                results=results or [],
                details=details or {},
            )
        )


# FaceIds and ImageIds are name-based UUIDs (RFC 4122 v5) of what identifies them, so indexing the same image
# again under the same ExternalImageId (an S3 re-delivery, a retried request) names the same faces.
_ID_NAMESPACE = uuid.UUID("6f1c5e0a-3b7d-5d2e-9a51-4f0d6c1b2a90")


def _image_id(cid: str, external: str | None, sha256: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"image\0{cid}\0{external or ''}\0{sha256}"))


def _face_id(image_id: str, number: int) -> str:
    """``number`` is the face's rank in the engine's largest-first order, which is deterministic per image."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"face\0{image_id}\0{number}"))


def _attributes(p: dict[str, Any], name: str = "DetectionAttributes") -> str:
    values = p.get(name) or ["DEFAULT"]
    if not isinstance(values, list) or any(x not in ("DEFAULT", "ALL") for x in values):
        raise InvalidParameterException(f"{name} must be a list of DEFAULT or ALL")
    return "ALL" if "ALL" in values else "DEFAULT"


__all__ = ["FaceCollectionService", "RequestContext"]
