"""The Python peer of `make bench`'s cold-start rows: what a Python 3 + boto3 Lambda function
doing verify-code's work for an unknown user costs. At init it reads the HMAC key from Secrets
Manager (as the template deploys verify-code) and builds a DynamoDB client; per event it names
the record by a keyed pseudonym of the user id and sends one conditional UpdateItem, which finds
no code, and answers 404. It speaks the Lambda Runtime API itself (no extra library)."""
import hashlib
import hmac
import json
import os
import urllib.request

import boto3

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"
# botocore trusts its own bundle unless told; the bench's TLS front is in SSL_CERT_FILE's.
VERIFY = os.environ.get("SSL_CERT_FILE", True)
session = boto3.session.Session(region_name=os.environ["AWS_REGION"])
secret = session.client("secretsmanager", verify=VERIFY).get_secret_value(
    SecretId=os.environ["OTP_HASH_KEY_SECRET_ARN"])["SecretString"]
KEY = secret.encode()
TABLE = os.environ["OTP_TABLE_NAME"]
dynamodb = session.client("dynamodb", verify=VERIFY)


def handle(event):
    body = json.loads(event.get("body") or "{}")
    pseudonym = hmac.new(KEY, b"PK\0" + body["user_id"].encode(), hashlib.sha256).hexdigest()
    try:
        dynamodb.update_item(
            TableName=TABLE, Key={"pk": {"S": f"default#{pseudonym}"}},
            UpdateExpression="SET attempts = attempts + :one",
            ConditionExpression="attribute_exists(code_hash) AND attempts < :max",
            ExpressionAttributeValues={":one": {"N": "1"}, ":max": {"N": "3"}})
        status = 200
    except dynamodb.exceptions.ConditionalCheckFailedException:
        status = 404
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps({"error": "not_found"})}


while True:
    with urllib.request.urlopen(f"{API}/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(response.read())
    answer = json.dumps(handle(event)).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{API}/{request_id}/response", data=answer, method="POST")).read()
