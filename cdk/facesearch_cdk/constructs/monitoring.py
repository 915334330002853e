"""Alarms and a dashboard: function errors and throttles, DLQ depth, iterator age, API 5xx and p95 latency."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

FIVE_MINUTES = Duration.minutes(5)


class Monitoring(Construct):
    """Every alarm notifies one encrypted SNS topic (optionally an e-mail address); one dashboard shows them all.

    Why these alarms: a message in a dead-letter queue is an image nobody indexed or searched; a growing iterator
    age means video is being matched late; errors and throttles are the early signs of both.
    """

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, alarm_email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", master_key=key, enforce_ssl=True, display_name="facesearch alarms")
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: list[cloudwatch.Alarm] = []
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        self._action = actions.SnsAction(self.topic)

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)

    def watch_function(self, label: str, fn: lambda_.Function) -> None:
        errors = fn.metric_errors(period=FIVE_MINUTES, statistic="Sum")
        throttles = fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum")
        duration = fn.metric_duration(period=FIVE_MINUTES, statistic="p95")
        self._alarm(f"{label}Errors", errors, 1, f"{label}: the function raised (a batch or request failed)")
        self._alarm(f"{label}Throttles", throttles, 1, f"{label}: invocations throttled (concurrency too low)")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title=f"{label}: errors, throttles", left=[errors, throttles], width=12),
            cloudwatch.GraphWidget(title=f"{label}: duration p95", left=[duration], width=12),
        )

    def watch_dlq(self, label: str, queue: sqs.IQueue) -> None:
        depth = queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum")
        self._alarm(f"{label}DlqDepth", depth, 1, f"{label}: messages in the dead-letter queue need a look")
        self.dashboard.add_widgets(cloudwatch.SingleValueWidget(title=f"{label} DLQ depth", metrics=[depth], width=6))

    def watch_iterator_age(self, label: str, fn: lambda_.Function, max_age: Duration) -> None:
        age = fn.metric("IteratorAge", period=Duration.minutes(1), statistic="Maximum")
        self._alarm(
            f"{label}IteratorAge",
            age,
            max_age.to_milliseconds(),
            f"{label}: frames are processed more than {max_age.to_seconds()} s after they were written",
        )
        self.dashboard.add_widgets(cloudwatch.GraphWidget(title=f"{label}: iterator age", left=[age], width=12))

    def watch_api(self, api: apigateway.RestApi, latency_p95_ms: int) -> None:
        server_errors = api.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        client_errors = api.metric_client_error(period=FIVE_MINUTES, statistic="Sum")
        latency = api.metric_latency(period=FIVE_MINUTES, statistic="p95")
        self._alarm("Api5xx", server_errors, 1, "API: 5xx responses (function errors or timeouts)")
        self._alarm("ApiLatencyP95", latency, latency_p95_ms, f"API: p95 latency at or above {latency_p95_ms} ms")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API: 4xx, 5xx", left=[client_errors, server_errors], width=12),
            cloudwatch.GraphWidget(title="API: latency p95", left=[latency], width=12),
        )

    def watch_domain(self, domain: opensearch.Domain) -> None:
        red = domain.metric_cluster_status_red(period=Duration.minutes(1), statistic="Maximum")
        blocked = domain.metric_cluster_index_writes_blocked(period=FIVE_MINUTES, statistic="Maximum")
        self._alarm("OpenSearchRed", red, 1, "OpenSearch: cluster status red (a primary shard is unassigned)")
        self._alarm("OpenSearchWritesBlocked", blocked, 1, "OpenSearch: index writes blocked (disk or memory)")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="OpenSearch: free storage (MB)",
                left=[domain.metric_free_storage_space(period=FIVE_MINUTES, statistic="Minimum")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="OpenSearch: search latency",
                left=[domain.metric_search_latency(period=FIVE_MINUTES)],
                width=12,
            ),
        )
