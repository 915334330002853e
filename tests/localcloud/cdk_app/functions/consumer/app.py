"""SQS consumer of S3 notifications: records each uploaded object in the table (partial batch failures)."""

import json
import os

import boto3
import greeting  # from the layer

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def handler(event, context):
    failures = []
    for record in event["Records"]:
        try:
            body = json.loads(record["body"])
            for s3_record in body.get("Records", []):
                key = s3_record["s3"]["object"]["key"]
                if key.startswith("poison"):
                    raise ValueError(f"cannot process {key}")
                TABLE.put_item(
                    Item={
                        "pk": f"s3-{key}",
                        "source": "s3",
                        "model": greeting.model_text(),
                        "remaining_ms": context.get_remaining_time_in_millis(),
                    }
                )
            print(
                json.dumps(
                    {
                        "_aws": {
                            "CloudWatchMetrics": [
                                {
                                    "Namespace": "localcloud-test",
                                    "Dimensions": [[]],
                                    "Metrics": [{"Name": "Processed", "Unit": "Count"}],
                                }
                            ],
                            "Timestamp": 0,
                        },
                        "Processed": 1,
                    }
                )
            )
        except Exception as exc:
            print(f"failed {record['messageId']}: {exc}")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
