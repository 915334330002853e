"""The collection service behaves like Rekognition's face API, on real photos, with our accountability rules.

Runs on the embedded store (fast, no server); tests/integration/test_backends_agree.py runs the same engine
against OpenSearch.
"""

from __future__ import annotations

import io
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from facesearch.audit import MemoryAuditSink
from facesearch.collections.service import RequestContext
from facesearch.errors import (
    ConflictException,
    ImageTooLargeException,
    InvalidImageFormatException,
    InvalidPaginationTokenException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from facesearch.store.embedded import EmbeddedStore
from facesearch.wiring import build_service


@pytest.fixture
def audit() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture
def service(engine, tmp_path: Path, audit: MemoryAuditSink):
    store = EmbeddedStore(tmp_path / "store")
    yield build_service(engine=engine, store=store, audit=audit)
    store.close()


@pytest.fixture
def photo(faces_dev: Path):
    def load(name: str) -> dict:
        return {"Bytes": (faces_dev / "images" / name).read_bytes()}

    return load


def blank_jpeg() -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 130, 140)).save(buf, "JPEG")
    return {"Bytes": buf.getvalue()}


def index(service, photo, names: list[str], collection: str = "c") -> dict[str, str]:
    ids = {}
    for name in names:
        out = service.index_faces(CollectionId=collection, Image=photo(name), ExternalImageId=name, MaxFaces=1)
        ids[name] = out["FaceRecords"][0]["Face"]["FaceId"]
    return ids


# person01: img1, img2, img4, img5; person07 (Matt Damon): img29..31; person08: img35
PERSON01 = ["img1.jpg", "img2.jpg", "img4.jpg"]


class TestCollections:
    def test_create_describe_list_delete(self, service):
        out = service.create_collection(CollectionId="gallery")
        assert out["StatusCode"] == 200 and out["CollectionArn"].endswith(":collection/gallery")
        described = service.describe_collection(CollectionId="gallery")
        assert described["FaceCount"] == 0 and described["UserCount"] == 0
        assert described["FaceModelVersion"] == out["FaceModelVersion"]
        assert "CreationTimestamp" in described and described["FaceMatchThresholdFloor"] == 90.0
        assert service.list_collections()["CollectionIds"] == ["gallery"]
        assert service.delete_collection(CollectionId="gallery")["StatusCode"] == 200
        assert service.list_collections()["CollectionIds"] == []

    def test_duplicate_collection_is_refused(self, service):
        service.create_collection(CollectionId="c")
        with pytest.raises(ResourceAlreadyExistsException):
            service.create_collection(CollectionId="c")

    @pytest.mark.parametrize("bad", ["", "has space", "x" * 256, "slash/no", None])
    def test_invalid_collection_ids_are_refused(self, service, bad):
        with pytest.raises(InvalidParameterException):
            service.create_collection(CollectionId=bad)

    def test_unknown_collection_is_not_found_everywhere(self, service, photo):
        for call in (
            lambda: service.describe_collection(CollectionId="nope"),
            lambda: service.delete_collection(CollectionId="nope"),
            lambda: service.index_faces(CollectionId="nope", Image=photo("img1.jpg")),
            lambda: service.search_faces_by_image(CollectionId="nope", Image=photo("img1.jpg")),
            lambda: service.list_faces(CollectionId="nope"),
        ):
            with pytest.raises(ResourceNotFoundException):
                call()

    def test_list_collections_paginates(self, service):
        for i in range(5):
            service.create_collection(CollectionId=f"c{i}")
        first = service.list_collections(MaxResults=2)
        assert first["CollectionIds"] == ["c0", "c1"] and first["NextToken"]
        rest = service.list_collections(MaxResults=10, NextToken=first["NextToken"])
        assert rest["CollectionIds"] == ["c2", "c3", "c4"] and "NextToken" not in rest

    def test_floor_can_be_raised_but_not_lowered(self, service):
        service.create_collection(CollectionId="strict", FaceMatchThresholdFloor=99)
        assert service.describe_collection(CollectionId="strict")["FaceMatchThresholdFloor"] == 99
        with pytest.raises(InvalidParameterException, match="floor"):
            service.create_collection(CollectionId="lax", FaceMatchThresholdFloor=50)


