"""The whole delivery path in moto: S3 notifications into an SQS queue with a redrive policy, polled the way
Lambda's SQS event source mapping does (receive up to 10, invoke, delete what did not fail), into index_faces.

The messages are the ones moto's S3 sends (its own test event and ObjectCreated shapes), not our samples; what
must hold: bad objects are acknowledged with a report, a message that can never succeed (malformed, or S3
unreachable every time) is retried and ends in the dead-letter queue after maxReceiveCount — never dropped.
No model: nothing here reaches face detection.
"""

from __future__ import annotations

import json

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.config import Config
from functions_harness import (  # noqa: F401  (aws is a fixture)
    GALLERY,
    REGION,
    RESULTS,
    DecodeOnlyEngine,
    aws,
    jpeg_bytes,
    lambda_context,
    load_function,
    read_json,
    versions,
)

MAX_RECEIVES = 3


@pytest.fixture
def queues(aws):  # noqa: F811
    sqs = aws["sqs"]
    dlq = sqs.create_queue(QueueName="gallery-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)})
    # Visibility 0: a failed message is visible again at once, so a test needs no sleeping.
    url = sqs.create_queue(QueueName="gallery-events", Attributes={"VisibilityTimeout": "0", "RedrivePolicy": redrive})
    url = url["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["s3"].put_bucket_notification_configuration(
        Bucket=GALLERY,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]
        },
    )
    return {"url": url, "arn": arn, "dlq": dlq}


@pytest.fixture
def app(aws):  # noqa: F811
    module = load_function("index_faces")
    module.runtime.service.engine = DecodeOnlyEngine()
    module.runtime.service.create_collection(CollectionId="staff")
    return module


def poll(sqs, queue: dict, handler, rounds: int) -> list[dict]:
    """What the event source mapping does, ``rounds`` times; returns each invocation's outcome."""
    outcomes = []
    for _ in range(rounds):
        messages = sqs.receive_message(
            QueueUrl=queue["url"], MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        event = {"Records": [_record(m, queue["arn"]) for m in messages]}
        try:
            failed = {f["itemIdentifier"] for f in handler(event, lambda_context())["batchItemFailures"]}
        except BatchProcessingError:  # every record failed: the whole batch goes back
            failed = {m["MessageId"] for m in messages}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue["url"], ReceiptHandle=m["ReceiptHandle"])
        outcomes.append({"received": len(messages), "failed": len(failed)})
    return outcomes


def _record(message: dict, arn: str) -> dict:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": REGION,
    }


def dead_letters(sqs, queue: dict) -> list[str]:
    messages = sqs.receive_message(QueueUrl=queue["dlq"], MaxNumberOfMessages=10).get("Messages", [])
    return [m["Body"] for m in messages]


def test_the_configuration_test_event_and_bad_uploads_are_acknowledged_with_reports(app, aws, queues):  # noqa: F811
    s3 = aws["s3"]
    s3.put_object(Bucket=GALLERY, Key="collections/staff/alice/notes 1.txt", Body=b"not a photo")
    s3.put_object(Bucket=GALLERY, Key="loose.jpg", Body=jpeg_bytes())
    outcomes = poll(aws["sqs"], queues, app.handler, rounds=5)
    assert sum(o["received"] for o in outcomes) == 3 and sum(o["failed"] for o in outcomes) == 0
    assert read_json(s3, RESULTS, "reports/collections/staff/alice/notes 1.txt.json")["Error"]["Code"] == (
        "InvalidImageFormatException"
    )
    assert read_json(s3, RESULTS, "reports/loose.jpg.json")["Error"]["Code"] == "InvalidParameterException"
    assert dead_letters(aws["sqs"], queues) == []


def test_a_malformed_message_is_retried_then_dead_lettered_while_its_neighbours_complete(app, aws, queues):  # noqa: F811
    aws["sqs"].send_message(QueueUrl=queues["url"], MessageBody='{"Records": [{"eventName": "ObjectCreated:Put"}]}')
    aws["s3"].put_object(Bucket=GALLERY, Key="collections/staff/bob/b.jpg", Body=b"garbage")
    poll(aws["sqs"], queues, app.handler, rounds=MAX_RECEIVES + 3)
    assert dead_letters(aws["sqs"], queues) == ['{"Records": [{"eventName": "ObjectCreated:Put"}]}']
    assert versions(aws["s3"], RESULTS, "reports/collections/staff/bob/b.jpg.json") == 1


def test_an_upload_that_fails_transiently_every_time_ends_in_the_dead_letter_queue(app, aws, queues):  # noqa: F811
    assert poll(aws["sqs"], queues, app.handler, rounds=1) == [{"received": 1, "failed": 0}]  # the test event
    # Not an image: with S3 reachable this would be acknowledged with a report at the first try.
    aws["s3"].put_object(Bucket=GALLERY, Key="collections/staff/carol/c.jpg", Body=b"garbage")
    config = Config(retries={"max_attempts": 1}, connect_timeout=1)
    app.indexer.s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9", config=config)  # S3 unreachable
    poll(aws["sqs"], queues, app.handler, rounds=MAX_RECEIVES + 3)
    [body] = dead_letters(aws["sqs"], queues)
    assert json.loads(body)["Records"][0]["s3"]["object"]["key"].endswith("c.jpg")
    assert versions(aws["s3"], RESULTS, "reports/collections/staff/carol/c.jpg.json") == 0
