#!/usr/bin/env python3
"""The AWS resources the service needs, created in moto for tests and local runs: the OTP table
(the schema template.yaml declares: pk String hash key, on-demand, TTL on expires_at) and a
verified SES identity. As a command: `otp_aws.py TABLE [SES_IDENTITY]` against AWS_ENDPOINT_URL."""
import os
import sys

import boto3


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def create_table(endpoint, name):
    ddb = client("dynamodb", endpoint)
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
        "AttributeName": "expires_at", "Enabled": True})


def verify_identity(endpoint, identity):
    client("sesv2", endpoint).create_email_identity(EmailIdentity=identity)


if __name__ == "__main__":
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    create_table(endpoint, sys.argv[1])
    if len(sys.argv) > 2:
        verify_identity(endpoint, sys.argv[2])