class TestIndexFaces:
    def test_index_returns_face_records_with_rekognition_fields(self, service, photo):
        service.create_collection(CollectionId="c")
        out = service.index_faces(CollectionId="c", Image=photo("img1.jpg"), ExternalImageId="img1")
        assert len(out["FaceRecords"]) == 1
        face = out["FaceRecords"][0]["Face"]
        assert set(face) >= {"FaceId", "BoundingBox", "ImageId", "ExternalImageId", "Confidence"}
        assert 0 < face["BoundingBox"]["Width"] <= 1 and face["Confidence"] > 90
        assert out["FaceRecords"][0]["FaceDetail"]["Landmarks"][0]["Type"] == "eyeLeft"
        assert service.describe_collection(CollectionId="c")["FaceCount"] == 1

    def test_indexing_the_same_image_again_stores_no_second_face(self, service, photo, audit):
        """At-least-once delivery (S3 → SQS → Lambda) and retries re-index images: same FaceIds, one face each."""
        service.create_collection(CollectionId="c")
        first = service.index_faces(CollectionId="c", Image=photo("couple.jpg"), ExternalImageId="couple")
        again = service.index_faces(CollectionId="c", Image=photo("couple.jpg"), ExternalImageId="couple")
        ids = [r["Face"]["FaceId"] for r in first["FaceRecords"]]
        assert len(ids) == 2 and ids == [r["Face"]["FaceId"] for r in again["FaceRecords"]]
        assert service.describe_collection(CollectionId="c")["FaceCount"] == 2
        assert audit.records[-1].details["already_indexed"] == 2

    def test_the_same_image_under_another_external_id_is_another_face(self, service, photo):
        service.create_collection(CollectionId="c")
        a = service.index_faces(CollectionId="c", Image=photo("img1.jpg"), ExternalImageId="a")
        b = service.index_faces(CollectionId="c", Image=photo("img1.jpg"), ExternalImageId="b")
        assert a["FaceRecords"][0]["Face"]["FaceId"] != b["FaceRecords"][0]["Face"]["FaceId"]
        assert service.describe_collection(CollectionId="c")["FaceCount"] == 2

    def test_max_faces_reports_the_rest_as_exceeding(self, service, photo):
        service.create_collection(CollectionId="c")
        out = service.index_faces(CollectionId="c", Image=photo("couple.jpg"), MaxFaces=1, QualityFilter="NONE")
        assert len(out["FaceRecords"]) == 1
        assert [u["Reasons"] for u in out["UnindexedFaces"]] == [["EXCEEDS_MAX_FACES"]]

    @pytest.mark.parametrize("max_faces", [0, -1, "2"])
    def test_max_faces_must_be_positive_integer(self, service, photo, max_faces):
        service.create_collection(CollectionId="c")
        with pytest.raises(InvalidParameterException, match="MaxFaces"):
            service.index_faces(CollectionId="c", Image=photo("img1.jpg"), MaxFaces=max_faces)

    def test_quality_filter_rejects_small_blurry_faces_with_reasons(self, service, photo):
        service.create_collection(CollectionId="c")
        out = service.index_faces(CollectionId="c", Image=photo("img54.jpg"), QualityFilter="AUTO")
        assert len(out["FaceRecords"]) == 1  # the subject; the blurred bystanders are refused
        assert out["UnindexedFaces"] and all("LOW_SHARPNESS" in u["Reasons"] for u in out["UnindexedFaces"])

    def test_image_without_a_face_indexes_nothing(self, service):
        service.create_collection(CollectionId="c")
        out = service.index_faces(CollectionId="c", Image=blank_jpeg())
        assert out["FaceRecords"] == [] and out["UnindexedFaces"] == []

    def test_bad_images_raise_rekognition_errors_and_store_nothing(self, service):
        service.create_collection(CollectionId="c")
        with pytest.raises(InvalidImageFormatException):
            service.index_faces(CollectionId="c", Image={"Bytes": b"not an image"})
        with pytest.raises(ImageTooLargeException):
            service.index_faces(CollectionId="c", Image={"Bytes": b"\xff" * (5 * 1024 * 1024 + 1)})
        with pytest.raises(InvalidParameterException):
            service.index_faces(CollectionId="c", Image={})
        assert service.describe_collection(CollectionId="c")["FaceCount"] == 0

    def test_bad_external_image_id_is_refused(self, service, photo):
        service.create_collection(CollectionId="c")
        with pytest.raises(InvalidParameterException, match="ExternalImageId"):
            service.index_faces(CollectionId="c", Image=photo("img1.jpg"), ExternalImageId="no spaces allowed")

    def test_index_from_s3(self, engine, tmp_path, faces_dev):
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="gallery")
            s3.put_object(Bucket="gallery", Key="people/img1.jpg", Body=(faces_dev / "images/img1.jpg").read_bytes())
            with EmbeddedStore(tmp_path / "s3store") as store:
                svc = build_service(engine=engine, store=store, audit=MemoryAuditSink(), s3_client=s3)
                svc.create_collection(CollectionId="c")
                out = svc.index_faces(
                    CollectionId="c", Image={"S3Object": {"Bucket": "gallery", "Name": "people/img1.jpg"}}
                )
                assert len(out["FaceRecords"]) == 1
                face = store.get_faces("c", [out["FaceRecords"][0]["Face"]["FaceId"]])
                assert next(iter(face.values())).source == "s3://gallery/people/img1.jpg"
                with pytest.raises(InvalidS3ObjectException, match=r"s3://gallery/missing\.jpg"):
                    svc.index_faces(CollectionId="c", Image={"S3Object": {"Bucket": "gallery", "Name": "missing.jpg"}})


