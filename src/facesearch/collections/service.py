"""The face collection service: Rekognition's face-collection API as a library.

Methods take Rekognition's request fields as keyword arguments and return Rekognition's response dicts, so an
HTTP layer can expose them 1:1 and an existing Rekognition client can talk to it. Extensions are additive and
named so they cannot collide with Rekognition fields (``AllFaces``, ``MatchExplanation``, ``ReviewRequired``,
``FaceMatchThresholdFloor``).

Accountability is part of the API, not bolted on, and it fails closed:
- every search writes an audit record before its result is returned, and no record means no result;
- every change of state writes an intent record before the change and an outcome record after it (IndexFaces,
  CreateCollection, UpdateCollection and CreateUser roll back when the outcome cannot be recorded);
- refused and failed requests are recorded with the reason, so attempts to get around the rules are visible;
- every search enforces the service's minimum floor *and* the collection's floor; the collection floor changes
  only through the audited UpdateCollection, never below the service minimum;
- every match says whether a human must review it before anyone acts on it.

Slightly over 600 lines: the collection, face and search operations share the threshold and floor rules kept here.
The class is split by concern: collections, faces and searches here; the user operations in ``users.py``; the
fail-closed audit trail every operation goes through (``_audit``, ``_attempt``, ``_change``) in ``trail.py``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from facesearch.audit import AuditSink
from facesearch.collections import risk, shapes
from facesearch.collections import validation as v
from facesearch.collections.images import image_bytes
from facesearch.collections.pagination import decode_token, encode_token
from facesearch.collections.shapes import compared_face, face_detail, stored_face
from facesearch.collections.trail import RequestContext
from facesearch.collections.users import (
    MAX_FACES_PER_IMAGE,
    MAX_SEARCH_FACES,
    QUALITY_FILTERS,
    UserOperations,
)
from facesearch.engine.similarity import DEFAULT_THRESHOLD, distance_from_similarity
from facesearch.engine.types import FACE_MODEL_VERSION
from facesearch.errors import (
    InvalidParameterException,
    ResourceNotFoundException,
)
from facesearch.store.base import VectorStore
from facesearch.store.records import CollectionRecord, FaceRecord, Neighbor

if TYPE_CHECKING:
    from facesearch.engine.engine import FaceEngine
    from facesearch.wiring import LazyEngine

# Below this service minimum a floor needs an explicit decision (allow_low_floor, FACESEARCH_ALLOW_LOW_FLOOR),
# which is itself recorded in the audit log when the service starts.
SAFE_MIN_FLOOR = DEFAULT_THRESHOLD


# Public methods that are not API operations: callers in the same process only (the HTTP protocol skips them).
IN_PROCESS_ONLY = frozenset({"search_by_descriptor"})


class FaceCollectionService(UserOperations):
    def __init__(
        self,
        engine: FaceEngine | LazyEngine,
        store: VectorStore,
        audit: AuditSink,
        *,
        s3_client: Any | None = None,
        arn_prefix: str = "arn:aws:rekognition:local:000000000000",
        min_floor: float = DEFAULT_THRESHOLD,
        allow_low_floor: bool = False,
        false_candidate_budget: float = risk.DEFAULT_BUDGET,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not 0 <= min_floor <= 100:
            raise InvalidParameterException(f"the service minimum floor must be between 0 and 100, got {min_floor}")
        if min_floor < SAFE_MIN_FLOOR and not allow_low_floor:
            raise InvalidParameterException(
                f"a service minimum floor of {min_floor:g} is below {SAFE_MIN_FLOOR:g}; it needs allow_low_floor "
                "(FACESEARCH_ALLOW_LOW_FLOOR=1), and is recorded in the audit log"
            )
        self.engine = engine
        self.store = store
        self.audit = audit
        self.s3 = s3_client
        self.arn_prefix = arn_prefix
        self.min_floor = float(min_floor)
        if false_candidate_budget <= 0:
            raise ValueError(f"false_candidate_budget must be > 0, got {false_candidate_budget}")
        self.budget = false_candidate_budget
        self.clock = clock
        if self.min_floor < SAFE_MIN_FLOOR:
            # Before the service serves anything: a lowered floor that leaves no record must not run.
            self._audit(
                "ConfigureServiceFloor",
                None,
                None,
                threshold=self.min_floor,
                details={"min_floor": self.min_floor, "safe_min_floor": SAFE_MIN_FLOOR, "allow_low_floor": True},
            )

    @property
    def default_floor(self) -> float:
        """The service minimum floor (older name): the default and the lowest threshold of every search."""
        return self.min_floor

    # ----------------------------------------------------------------------------------- collections
    def create_collection(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("CreateCollection", context, p):
            cid = v.collection_id(p)
            floor = v.percentage(p, "FaceMatchThresholdFloor", self.min_floor)
            if floor < self.min_floor:
                raise InvalidParameterException(
                    f"FaceMatchThresholdFloor can only be raised above the service floor {self.min_floor}, got {floor}"
                )
            review = v.boolean(p, "ReviewRequired", True)
            budget = _budget(p, None)
            record = CollectionRecord(cid, self.clock(), FACE_MODEL_VERSION, floor, review, budget)
            details = {"floor": floor, "review_required": review, "false_candidate_budget": budget}
            self._change(
                "CreateCollection",
                context,
                cid,
                lambda: self.store.create_collection(record),
                intent={"details": details},
                outcome=lambda _: {"details": details},
                undo=lambda _: self.store.delete_collection(cid),
            )
        return {"StatusCode": 200, "CollectionArn": self._arn(cid), "FaceModelVersion": FACE_MODEL_VERSION}

    def update_collection(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        """Not in Rekognition: change a collection's floor or ReviewRequired — the only way to, and audited with
        the old and the new values. A floor below the service minimum is refused."""
        with self._attempt("UpdateCollection", context, p):
            cid = v.collection_id(p)
            old = self.store.get_collection(cid)
            floor = v.percentage(p, "FaceMatchThresholdFloor", old.threshold_floor)
            if floor < self.min_floor:
                raise InvalidParameterException(
                    f"FaceMatchThresholdFloor {floor} is below the service minimum floor {self.min_floor}"
                )
            review = v.boolean(p, "ReviewRequired", old.review_required)
            budget = _budget(p, old.false_candidate_budget)
            new = CollectionRecord(cid, old.created_at, old.face_model_version, floor, review, budget)
            change = {
                "floor": {"old": old.threshold_floor, "new": floor},
                "review_required": {"old": old.review_required, "new": review},
                "false_candidate_budget": {"old": old.false_candidate_budget, "new": budget},
            }
            self._change(
                "UpdateCollection",
                context,
                cid,
                lambda: self.store.update_collection(new),
                intent={"threshold": floor, "details": change},
                outcome=lambda _: {"threshold": floor, "details": change},
                undo=lambda _: self.store.update_collection(old),
            )
        return {
            "StatusCode": 200,
            "FaceMatchThresholdFloor": floor,
            "ReviewRequired": review,
            "FalseCandidateBudget": budget if budget is not None else self.budget,
        }

    def describe_collection(self, **p: Any) -> dict[str, Any]:
        v.known_parameters("DescribeCollection", p)
        record = self.store.get_collection(v.collection_id(p))
        faces = self.store.count_faces(record.collection_id)
        default = self._default_threshold(record, faces)
        return {
            "FaceCount": faces,
            "UserCount": self.store.count_users(record.collection_id),
            "FaceModelVersion": record.face_model_version,
            "CollectionARN": self._arn(record.collection_id),
            "CreationTimestamp": record.created_at,
            "FaceMatchThresholdFloor": self._floor(record),  # what searches enforce
            "ReviewRequired": record.review_required,
            # Not in Rekognition: what a search of this collection risks at its size (collections/risk.py).
            "DefaultFaceMatchThreshold": default,
            "FalseCandidateBudget": self._budget(record),
            "RefusesThresholdsOverBudget": self._refuses_over_budget(record),
            "FalseMatchRisk": [risk.risk_at(t, faces) for t in sorted({self._floor(record), default})],
        }

    def _default_threshold(self, record: CollectionRecord, faces: int) -> float:
        """The threshold of a search that names none: within the false-candidate budget at the current size."""
        return risk.budgeted_threshold(faces, budget=self._budget(record), floor=self._floor(record))

    def _budget(self, record: CollectionRecord) -> float:
        """The collection's own false-candidate budget, else the service's."""
        return self.budget if record.false_candidate_budget is None else record.false_candidate_budget

    def _floor(self, record: CollectionRecord) -> float:
        """The collection's floor, never below the service's: a collection created when similarity 80 meant a
        stricter distance (before the LFW refit, docs/similarity.md) is held to today's service floor."""
        return max(record.threshold_floor, self.min_floor)

    @staticmethod
    def _refuses_over_budget(record: CollectionRecord) -> bool:
        return record.threshold_floor >= risk.IDENTIFICATION_FLOOR

    def list_collections(self, **p: Any) -> dict[str, Any]:
        v.known_parameters("ListCollections", p)
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
        with self._attempt("DeleteCollection", context, p):
            cid = v.collection_id(p)
            faces = self.store.count_faces(cid)
            self._change(
                "DeleteCollection",
                context,
                cid,
                lambda: self.store.delete_collection(cid),
                intent={"details": {"faces_to_delete": faces}},
                outcome=lambda _: {"details": {"faces_deleted": faces}},
            )
        return {"StatusCode": 200}

    # ------------------------------------------------------------------------------------------ faces
    def index_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("IndexFaces", context, p) as trace:
            return self._index_faces(context, p, trace)

    def _index_faces(self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
        cid = v.collection_id(p)
        self.store.get_collection(cid)  # unknown collection fails before any image work
        external = p.get("ExternalImageId")
        if external is not None:
            v.match(external, v.EXTERNAL_IMAGE_ID, "ExternalImageId")
        max_faces = v.integer(p, "MaxFaces", None, 1, None)
        quality = v.choice(p, "QualityFilter", "AUTO", QUALITY_FILTERS)
        attributes = _attributes(p)
        data, source = image_bytes(v.require(p, "Image"), self.s3)
        trace["image_sha256"] = hashlib.sha256(data).hexdigest()
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
        listed = [{"FaceId": r.face_id, "ExternalImageId": r.external_image_id} for r in records]
        details = {"source": source, "unindexed": len(unindexed), "already_indexed": len(records) - len(new)}

        def store_new() -> list[str]:
            if new:
                self.store.add_faces(cid, new)
            return [r.face_id for r in new]

        self._change(
            "IndexFaces",
            context,
            cid,
            store_new,
            intent={"image": analyzed, "results": listed, "details": {**details, "to_store": len(new)}},
            outcome=lambda added: {"image": analyzed, "results": listed, "details": {**details, "stored": len(added)}},
            undo=lambda added: self.store.delete_faces(cid, added) if added else None,
        )
        return shapes.index_faces_response(analyzed, face_records, unindexed)

    def list_faces(self, **p: Any) -> dict[str, Any]:
        v.known_parameters("ListFaces", p)
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
        """The intent record names every face about to be deleted; a deletion is not rolled back when its
        outcome cannot be recorded (erasing biometric data is the safe side), the caller gets the error."""
        with self._attempt("DeleteFaces", context, p):
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
            deleted = self._change(
                "DeleteFaces",
                context,
                cid,
                lambda: self.store.delete_faces(cid, deletable) if deletable else [],
                intent={"results": [{"FaceId": f} for f in deletable]},
                outcome=lambda done: {"results": [{"FaceId": f} for f in done]},
            )
        return {"DeletedFaces": deleted, "UnsuccessfulFaceDeletions": unsuccessful}

    def erase_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        """Not in Rekognition: delete a person for good — every face with an ExternalImageId, or every face of
        a user and the user itself. The one operation behind `facesearch faces delete --external-id/--user-id`
        and the API's EraseFaces, so each removes the same things and is audited alike. (S3 ObjectRemoved deletes
        only the removed photo's faces: one person's folder may hold several photos.)
        """
        with self._attempt("EraseFaces", context, p):
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

            def erase() -> list[str]:
                if user is not None and ids:
                    self.store.set_face_user(cid, ids, None)
                deleted: list[str] = []
                for start in range(0, len(ids), 4096):
                    deleted += self.store.delete_faces(cid, ids[start : start + 4096])
                if user is not None:
                    self.store.delete_user(cid, user)
                return deleted

            details = {"external_image_id": external} if external is not None else {}
            deleted = self._change(
                "EraseFaces",
                context,
                cid,
                erase,
                intent={"user_id": user, "results": [{"FaceId": f} for f in ids], "details": details},
                outcome=lambda done: {"user_id": user, "results": [{"FaceId": f} for f in done], "details": details},
            )
        return {"DeletedFaces": deleted, **({"DeletedUser": user} if user is not None else {})}

    def purge_deleted_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        """Not in Rekognition: make sure deleted faces' descriptors are gone from the backend's files (the
        embedded store erases them in DeleteFaces; OpenSearch keeps them in segments until this runs)."""
        with self._attempt("PurgeDeletedFaces", context, p):
            cid = v.collection_id(p)
            self.store.get_collection(cid)
            return self._change(
                "PurgeDeletedFaces",
                context,
                cid,
                lambda: self.store.purge_deleted(cid),
                intent={},
                outcome=lambda report: {"details": report},
            )

    # ----------------------------------------------------------------------------------------- search
    def search_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("SearchFaces", context, p) as trace:
            return self._search_faces(context, p, trace)

    def _search_faces(self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
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

    def search_by_descriptor(
        self,
        descriptor: np.ndarray,
        *,
        context: RequestContext | None = None,
        image_sha256: str | None = None,
        details: dict[str, Any] | None = None,
        **p: Any,
    ) -> dict[str, Any]:
        """Not an API operation (IN_PROCESS_ONLY): search with a descriptor the caller already computed — the video
        pipeline's tracks, which must not be detected and embedded again. Same rules as every search: the floor
        and service minimum, the false-candidate budget and its default, the match shape, the audit record
        (``SearchFacesByDescriptor``, with the frame's sha256 and where in the video the face was)."""
        with self._attempt("SearchFacesByDescriptor", context, p):
            cid = v.collection_id(p)
            collection = self.store.get_collection(cid)
            max_faces = v.count(p, "MaxFaces", 80, 1, MAX_SEARCH_FACES)
            threshold = self._threshold(collection, p, "FaceMatchThreshold")
            matches = self._matches(collection, self._search(cid, descriptor, max_faces, threshold), threshold)
            self._audit(
                "SearchFacesByDescriptor",
                context,
                cid,
                threshold=threshold,
                image_sha256=image_sha256,
                results=shapes.audit_matches(matches),
                details=details or {},
            )
            return {"FaceMatches": matches, "FaceModelVersion": FACE_MODEL_VERSION, "FaceMatchThreshold": threshold}

    def search_faces_by_image(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("SearchFacesByImage", context, p) as trace:
            return self._search_faces_by_image(context, p, trace)

    def _search_faces_by_image(
        self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]
    ) -> dict[str, Any]:
        cid = v.collection_id(p)
        collection = self.store.get_collection(cid)
        max_faces = v.count(p, "MaxFaces", 80, 1, MAX_SEARCH_FACES)
        threshold = self._threshold(collection, p, "FaceMatchThreshold")
        quality = v.choice(p, "QualityFilter", "NONE", QUALITY_FILTERS)
        all_faces = v.boolean(p, "AllFaces", False)
        data, source = image_bytes(v.require(p, "Image"), self.s3)
        trace["image_sha256"] = hashlib.sha256(data).hexdigest()
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
        with self._attempt("CompareFaces", context, p) as trace:
            return self._compare_faces(context, p, trace)

    def _compare_faces(
        self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]
    ) -> dict[str, Any]:
        threshold = v.percentage(p, "SimilarityThreshold", self.min_floor)
        if threshold < self.min_floor:
            raise InvalidParameterException(
                f"SimilarityThreshold {threshold} is below the service floor {self.min_floor}"
            )
        quality = v.choice(p, "QualityFilter", "NONE", QUALITY_FILTERS)
        src_bytes, _ = image_bytes(v.require(p, "SourceImage"), self.s3, "SourceImage")
        trace["image_sha256"] = hashlib.sha256(src_bytes).hexdigest()
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
        v.known_parameters("DetectFaces", p)
        attributes = _attributes(p, "Attributes")
        data, _ = image_bytes(v.require(p, "Image"), self.s3)
        analyzed = self.engine.analyze(data, embed=False, max_faces=MAX_FACES_PER_IMAGE)
        return {
            "FaceDetails": [face_detail(f, analyzed.width, analyzed.height, attributes) for f in analyzed.faces],
            "OrientationCorrection": shapes.orientation(analyzed),
        }

    # -------------------------------------------------------------------------------------- internals
    def _arn(self, cid: str) -> str:
        return f"{self.arn_prefix}:collection/{cid}"

    def _threshold(self, collection: CollectionRecord, p: dict[str, Any], name: str) -> float:
        """The search's threshold: the request's, checked against the floor (at least the service minimum and the
        collection's floor, whatever the stored record says) and, in identification collections, against the
        false-candidate budget; or the budgeted default when the request names none."""
        if p.get(name) is None:
            return self._default_threshold(collection, self.store.count_faces(collection.collection_id))
        floor = self._floor(collection)
        threshold = v.percentage(p, name, floor)
        if threshold < floor:
            whose = (
                f"collection {collection.collection_id}'s floor"
                if collection.threshold_floor >= self.min_floor
                else "the service minimum floor"
            )
            raise InvalidParameterException(f"{name} {threshold} is below {whose} of {floor:g}")
        if not self._refuses_over_budget(collection):
            return threshold  # an explicit threshold at or above the floor needs no face count
        budget = self._budget(collection)
        faces = self.store.count_faces(collection.collection_id)
        if risk.exceeds_budget(threshold, faces, budget):
            expected = risk.expected_false_candidates(threshold, faces)
            raise InvalidParameterException(
                f"{name} {threshold} would return {expected:.3g} false candidates on average per search of someone "
                f"not in collection {collection.collection_id} ({faces} faces × FMR "
                f"{risk.fmr_at_similarity(threshold):.3g} per comparison), over its limit of {budget}; use "
                f"≥ {self._default_threshold(collection, faces)} or omit {name} for the budgeted default"
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

    def _all_faces(self, cid: str, uid: str | None = None) -> list[FaceRecord]:
        faces: list[FaceRecord] = []
        after = None
        while True:
            page = self.store.list_faces(cid, after=after, limit=1000, user_id=uid)
            faces.extend(page)
            if len(page) < 1000:
                return faces
            after = page[-1].face_id


# FaceIds and ImageIds are name-based UUIDs (RFC 4122 v5) of what identifies them, so indexing the same image
# again under the same ExternalImageId (an S3 re-delivery, a retried request) names the same faces.
_ID_NAMESPACE = uuid.UUID("6f1c5e0a-3b7d-5d2e-9a51-4f0d6c1b2a90")


def _image_id(cid: str, external: str | None, sha256: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"image\0{cid}\0{external or ''}\0{sha256}"))


def _face_id(image_id: str, number: int) -> str:
    """``number`` is the face's rank in the engine's largest-first order, which is deterministic per image."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"face\0{image_id}\0{number}"))


def _budget(p: dict[str, Any], default: float | None) -> float | None:
    """``FalseCandidateBudget``: expected false candidates per stranger search, a positive number (or absent)."""
    value = p.get("FalseCandidateBudget", default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
        raise InvalidParameterException(f"FalseCandidateBudget must be a number in (0, 1000], got {value!r}")
    return float(value)


def _attributes(p: dict[str, Any], name: str = "DetectionAttributes") -> str:
    values = p.get(name) or ["DEFAULT"]
    if not isinstance(values, list) or any(x not in ("DEFAULT", "ALL") for x in values):
        raise InvalidParameterException(f"{name} must be a list of DEFAULT or ALL")
    return "ALL" if "ALL" in values else "DEFAULT"


__all__ = ["FaceCollectionService", "RequestContext"]
