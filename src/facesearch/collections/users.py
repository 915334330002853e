"""Rekognition's user operations (CreateUser … SearchUsersByImage): a user groups the faces of one person, so a
search can answer "which person" instead of "which photo". A mixin of ``FaceCollectionService``: the store, the
engine, the thresholds and the audit trail are the service's."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from facesearch.collections import shapes
from facesearch.collections import validation as v
from facesearch.collections.images import image_bytes
from facesearch.collections.pagination import decode_token, encode_token
from facesearch.collections.shapes import face_detail
from facesearch.collections.trail import AuditTrail, RequestContext
from facesearch.engine.similarity import similarity_from_distance
from facesearch.engine.types import FACE_MODEL_VERSION, QualityFilter
from facesearch.errors import ConflictException, InvalidParameterException, ResourceNotFoundException
from facesearch.store.base import VectorStore
from facesearch.store.records import CollectionRecord, FaceRecord, Neighbor, UserRecord

MAX_SEARCH_FACES = 4096
MAX_FACES_PER_IMAGE = 100
MAX_USERS = 500
QUALITY_FILTERS = tuple(q.value for q in QualityFilter)


class UserOperations(AuditTrail):
    store: VectorStore
    engine: Any
    s3: Any
    clock: Callable[[], datetime]

    if TYPE_CHECKING:  # the service's own, used by the user searches

        def _threshold(self, collection: CollectionRecord, p: dict[str, Any], name: str) -> float: ...
        def _search(self, cid: str, vector: np.ndarray | None, k: int, threshold: float) -> list[Neighbor]: ...
        def _all_faces(self, cid: str, uid: str | None = None) -> list[FaceRecord]: ...

    def create_user(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("CreateUser", context, p) as trace:
            return self._create_user(context, p, trace)

    def _create_user(self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
        cid = v.collection_id(p)
        uid = v.user_id(p)
        self.store.get_collection(cid)
        if self.store.get_user(cid, uid) is not None:
            raise ConflictException(f"A user with id {uid} already exists in collection {cid}")
        self._change(
            "CreateUser",
            context,
            cid,
            lambda: self.store.create_user(cid, UserRecord(uid, self.clock(), "CREATED")),
            intent={"user_id": uid},
            outcome=lambda _: {"user_id": uid},
            undo=lambda _: self.store.delete_user(cid, uid),
        )
        return {}

    def delete_user(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("DeleteUser", context, p) as trace:
            return self._delete_user(context, p, trace)

    def _delete_user(self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
        cid = v.collection_id(p)
        uid = v.user_id(p)
        self._user(cid, uid)
        self._change(
            "DeleteUser",
            context,
            cid,
            lambda: self.store.delete_user(cid, uid),
            intent={"user_id": uid},
            outcome=lambda _: {"user_id": uid},
        )
        return {}

    def list_users(self, **p: Any) -> dict[str, Any]:
        v.known_parameters("ListUsers", p)
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
        with self._attempt("AssociateFaces", context, p) as trace:
            return self._associate_faces(context, p, trace)

    def _associate_faces(
        self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]
    ) -> dict[str, Any]:
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
        self._change(
            "AssociateFaces",
            context,
            cid,
            lambda: self.store.set_face_user(cid, associated, uid) if associated else None,
            intent={"user_id": uid, "results": [{"FaceId": f} for f in associated]},
            outcome=lambda _: {"user_id": uid, "results": [{"FaceId": f} for f in associated]},
        )
        return {
            "AssociatedFaces": [{"FaceId": f} for f in associated],
            "UnsuccessfulFaceAssociations": unsuccessful,
            "UserStatus": self._user(cid, uid).status,
        }

    def disassociate_faces(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("DisassociateFaces", context, p) as trace:
            return self._disassociate_faces(context, p, trace)

    def _disassociate_faces(
        self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]
    ) -> dict[str, Any]:
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
        self._change(
            "DisassociateFaces",
            context,
            cid,
            lambda: self.store.set_face_user(cid, done, None) if done else None,
            intent={"user_id": uid, "results": [{"FaceId": f} for f in done]},
            outcome=lambda _: {"user_id": uid, "results": [{"FaceId": f} for f in done]},
        )
        return {
            "DisassociatedFaces": [{"FaceId": f} for f in done],
            "UnsuccessfulFaceDisassociations": unsuccessful,
            "UserStatus": self._user(cid, uid).status,
        }

    def search_users(self, *, context: RequestContext | None = None, **p: Any) -> dict[str, Any]:
        with self._attempt("SearchUsers", context, p) as trace:
            return self._search_users(context, p, trace)

    def _search_users(self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]) -> dict[str, Any]:
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
        with self._attempt("SearchUsersByImage", context, p) as trace:
            return self._search_users_by_image(context, p, trace)

    def _search_users_by_image(
        self, context: RequestContext | None, p: dict[str, Any], trace: dict[str, Any]
    ) -> dict[str, Any]:
        cid = v.collection_id(p)
        collection = self.store.get_collection(cid)
        threshold = self._threshold(collection, p, "UserMatchThreshold")
        max_users = v.count(p, "MaxUsers", 5, 1, MAX_USERS)
        quality = v.choice(p, "QualityFilter", "NONE", QUALITY_FILTERS)
        data, source = image_bytes(v.require(p, "Image"), self.s3)
        trace["image_sha256"] = hashlib.sha256(data).hexdigest()
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

    def _user(self, cid: str, uid: str) -> UserRecord:
        self.store.get_collection(cid)
        user = self.store.get_user(cid, uid)
        if user is None:
            raise ResourceNotFoundException(f"user {uid} does not exist in collection {cid}")
        return user

    def _user_faces(self, cid: str, uid: str) -> list[FaceRecord]:
        return self._all_faces(cid, uid)

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
