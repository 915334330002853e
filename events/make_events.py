"""Writes the sample events in this folder (run once; the JSON files are committed). Shapes follow what AWS
sends: S3 event notifications (eventVersion 2.1) inside SQS messages, S3's s3:TestEvent, and API Gateway REST
API proxy requests with IAM auth (requestContext.identity.userArn)."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

HERE = Path(__file__).parent
REGION = "us-east-1"
ACCOUNT = "123456789012"
GALLERY = "facesearch-gallery"
QUERIES = "facesearch-queries"


def s3_record(event_name: str, bucket: str, key: str, *, version: str | None, etag: str | None, size: int | None):
    obj: dict = {"key": key, "sequencer": "0062E99A88DC407460"}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["eTag"] = etag
    if version is not None:
        obj["versionId"] = version
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2026-11-30T12:00:00.000Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAQEXAMPLEUPLOADER"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": f"{bucket}-to-queue",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def sqs_event(bodies: list[str], queue: str) -> dict:
    records = []
    for n, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"059f36b4-87a3-44ab-83d2-66196{n:07d}",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764504000000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1764504000010",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def apigw_event(operation: str, body: dict) -> dict:
    text = json.dumps(body)
    headers = {
        "Accept-Encoding": "identity",
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261130/us-east-1/execute-api/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        ),
        "Content-Type": "application/x-amz-json-1.1",
        "Host": "abc123defg.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "Boto3/1.35.0 md/Botocore#1.35.0 ua/2.0 os/linux lang/python#3.11.10",
        "X-Amz-Date": "20261130T120000Z",
        "X-Amz-Target": f"RekognitionService.{operation}",
        "X-Amzn-Trace-Id": "Root=1-674b0000-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    return {
        "resource": "/",
        "path": "/",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "x1y2z3",
            "resourcePath": "/",
            "httpMethod": "POST",
            "extendedRequestId": "CXqE7FH5oAMFo1A=",
            "requestTime": "30/Nov/2026:12:00:00 +0000",
            "path": "/prod/",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abc123defg",
            "requestTimeEpoch": 1764504000000,
            "requestId": f"c6af9ac6-7b61-11e6-9a41-93e8{zlib.crc32(operation.encode()) % 10**8:08d}",
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": ACCOUNT,
                "cognitoIdentityId": None,
                "caller": "AIDAQEXAMPLEANALYST",
                "sourceIp": "203.0.113.10",
                "principalOrgId": None,
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": f"arn:aws:iam::{ACCOUNT}:user/analyst",
                "userAgent": headers["User-Agent"],
                "user": "AIDAQEXAMPLEANALYST",
            },
            "domainName": headers["Host"],
            "apiId": "abc123defg",
        },
        "body": text,
        "isBase64Encoded": False,
    }


FACE = "5e0c3f9a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
IMAGE = {"S3Object": {"Bucket": GALLERY, "Name": "collections/staff/alice/portrait.jpg"}}
QUERY = {"S3Object": {"Bucket": QUERIES, "Name": "staff/visitor.jpg"}}
API = {
    "CreateCollection": {"CollectionId": "staff"},
    "DescribeCollection": {"CollectionId": "staff"},
    "UpdateCollection": {"CollectionId": "staff", "FaceMatchThresholdFloor": 95},
    "ListCollections": {"MaxResults": 10},
    "IndexFaces": {"CollectionId": "staff", "Image": IMAGE, "ExternalImageId": "alice", "QualityFilter": "AUTO"},
    "ListFaces": {"CollectionId": "staff", "MaxResults": 100},
    "SearchFaces": {"CollectionId": "staff", "FaceId": FACE, "FaceMatchThreshold": 90, "MaxFaces": 5},
    "SearchFacesByImage": {"CollectionId": "staff", "Image": QUERY, "FaceMatchThreshold": 90, "MaxFaces": 5},
    "CompareFaces": {"SourceImage": QUERY, "TargetImage": IMAGE, "SimilarityThreshold": 90},
    "DetectFaces": {"Image": QUERY, "Attributes": ["DEFAULT"]},
    "CreateUser": {"CollectionId": "staff", "UserId": "alice"},
    "ListUsers": {"CollectionId": "staff"},
    "AssociateFaces": {"CollectionId": "staff", "UserId": "alice", "FaceIds": [FACE]},
    "SearchUsers": {"CollectionId": "staff", "FaceId": FACE, "UserMatchThreshold": 90},
    "SearchUsersByImage": {"CollectionId": "staff", "Image": QUERY, "UserMatchThreshold": 90},
    "DisassociateFaces": {"CollectionId": "staff", "UserId": "alice", "FaceIds": [FACE]},
    "DeleteUser": {"CollectionId": "staff", "UserId": "alice"},
    "DeleteFaces": {"CollectionId": "staff", "FaceIds": [FACE]},
    "EraseFaces": {"CollectionId": "staff", "ExternalImageId": "alice"},
    "PurgeDeletedFaces": {"CollectionId": "staff"},
    "DeleteCollection": {"CollectionId": "staff"},
}


def write(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=2) + "\n")


def main() -> None:
    version = "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    put = s3_record(
        "ObjectCreated:Put",
        GALLERY,
        "collections/staff/alice/portrait+1.jpg",
        version=version,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        size=52311,
    )
    delete = s3_record(
        "ObjectRemoved:Delete", GALLERY, "collections/staff/alice/portrait+1.jpg", version=version, etag=None, size=None
    )
    marker = s3_record(
        "ObjectRemoved:DeleteMarkerCreated",
        GALLERY,
        "collections/staff/alice/portrait+1.jpg",
        version="1i4ifmVVfJ_.HjpPZNB6lBpqVwxYbMWV",
        etag=None,
        size=None,
    )
    query = s3_record(
        "ObjectCreated:Put",
        QUERIES,
        "staff/visitor.jpg",
        version=None,
        etag="9b2cf535f27731c974343645a3985328",
        size=48211,
    )
    test = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-30T12:00:00.000Z",
        "Bucket": GALLERY,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    write(HERE / "sqs_s3_gallery_put.json", sqs_event([json.dumps({"Records": [put]})], "facesearch-gallery-events"))
    write(
        HERE / "sqs_s3_gallery_delete.json", sqs_event([json.dumps({"Records": [delete]})], "facesearch-gallery-events")
    )
    write(
        HERE / "sqs_s3_gallery_delete_marker.json",
        sqs_event([json.dumps({"Records": [marker]})], "facesearch-gallery-events"),
    )
    write(HERE / "sqs_s3_test_event.json", sqs_event([json.dumps(test)], "facesearch-gallery-events"))
    write(HERE / "sqs_s3_query_put.json", sqs_event([json.dumps({"Records": [query]})], "facesearch-query-events"))
    for operation, body in API.items():
        write(HERE / "apigw" / f"{operation}.json", apigw_event(operation, body))


if __name__ == "__main__":
    main()