class TestSearch:
    def test_search_by_image_finds_the_same_person_and_not_strangers(self, service, photo):
        service.create_collection(CollectionId="c")
        index(service, photo, [*PERSON01, "img29.jpg"])
        out = service.search_faces_by_image(CollectionId="c", Image=photo("img5.jpg"))  # person01, not indexed
        found = {m["Face"]["ExternalImageId"] for m in out["FaceMatches"]}
        assert found == set(PERSON01)
        assert all(m["Similarity"] >= 80 for m in out["FaceMatches"])
        sims = [m["Similarity"] for m in out["FaceMatches"]]
        assert sims == sorted(sims, reverse=True)

    def test_every_match_says_why_and_asks_for_review(self, service, photo):
        service.create_collection(CollectionId="c")
        index(service, photo, PERSON01)
        match = service.search_faces_by_image(CollectionId="c", Image=photo("img5.jpg"))["FaceMatches"][0]
        assert match["ReviewRequired"] is True
        explanation = match["MatchExplanation"]
        assert explanation["Distance"] <= explanation["MaxDistance"] and explanation["Source"].startswith("sha256:")

    def test_review_flag_follows_the_collection(self, service, photo):
        service.create_collection(CollectionId="c", ReviewRequired=False)
        index(service, photo, PERSON01)
        match = service.search_faces_by_image(CollectionId="c", Image=photo("img5.jpg"))["FaceMatches"][0]
        assert match["ReviewRequired"] is False

    def test_search_by_face_id_excludes_the_face_itself(self, service, photo):
        service.create_collection(CollectionId="c")
        ids = index(service, photo, PERSON01)
        out = service.search_faces(CollectionId="c", FaceId=ids["img1.jpg"])
        assert out["SearchedFaceId"] == ids["img1.jpg"]
        assert {m["Face"]["FaceId"] for m in out["FaceMatches"]} == {ids["img2.jpg"], ids["img4.jpg"]}

    def test_search_every_face_in_a_group_photo(self, service, photo):
        service.create_collection(CollectionId="c")
        index(service, photo, PERSON01)
        out = service.search_faces_by_image(CollectionId="c", Image=photo("couple.jpg"), AllFaces=True)
        assert len(out["SearchedFaces"]) == 2
        matched = [f for f in out["SearchedFaces"] if f["FaceMatches"]]
        assert len(matched) == 1  # person01 is one of the couple; the other is a stranger
        assert out["FaceMatches"] == out["SearchedFaces"][0]["FaceMatches"]  # Rekognition fields = largest face

    def test_threshold_rules(self, service, photo):
        service.create_collection(CollectionId="c", FaceMatchThresholdFloor=99)
        index(service, photo, PERSON01)
        with pytest.raises(InvalidParameterException, match="floor of 99"):
            service.search_faces_by_image(CollectionId="c", Image=photo("img5.jpg"), FaceMatchThreshold=90)
        for bad in (-1, 100.5, "80"):
            with pytest.raises(InvalidParameterException):
                service.search_faces_by_image(CollectionId="c", Image=photo("img5.jpg"), FaceMatchThreshold=bad)
        strict = service.search_faces_by_image(CollectionId="c", Image=photo("img5.jpg"))  # defaults to the floor
        assert all(m["Similarity"] >= 99 for m in strict["FaceMatches"])

    def test_no_face_unknown_face_and_bad_face_id(self, service, photo):
        service.create_collection(CollectionId="c")
        with pytest.raises(InvalidParameterException, match="no faces"):
            service.search_faces_by_image(CollectionId="c", Image=blank_jpeg())
        with pytest.raises(InvalidParameterException, match="FaceId"):
            service.search_faces(CollectionId="c", FaceId="not-a-uuid")
        with pytest.raises(ResourceNotFoundException):
            service.search_faces(CollectionId="c", FaceId="00000000-0000-4000-8000-000000000000")
        with pytest.raises(InvalidParameterException, match="MaxFaces"):
            service.search_faces_by_image(CollectionId="c", Image=photo("img1.jpg"), MaxFaces=0)

    def test_every_search_is_audited(self, service, photo, audit):
        service.create_collection(CollectionId="c")
        index(service, photo, PERSON01)
        image = photo("img5.jpg")
        ctx = RequestContext(caller="arn:aws:iam::123:user/alice", purpose="case-42")
        out = service.search_faces_by_image(CollectionId="c", Image=image, context=ctx)
        record = audit.records[-1]
        assert record.operation == "SearchFacesByImage" and record.caller == ctx.caller
        assert record.purpose == "case-42" and record.threshold == 90.0 and record.collection_id == "c"
        import hashlib

        assert record.query_image_sha256 == hashlib.sha256(image["Bytes"]).hexdigest()
        assert [r["FaceId"] for r in record.results] == [m["Face"]["FaceId"] for m in out["FaceMatches"]]
        assert all("Similarity" in r for r in record.results)


