"""The OpenSearch domain that holds the face vectors (k-NN)."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from constructs import Construct

from facesearch_cdk.config import OpenSearchConfig

# Data-plane actions: a reader searches (POST _search, GET docs); a writer also creates indices and bulk-loads.
READ_ACTIONS = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"]
WRITE_ACTIONS = [*READ_ACTIONS, "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpPatch"]


class SearchDomain(Construct):
    """OpenSearch 2.19 (k-NN is built in), encrypted at rest with our key, node-to-node TLS, HTTPS only.

    Access is by IAM role: identity policies on each function's role scoped to this domain, and, with fine-grained
    access control on, the security plugin's own role mapping (see OpenSearchRoleMapping) so each role can touch
    only the `<index prefix>*` indices with the permissions it needs. No resource policy is attached: CDK would
    write it through a custom resource, which the local cloud's free LocalStack does not run.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: OpenSearchConfig,
        key: kms.IKey,
        removal: RemovalPolicy,
        log_retention: logs.RetentionDays,
        vpc: ec2.IVpc | None,
        master_user_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        log_groups = {
            kind: logs.LogGroup(self, f"{kind}Logs", retention=log_retention, removal_policy=removal)
            for kind in ("App", "SlowSearch", "SlowIndex")
        }
        # The service needs a CloudWatch Logs resource policy to write; CDK's default writes it with a custom
        # resource, so it is plain CloudFormation here (suppress_logs_resource_policy below).
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "es.amazonaws.com"},
                    "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                    "Resource": [group.log_group_arn for group in log_groups.values()],
                    "Condition": {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                }
            ],
        }
        logs_policy = logs.CfnResourcePolicy(
            self,
            "LogsPolicy",
            policy_name=f"{Aws.STACK_NAME}-opensearch-logs",
            # Tokens inside the document must be rendered by the stack (they become Fn::Join), not by json.dumps.
            policy_document=Stack.of(self).to_json_string(document),
        )

        count = config.instance_count
        zones = 3 if count >= 3 and count % 3 == 0 else 2 if count % 2 == 0 else 1
        subnets = None
        self.security_group: ec2.SecurityGroup | None = None
        if vpc is not None:
            self.security_group = ec2.SecurityGroup(
                self, "SecurityGroup", vpc=vpc, description="facesearch OpenSearch domain", allow_all_outbound=False
            )
            subnets = [
                ec2.SubnetSelection(
                    subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                    availability_zones=None,
                    one_per_az=True,
                )
            ]
        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=config.domain_name,
            version=opensearch.EngineVersion.open_search("2.19"),
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=config.instance_type,
                data_nodes=count,
                master_node_instance_type=config.dedicated_master_type,
                master_nodes=config.dedicated_master_count or None,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(volume_size=config.volume_gib, volume_type=ec2.EbsDeviceVolumeType.GP3),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=zones > 1, availability_zone_count=zones)
            if zones > 1
            else None,
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True, kms_key=key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(master_user_arn=master_user_arn)
            if config.fine_grained_access and master_user_arn
            else None,
            logging=opensearch.LoggingOptions(
                app_log_enabled=True,
                app_log_group=log_groups["App"],
                slow_search_log_enabled=True,
                slow_search_log_group=log_groups["SlowSearch"],
                slow_index_log_enabled=True,
                slow_index_log_group=log_groups["SlowIndex"],
            ),
            suppress_logs_resource_policy=True,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group] if self.security_group else None,
            enable_auto_software_update=True,
            removal_policy=removal,
        )
        self.domain.node.add_dependency(logs_policy)
        self.key = key

    def restrict_to(self, roles: list[iam.IRole], domain_name: str) -> None:
        """Resource policy naming the roles that may call the domain at all (the security plugin then decides
        per index). Written on the CfnDomain directly: CDK's `access_policies` uses a custom resource."""
        cfn_domain: opensearch.CfnDomain = self.domain.node.default_child  # type: ignore[assignment]
        domain_arn = Stack.of(self).format_arn(service="es", resource="domain", resource_name=f"{domain_name}/*")
        cfn_domain.access_policies = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [role.role_arn for role in roles]},
                    "Action": WRITE_ACTIONS,
                    "Resource": domain_arn,
                }
            ],
        }

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.domain.domain_endpoint}"

    def grant(self, fn: lambda_.Function, *, write: bool) -> None:
        """Identity policy on the function's role for this domain's data plane only (`<domain ARN>/*`)."""
        fn.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=WRITE_ACTIONS if write else READ_ACTIONS,
                resources=[self.domain.domain_arn, f"{self.domain.domain_arn}/*"],
            )
        )
        if self.security_group is not None:  # with a VPC every function runs in it
            self.security_group.connections.allow_from(fn, ec2.Port.tcp(443), "functions reach the domain")
