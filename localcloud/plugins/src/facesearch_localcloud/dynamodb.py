"""DynamoDB and DynamoDB Streams served by LocalStack's bundled moto (``PROVIDER_OVERRIDE_DYNAMODB=moto``).

Why: LocalStack's own providers forward to DynamoDB Local, which they download (with a JDK) at run time; this
machine cannot, and DynamoDB Local's licence is not open source. Every operation here falls through to moto via
``MotoFallbackDispatcher``, so tables (also from CloudFormation), items, TTL and streams all come from moto.
"""

from __future__ import annotations

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.aws.api.dynamodbstreams import DynamodbstreamsApi
from localstack.services.plugins import Service, aws_provider
from localstack.state import StateVisitor


class MotoDynamoDBProvider(DynamodbApi):
    """No method of its own: the dispatcher answers every operation from moto."""

    def accept_state_visitor(self, visitor: StateVisitor) -> None:
        from moto.dynamodb.models import dynamodb_backends

        visitor.visit(dynamodb_backends)


class MotoDynamoDBStreamsProvider(DynamodbstreamsApi):
    def accept_state_visitor(self, visitor: StateVisitor) -> None:
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        visitor.visit(dynamodbstreams_backends)


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoDynamoDBProvider(), dispatch_table_factory=MotoFallbackDispatcher)


@aws_provider(api="dynamodbstreams", name="moto")
def dynamodbstreams_moto() -> Service:
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoDynamoDBStreamsProvider(), dispatch_table_factory=MotoFallbackDispatcher)
