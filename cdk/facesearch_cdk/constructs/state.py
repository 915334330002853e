"""Small shared state: the idempotency table and the EventBridge bus for search notifications."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from constructs import Construct


class IdempotencyTable(Construct):
    """Powertools Idempotency's DynamoDB persistence: partition key `id`, TTL on `expiration`.

    Why a table at all when face ids are deterministic: the side effects around indexing (report objects, audit
    records, events) are not overwrites, and S3/SQS deliver at least once.
    """

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, removal: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.table = _encrypted_table(self, "id", "expiration", key, removal)


class VideoStateTable(Construct):
    """match_frames' camera track state (``camera#<id>``, TTL on ``expires_at``: a camera that stops sending is
    forgotten) and the stream processors (``processor#<name>``, no TTL), partition key ``pk``."""

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, removal: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.table = _encrypted_table(self, "pk", "expires_at", key, removal)


class SearchEvents(Construct):
    """The bus that carries `FaceSearchCompleted` (and, for video, first-match) events to whoever acts on them."""

    def __init__(self, scope: Construct, construct_id: str, *, bus_name: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name)


def _encrypted_table(scope: Construct, pk: str, ttl: str, key: kms.IKey, removal: RemovalPolicy) -> dynamodb.Table:
    """On-demand, encrypted with the stack's key, point-in-time recovery, items expiring on ``ttl``."""
    return dynamodb.Table(
        scope,
        "Table",
        partition_key=dynamodb.Attribute(name=pk, type=dynamodb.AttributeType.STRING),
        time_to_live_attribute=ttl,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=removal,
    )