class TestFacesAndUsers:
    def test_list_faces_paginates_and_rejects_foreign_tokens(self, service, photo):
        service.create_collection(CollectionId="c")
        ids = index(service, photo, PERSON01)
        seen, token = [], None
        while True:
            page = service.list_faces(CollectionId="c", MaxResults=2, **({"NextToken": token} if token else {}))
            seen += [f["FaceId"] for f in page["Faces"]]
            token = page.get("NextToken")
            if not token:
                break
        assert sorted(seen) == sorted(ids.values()) and len(seen) == 3
        with pytest.raises(InvalidPaginationTokenException):
            service.list_faces(CollectionId="c", NextToken="garbage!")

    def test_delete_faces_for_good(self, service, photo):
        service.create_collection(CollectionId="c")
        ids = index(service, photo, PERSON01)
        missing = "00000000-0000-4000-8000-000000000000"
        out = service.delete_faces(CollectionId="c", FaceIds=[ids["img1.jpg"], missing])
        assert out["DeletedFaces"] == [ids["img1.jpg"]]
        assert out["UnsuccessfulFaceDeletions"] == [{"FaceId": missing, "Reasons": ["FACE_NOT_FOUND"]}]
        matches = service.search_faces_by_image(CollectionId="c", Image=photo("img5.jpg"))["FaceMatches"]
        assert ids["img1.jpg"] not in {m["Face"]["FaceId"] for m in matches}

    def test_purging_deleted_faces_is_audited_and_unknown_collections_are_refused(self, service, photo, audit):
        service.create_collection(CollectionId="c")
        ids = index(service, photo, PERSON01)
        service.delete_faces(CollectionId="c", FaceIds=[ids["img1.jpg"]])
        ctx = RequestContext(caller="dpo", purpose="erasure request 7")
        report = service.purge_deleted_faces(CollectionId="c", context=ctx)
        assert report["purged"] is True  # the embedded store already erased the descriptor in DeleteFaces
        record = audit.records[-1]
        assert (record.operation, record.caller, record.purpose) == ("PurgeDeletedFaces", "dpo", "erasure request 7")
        with pytest.raises(ResourceNotFoundException):
            service.purge_deleted_faces(CollectionId="nope")

    def test_users_lifecycle(self, service, photo):
        service.create_collection(CollectionId="c")
        ids = index(service, photo, [*PERSON01, "img29.jpg"])
        service.create_user(CollectionId="c", UserId="person01")
        with pytest.raises(ConflictException):
            service.create_user(CollectionId="c", UserId="person01")
        assert service.list_users(CollectionId="c")["Users"] == [{"UserId": "person01", "UserStatus": "CREATED"}]

        out = service.associate_faces(CollectionId="c", UserId="person01", FaceIds=[ids[n] for n in PERSON01])
        assert len(out["AssociatedFaces"]) == 3 and out["UserStatus"] == "ACTIVE"
        # A stranger's face does not join the user: it doesn't match the user's faces.
        out = service.associate_faces(CollectionId="c", UserId="person01", FaceIds=[ids["img29.jpg"]])
        assert out["UnsuccessfulFaceAssociations"][0]["Reasons"] == ["LOW_MATCH_CONFIDENCE"]

        # An associated face can't be deleted behind the user's back.
        out = service.delete_faces(CollectionId="c", FaceIds=[ids["img1.jpg"]])
        assert out["UnsuccessfulFaceDeletions"][0]["Reasons"] == ["ASSOCIATED_TO_AN_EXISTING_USER"]

        found = service.search_users_by_image(CollectionId="c", Image=photo("img5.jpg"))
        assert [m["User"]["UserId"] for m in found["UserMatches"]] == ["person01"]
        by_face = service.search_users(CollectionId="c", FaceId=ids["img2.jpg"])
        assert by_face["SearchedFace"] == {"FaceId": ids["img2.jpg"]}

        out = service.disassociate_faces(CollectionId="c", UserId="person01", FaceIds=[ids[n] for n in PERSON01])
        assert len(out["DisassociatedFaces"]) == 3 and out["UserStatus"] == "CREATED"
        service.delete_user(CollectionId="c", UserId="person01")
        with pytest.raises(ResourceNotFoundException):
            service.delete_user(CollectionId="c", UserId="person01")


