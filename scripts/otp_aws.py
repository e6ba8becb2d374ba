#!/usr/bin/env python3
"""The AWS resources the service needs, created in moto for tests and local runs: the OTP table,
exactly as template.yaml declares it (the one statement of the schema), and a verified SES
identity. As a command: `otp_aws.py TABLE [SES_IDENTITY]` against AWS_ENDPOINT_URL;
`otp_aws.py --schema` prints the table schema as JSON."""
import json
import os
import pathlib
import sys

import boto3
import yaml

TEMPLATE = pathlib.Path(__file__).resolve().parent.parent / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as plain values."""


_TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def table_schema():
    """The OtpTable properties the service depends on: key, attributes, billing, TTL and stream."""
    template = yaml.load(TEMPLATE.read_text(), Loader=_TemplateLoader)
    table = template["Resources"]["OtpTable"]["Properties"]
    return {key: table[key] for key in
            ("AttributeDefinitions", "KeySchema", "BillingMode", "TimeToLiveSpecification",
             "StreamSpecification")}


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def create_table(endpoint, name):
    schema = table_schema()
    ddb = client("dynamodb", endpoint)
    ddb.create_table(TableName=name, BillingMode=schema["BillingMode"],
                     AttributeDefinitions=schema["AttributeDefinitions"],
                     KeySchema=schema["KeySchema"],
                     StreamSpecification={"StreamEnabled": True, **schema["StreamSpecification"]})
    ttl = schema["TimeToLiveSpecification"]
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])})


def verify_identity(endpoint, identity):
    client("sesv2", endpoint).create_email_identity(EmailIdentity=identity)


if __name__ == "__main__":
    if sys.argv[1:] == ["--schema"]:
        print(json.dumps(table_schema()))
        sys.exit(0)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    create_table(endpoint, sys.argv[1])
    if len(sys.argv) > 2:
        verify_identity(endpoint, sys.argv[2])
