"""REST API behind API Gateway: GET /items/{pk} reads the table; GET /search asks the OpenSearch domain."""

import json
import os
import urllib.request

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def handler(event, context):
    if event["resource"] == "/search":
        with urllib.request.urlopen(os.environ["OPENSEARCH_URL"] + "/", timeout=10) as response:
            info = json.loads(response.read())
        return {
            "statusCode": 200,
            "body": json.dumps({"cluster": info.get("cluster_name"), "version": info["version"]}),
        }
    pk = event["pathParameters"]["pk"]
    item = TABLE.get_item(Key={"pk": pk}).get("Item")
    if item is None:
        return {"statusCode": 404, "body": json.dumps({"message": f"{pk} not found"})}
    return {"statusCode": 200, "body": json.dumps(item, default=str)}