class TestCompareAndDetect:
    def test_compare_faces_same_and_different_people(self, service, photo):
        same = service.compare_faces(SourceImage=photo("img1.jpg"), TargetImage=photo("img2.jpg"))
        assert len(same["FaceMatches"]) == 1 and same["FaceMatches"][0]["Similarity"] >= 80
        different = service.compare_faces(SourceImage=photo("img1.jpg"), TargetImage=photo("img29.jpg"))
        assert different["FaceMatches"] == [] and len(different["UnmatchedFaces"]) == 1

    def test_compare_faces_refuses_thresholds_below_the_floor(self, service, photo):
        with pytest.raises(InvalidParameterException, match="floor"):
            service.compare_faces(SourceImage=photo("img1.jpg"), TargetImage=photo("img2.jpg"), SimilarityThreshold=10)

    def test_detect_faces_returns_face_details(self, service, photo):
        out = service.detect_faces(Image=photo("couple.jpg"))
        assert len(out["FaceDetails"]) == 2
        detail = out["FaceDetails"][0]
        assert {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"} <= set(detail)


@pytest.mark.slow
def test_a_crowd_photo_indexes_at_most_the_100_largest_faces(service, crowd_photo):
    service.create_collection(CollectionId="crowd")
    out = service.index_faces(CollectionId="crowd", Image={"Bytes": crowd_photo.read_bytes()}, QualityFilter="NONE")
    assert len(out["FaceRecords"]) == 100
    assert service.describe_collection(CollectionId="crowd")["FaceCount"] == 100
