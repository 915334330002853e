"""Kinesis consumer: records each record's data in the table."""

import base64
import os

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def handler(event, context):
    for record in event["Records"]:
        data = base64.b64decode(record["kinesis"]["data"]).decode()
        TABLE.put_item(Item={"pk": f"kinesis-{data}", "source": "kinesis"})
    return {"count": len(event["Records"])}
