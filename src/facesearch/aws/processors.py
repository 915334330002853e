"""Stream processors in DynamoDB: the registry the ``api`` function (CreateStreamProcessor …) and ``match_frames``
share. Kept apart from ``aws/video.py`` so the api function imports no video code (and no OpenCV)."""

from __future__ import annotations

import json
from typing import Any

from facesearch.errors import ResourceInUseException

PROCESSOR_PREFIX = "processor#"


class DynamoDBProcessorRegistry:
    """``ProcessorRegistry`` over the state table (``processor#<name>`` items)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def get(self, name: str) -> dict[str, Any] | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": PROCESSOR_PREFIX + name}}, ConsistentRead=True
        ).get("Item")
        return json.loads(item["doc"]["S"]) if item else None

    def put(self, doc: dict[str, Any], *, create: bool) -> None:
        args: dict[str, Any] = {
            "TableName": self.table,
            "Item": {"pk": {"S": PROCESSOR_PREFIX + doc["Name"]}, "doc": {"S": json.dumps(doc)}},
        }
        if create:
            args["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            self.client.put_item(**args)
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ResourceInUseException(f"stream processor {doc['Name']} already exists") from None

    def delete(self, name: str) -> bool:
        out = self.client.delete_item(
            TableName=self.table, Key={"pk": {"S": PROCESSOR_PREFIX + name}}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in out

    def all(self) -> list[dict[str, Any]]:
        docs = []
        for page in self.client.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": PROCESSOR_PREFIX}},
            ConsistentRead=True,
        ):
            docs += [json.loads(item["doc"]["S"]) for item in page.get("Items", [])]
        return docs


__all__ = ["PROCESSOR_PREFIX", "DynamoDBProcessorRegistry"]
