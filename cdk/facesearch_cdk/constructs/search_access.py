"""Fine-grained access for the OpenSearch domain: the master-user role and the role-mapping custom resource."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

HANDLER_DIR = Path(__file__).resolve().parents[1] / "handlers" / "opensearch_role_mapping"


class SearchAdminRole(Construct):
    """The domain's master user: only the role-mapping function runs with it, so no face function is an admin."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="facesearch OpenSearch master user (fine-grained access): maps the function roles",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaBasicExecutionRole")
            ],
        )


class OpenSearchRoleMapping(Construct):
    """Runs on every deploy whose inputs changed: writer/reader security roles mapped to the function roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        admin: SearchAdminRole,
        domain_endpoint: str,
        domain_arn: str,
        index_prefix: str,
        writers: list[iam.IRole],
        readers: list[iam.IRole],
        log_retention: logs.RetentionDays,
        removal: RemovalPolicy,
        vpc: ec2.IVpc | None,
        security_group: ec2.ISecurityGroup | None,
    ) -> None:
        super().__init__(scope, construct_id)
        admin.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["es:ESHttpGet", "es:ESHttpPut", "es:ESHttpDelete"],
                resources=[f"{domain_arn}/_plugins/_security/api/*"],
            )
        )
        if vpc is not None:
            admin.role.add_managed_policy(
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSLambdaVPCAccessExecutionRole")
            )
        self.function = lambda_.Function(
            self,
            "Function",
            description="facesearch: map function IAM roles to OpenSearch security roles (custom resource)",
            runtime=lambda_.Runtime.PYTHON_3_11,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR)),
            role=admin.role,
            timeout=Duration.minutes(2),
            memory_size=256,
            log_group=logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS) if vpc else None,
        )
        if security_group is not None:
            security_group.connections.allow_from(self.function, ec2.Port.tcp(443), "role mapping reaches domain")
        self.resource = CustomResource(
            self,
            "Mapping",
            service_token=self.function.function_arn,
            resource_type="Custom::OpenSearchRoleMapping",
            properties={
                "Endpoint": domain_endpoint,
                "IndexPrefix": index_prefix,
                "WriterRoleArns": [role.role_arn for role in writers],
                "ReaderRoleArns": [role.role_arn for role in readers],
            },
        )
