"""Properties of template.yaml that a later edit must not silently drop (part of `make test`)."""
import json
import re
import pathlib
import unittest

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE, ERRORS = decode(str(ROOT / "template.yaml"))
RESOURCES = TEMPLATE["Resources"] if TEMPLATE else {}


def branches(node):
    """Every concrete value a node can take: both sides of each Fn::If, no AWS::NoValue."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        _, yes, no = node["Fn::If"]
        return branches(yes) + branches(no)
    if isinstance(node, dict) and node == {"Ref": "AWS::NoValue"}:
        return []
    return [node]


def statements(function):
    found = []
    for policy in RESOURCES[function]["Properties"]["Policies"]:
        for document in branches(policy):
            for statement in document["Statement"]:
                found.append(statement)
    return found


def listed(value):
    return value if isinstance(value, list) else [value]


def routes(function):
    events = RESOURCES[function]["Properties"]["Events"].values()
    return sorted((e["Properties"]["Method"], e["Properties"]["Path"]) for e in events if e["Type"] == "HttpApi")


def expanded(lists):
    """The resources with each Fn::ForEach expanded as CloudFormation's LanguageExtensions
    does, for the list parameters in `lists` (name -> values); other Refs stay as they are."""

    def put(node, name, value):
        if isinstance(node, dict):
            if node == {"Ref": name}:
                return value
            return {put(k, name, value): put(v, name, value) for k, v in node.items()}
        if isinstance(node, list):
            return [put(n, name, value) for n in node]
        if isinstance(node, str):
            return node.replace("${" + name + "}", value)
        return node

    resources = {}
    for key, resource in TEMPLATE["Resources"].items():
        if not key.startswith("Fn::ForEach::"):
            resources[key] = resource
            continue
        name, collection, body = resource
        for value in lists[collection["Ref"]]:
            resources.update(put(body, name, value))
    return resources


# The metric catalogue the code emits (`otp-service metrics`; a cargo test keeps it current).
CATALOGUE = {m["name"]: m for m in json.loads((ROOT / "metrics.json").read_text())["metrics"]}
OWN = {"Ref": "MetricsNamespace"}


def alarm_metrics(alarm):
    """(namespace, name, {dimension: value}) of every metric an alarm reads."""
    props = alarm["Properties"]
    if "MetricName" in props:
        dims = {d["Name"]: d["Value"] for d in props.get("Dimensions", [])}
        return [(props["Namespace"], props["MetricName"], dims)]
    found = []
    for query in props.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dims))
    return found


def dashboard_metrics(body):
    """(namespace, name, dimension names) of every metric the dashboard body names, in explicit
    metric rows and in SEARCH expressions (`{namespace,Dim,...} MetricName="X"`)."""
    found = []
    for widget in json.loads(body)["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):
                expression = row[0].get("expression", "")
                for schema, name in re.findall(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"", expression):
                    namespace, *dims = schema.split(",")
                    found.append((namespace, name, sorted(dims)))
            else:
                cells = [c for c in row if not isinstance(c, dict)]
                found.append((cells[0], cells[1], sorted(cells[2::2])))
    return found


def deployed_route_security(caller_auth):
    """Each route's authorizer as CloudFormation would deploy it for `CallerAuth`: the
    LanguageExtensions transform (SAM CLI's implementation), then the SAM transform."""
    import copy
    import os
    from samcli.lib.cfn_language_extensions.api import process_template
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(TEMPLATE)
    for resource in template["Resources"].values():
        if isinstance(resource, dict) and resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"  # as `sam package` leaves it
    parameters = {"CallerAuth": caller_auth}
    template = process_template(json.loads(json.dumps(template)), parameters)
    template["Transform"] = "AWS::Serverless-2016-10-31"

    class NoManagedPolicies:
        def load(self):
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    output = transform(template, parameters, NoManagedPolicies())
    api = [r for r in output["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"][0]
    return {path: next(iter(item.values())).get("security")
            for path, item in api["Properties"]["Body"]["paths"].items()}


class TemplateTest(unittest.TestCase):
    def test_parses_without_errors(self):
        self.assertFalse(ERRORS)
        self.assertEqual(TEMPLATE["Transform"], ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"])

    def test_table_schema_is_the_contract(self):
        table = RESOURCES["OtpTable"]
        self.assertEqual(table["Type"], "AWS::DynamoDB::Table")
        props = table["Properties"]
        self.assertEqual(props["KeySchema"], [{"AttributeName": "pk", "KeyType": "HASH"}])
        self.assertEqual(props["AttributeDefinitions"], [{"AttributeName": "pk", "AttributeType": "S"}])
        self.assertEqual(props["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual(props["TimeToLiveSpecification"], {"AttributeName": "expires_at", "Enabled": True})
        self.assertTrue(props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"])
        self.assertTrue(props["SSESpecification"]["SSEEnabled"])

    def test_functions_are_rust_on_provided_al2023(self):
        globals_ = TEMPLATE["Globals"]["Function"]
        self.assertEqual(globals_["Runtime"], "provided.al2023")
        self.assertEqual(globals_["Handler"], "bootstrap")
        self.assertEqual(globals_["Architectures"], [{"Ref": "Architecture"}])
        self.assertEqual(TEMPLATE["Parameters"]["Architecture"]["Default"], "arm64")
        self.assertEqual(globals_["Tracing"], "Active")
        self.assertEqual(globals_["LoggingConfig"]["LogFormat"], "JSON")
        for function, binary in [("SendCodeFunction", "send-code"), ("VerifyCodeFunction", "verify-code")]:
            resource = RESOURCES[function]
            self.assertEqual(resource["Metadata"]["BuildMethod"], "rust-cargolambda")
            self.assertEqual(resource["Metadata"]["BuildProperties"]["Binary"], binary)
            self.assertEqual(resource["Properties"]["CodeUri"], f"functions/{binary}")
            logging = resource["Properties"]["LoggingConfig"]
            self.assertEqual(logging["LogFormat"], "JSON")
            log_group = RESOURCES[logging["LogGroup"]["Ref"]]
            self.assertEqual(log_group["Properties"]["RetentionInDays"], {"Ref": "LogRetentionDays"})

    def test_routes_go_to_their_function(self):
        self.assertEqual(routes("SendCodeFunction"), [("POST", "/auth/request-otp"), ("POST", "/send-code"),
                                                      ("POST", "/verifications/{verification_id}/cancel"),
                                                      ("POST", "/webhooks/twilio/status")])
        self.assertEqual(routes("VerifyCodeFunction"), [("GET", "/.well-known/jwks.json"),
                                                        ("GET", "/verifications/{verification_id}"),
                                                        ("POST", "/auth/verify-otp"), ("POST", "/verify-code")])

    def test_routes_are_the_documented_api(self):
        # openapi.json is generated from the router's route modules (and checked fresh by cargo's
        # tests), so this ties the template to the code.
        document = json.loads((pathlib.Path(__file__).resolve().parent.parent / "openapi.json").read_text())
        documented = sorted((method.upper(), path) for path, item in document["paths"].items() for method in item)
        self.assertEqual(sorted(routes("SendCodeFunction") + routes("VerifyCodeFunction")), documented)

    def test_send_is_least_privilege(self):
        found = statements("SendCodeFunction")
        actions = sorted(a for s in found for a in listed(s["Action"]))
        # One transaction per send (conditional updates, the verification's put; one update to
        # withdraw an undelivered code); reads of a verification to cancel it; one GetItem on the
        # user directory when there is one; the hash key, the API keys, the CAPTCHA secret, the
        # Twilio token and the send hook's secret to read; SES to send as one identity; AWS End
        # User Messaging to send from one origination identity.
        self.assertEqual(actions, ["dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
                                   "dynamodb:GetItem", "dynamodb:GetItem", "dynamodb:PutItem",
                                   "dynamodb:UpdateItem",
                                   "secretsmanager:BatchGetSecretValue",
                                   "secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue",
                                   "secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue",
                                   "secretsmanager:GetSecretValue",
                                   "ses:SendEmail", "sms-voice:SendTextMessage"])
        for statement in found:
            if {"dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"} & set(listed(statement["Action"])):
                self.assertEqual(statement["Resource"], {"Fn::GetAtt": ["OtpTable", "Arn"]})
            if "dynamodb:GetItem" in listed(statement["Action"]):
                self.assertIn(statement["Resource"], [{"Fn::GetAtt": ["UserDirectoryTable", "Arn"]},
                                                      {"Fn::GetAtt": ["OtpTable", "Arn"]}])
            if "sms-voice:SendTextMessage" in listed(statement["Action"]):
                resources = statement["Resource"]
                self.assertEqual(resources[0], {"Ref": "AwsSmsOriginationIdentityArn"})
                self.assertEqual([r["Fn::If"][0] for r in resources[1:]],
                                 ["HasAwsSmsProtect", "HasAwsSmsConfigurationSet"])
        self.assertNotIn("TokenSigningKeySecret", json.dumps(RESOURCES["SendCodeFunction"]))

    def test_verify_is_least_privilege(self):
        found = statements("VerifyCodeFunction")
        actions = sorted(a for s in found for a in listed(s["Action"]))
        # A guess is one UpdateItem; a verification's lookup reads two items.
        self.assertEqual(actions, ["dynamodb:GetItem", "dynamodb:UpdateItem",
                                   "secretsmanager:BatchGetSecretValue",
                                   "secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue",
                                   "secretsmanager:GetSecretValue"])
        dynamo = [s for s in found if "dynamodb:UpdateItem" in listed(s["Action"])][0]
        self.assertEqual(dynamo["Resource"], {"Fn::GetAtt": ["OtpTable", "Arn"]})
        secrets = sorted(s["Resource"]["Ref"] for s in found if s["Action"] == "secretsmanager:GetSecretValue")
        self.assertEqual(secrets, ["ApiKeysSecret", "HashKeySecret", "TokenSigningKeySecret"])

    def test_the_fraud_guard_counts_the_table_stream(self):
        # The table streams both images; a third function reads it with partial batch responses,
        # halving failing batches, a retry limit and a failure destination.
        table = RESOURCES["OtpTable"]["Properties"]
        self.assertEqual(table["StreamSpecification"], {"StreamViewType": "NEW_AND_OLD_IMAGES"})
        function = RESOURCES["FraudGuardFunction"]
        self.assertEqual(function["Metadata"]["BuildProperties"]["Binary"], "fraud-guard")
        self.assertEqual(function["Properties"]["CodeUri"], "functions/fraud-guard")
        (event,) = function["Properties"]["Events"].values()
        self.assertEqual(event["Type"], "DynamoDB")
        props = event["Properties"]
        self.assertEqual(props["Stream"], {"Fn::GetAtt": ["OtpTable", "StreamArn"]})
        self.assertEqual(props["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        self.assertTrue(props["BisectBatchOnFunctionError"])
        self.assertLessEqual(props["MaximumBatchingWindowInSeconds"], 5)
        self.assertGreater(props["BatchSize"], 1)
        self.assertEqual(props["DestinationConfig"]["OnFailure"]["Destination"],
                         {"Fn::GetAtt": ["FraudGuardFailures", "Arn"]})
        actions = sorted(a for s in statements("FraudGuardFunction") for a in listed(s["Action"]))
        self.assertEqual(actions, ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
                                   "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                   "sqs:SendMessage"])
        self.assertNotIn("Secret", json.dumps(function), "it reads no secret")
        # Its settings reach every function (the send checks, the counting counts).
        variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
        for variable, parameter in [("OTP_FRAUD_GUARD", "FraudGuard"),
                                    ("OTP_FRAUD_GUARD_SAFE_LIST", "FraudGuardSafeList"),
                                    ("OTP_FRAUD_GUARD_HOLD_SECONDS", "FraudGuardHoldSeconds")]:
            self.assertEqual(variables[variable], {"Ref": parameter})
        self.assertEqual(TEMPLATE["Parameters"]["FraudGuard"]["Default"], "block")

    def test_no_wildcards_for_data_actions(self):
        for function in ["SendCodeFunction", "VerifyCodeFunction", "FraudGuardFunction"]:
            for statement in statements(function):
                for action in listed(statement["Action"]):
                    self.assertNotIn("*", action)
                # The one exception: the batch read of secrets has no resource type; it returns
                # only what GetSecretValue on each named secret (granted above) allows.
                if listed(statement["Action"]) == ["secretsmanager:BatchGetSecretValue"]:
                    self.assertEqual(statement["Resource"], "*")
                    continue
                for resource in branches(statement["Resource"]):
                    for item in listed(resource):
                        for concrete in branches(item):
                            self.assertNotEqual(concrete, "*")

    def test_hash_key_comes_only_from_a_generated_secret(self):
        secret = RESOURCES["HashKeySecret"]
        self.assertEqual(secret["Type"], "AWS::SecretsManager::Secret")
        self.assertGreaterEqual(secret["Properties"]["GenerateSecretString"]["PasswordLength"], 44)
        env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["OTP_HASH_KEY_SECRET_ARN"], {"Ref": "HashKeySecret"})
        self.assertEqual(env["OTP_TABLE_NAME"], {"Ref": "OtpTable"})
        self.assertNotIn("OTP_HASH_KEY", env)
        self.assertFalse([p for p in TEMPLATE["Parameters"] if "HashKey" in p])

    def test_api_keys_are_the_default_and_come_from_a_generated_secret(self):
        parameter = TEMPLATE["Parameters"]["CallerAuth"]
        self.assertEqual(parameter["Default"], "api_key")
        self.assertEqual(parameter["AllowedValues"], ["api_key", "iam", "none"])
        secret = RESOURCES["ApiKeysSecret"]
        self.assertEqual(secret["Condition"], "UseApiKeys")
        generated = secret["Properties"]["GenerateSecretString"]
        self.assertEqual(generated["GenerateStringKey"], "key")
        self.assertGreaterEqual(generated["PasswordLength"], 32)
        env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["OTP_CALLER_AUTH"], {"Ref": "CallerAuth"})
        self.assertEqual(env["OTP_API_KEYS_SECRET_ARN"], {"Fn::If": ["UseApiKeys", {"Ref": "ApiKeysSecret"}, ""]})
        self.assertNotIn("OTP_API_KEYS", env)
        for function in ["SendCodeFunction", "VerifyCodeFunction"]:
            reads = [s for s in statements(function) if s.get("Sid") == "ReadApiKeys"]
            self.assertEqual([s["Resource"] for s in reads], [{"Ref": "ApiKeysSecret"}], function)

    def test_iam_puts_the_aws_iam_authorizer_on_the_backend_routes_only(self):
        for caller_auth, backend in [("iam", "AWS_IAM"), ("api_key", "NONE"), ("none", "NONE")]:
            security = deployed_route_security(caller_auth)
            self.assertEqual(security["/send-code"], [{backend: []}], caller_auth)
            self.assertEqual(security["/verify-code"], [{backend: []}], caller_auth)
            self.assertEqual(security["/verifications/{verification_id}"], [{backend: []}], caller_auth)
            self.assertEqual(security["/verifications/{verification_id}/cancel"], [{backend: []}],
                             caller_auth)
            self.assertEqual(security["/auth/request-otp"], [{"NONE": []}], caller_auth)
            self.assertEqual(security["/auth/verify-otp"], [{"NONE": []}], caller_auth)
            self.assertEqual(security["/webhooks/twilio/status"], [{"NONE": []}], caller_auth)
            self.assertEqual(security["/.well-known/jwks.json"], [{"NONE": []}], caller_auth)

    def test_lockout_parameters_reach_the_functions(self):
        env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["OTP_LOCKOUT_FAILURES"], {"Ref": "LockoutFailures"})
        self.assertEqual(env["OTP_LOCKOUT_WINDOW_SECONDS"], {"Ref": "LockoutWindowSeconds"})
        self.assertEqual(TEMPLATE["Parameters"]["LockoutFailures"]["MinValue"], 3)
        self.assertEqual(TEMPLATE["Parameters"]["LockoutFailures"]["MaxValue"], 100)

    def test_send_limits_reach_the_send_function_and_the_countries_have_no_default(self):
        env = RESOURCES["SendCodeFunction"]["Properties"]["Environment"]["Variables"]
        for var, parameter, default in [
            ("OTP_SMS_ALLOWED_COUNTRIES", "SmsAllowedCountries", ""),
            ("OTP_SMS_NUMBER_TYPES", "SmsNumberTypes", "mobile,fixed_line_or_mobile"),
            ("OTP_SMS_DAILY_BUDGET", "SmsDailyBudget", 10000),
            ("OTP_SMS_COUNTRY_SENDS_PER_DAY", "SmsCountrySendsPerDay", 1000),
            ("OTP_DESTINATION_SENDS_PER_10_MINUTES", "DestinationSendsPer10Minutes", 5),
            ("OTP_DESTINATION_SENDS_PER_DAY", "DestinationSendsPerDay", 10),
            ("OTP_USER_SENDS_PER_HOUR", "UserSendsPerHour", 10),
            ("OTP_CLIENT_IP_SENDS_PER_HOUR", "ClientIpSendsPerHour", 30),
        ]:
            self.assertEqual(env[var], {"Ref": parameter}, var)
            self.assertEqual(TEMPLATE["Parameters"][parameter].get("Default"), default, parameter)
        pattern = re.compile(TEMPLATE["Parameters"]["SmsAllowedCountries"]["AllowedPattern"])
        # Empty is for a stack with no phone channel (the rule SmsNeedsCountries).
        for ok in ["US", "US,CA,GB", "*", ""]:
            self.assertTrue(pattern.fullmatch(ok), ok)
        for bad in ["us", "US, CA", "USA", "US,"]:
            self.assertFalse(pattern.fullmatch(bad), bad)

    def test_twilio_is_optional_through_a_condition(self):
        self.assertIn("HasTwilio", TEMPLATE["Conditions"])
        self.assertEqual(TEMPLATE["Parameters"]["TwilioAuthTokenSecretArn"]["Default"], "")
        env = RESOURCES["SendCodeFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(env["TWILIO_ACCOUNT_SID"]["Fn::If"][0], "HasTwilio")

    def test_aws_sms_whatsapp_and_voice_are_optional_and_checked_at_deploy(self):
        params = TEMPLATE["Parameters"]
        self.assertEqual(params["SmsProvider"]["AllowedValues"], ["twilio", "aws"])
        self.assertEqual(params["SmsProvider"]["Default"], "twilio")
        env = RESOURCES["SendCodeFunction"]["Properties"]["Environment"]["Variables"]
        # The function reads OTP_SMS_PROVIDER only when AWS sends: "twilio" with no Twilio
        # account would stop it at init.
        self.assertEqual(env["OTP_SMS_PROVIDER"], {"Fn::If": ["UseAwsSms", "aws", ""]})
        self.assertEqual(env["OTP_AWS_SMS_ORIGINATION_IDENTITY"],
                         {"Fn::If": ["UseAwsSms", {"Ref": "AwsSmsOriginationIdentityArn"}, ""]})
        for var, param in [("TWILIO_WHATSAPP_FROM", "TwilioWhatsappFrom"),
                           ("TWILIO_WHATSAPP_CONTENT_SID", "TwilioWhatsappContentSid"),
                           ("TWILIO_VOICE_FROM", "TwilioVoiceFrom")]:
            self.assertEqual(env[var], {"Fn::If": ["HasTwilio", {"Ref": param}, ""]})
            self.assertEqual(params[param]["Default"], "")
        self.assertIn("AwsSmsNeedsAnIdentity", TEMPLATE["Rules"])
        self.assertIn("PhoneChannelsNeedTwilio", TEMPLATE["Rules"])
        # The SMS budget alarm watches whoever sends.
        self.assertEqual(TEMPLATE["Conditions"]["HasSmsBudget"]["Fn::And"][0], {"Condition": "HasSms"})

    def test_api_throttling_logging_and_cors(self):
        api = RESOURCES["HttpApi"]["Properties"]
        self.assertEqual(api["DefaultRouteSettings"]["ThrottlingRateLimit"], {"Ref": "ThrottlingRateLimit"})
        self.assertEqual(api["DefaultRouteSettings"]["ThrottlingBurstLimit"], {"Ref": "ThrottlingBurstLimit"})
        self.assertEqual(api["AccessLogSettings"]["DestinationArn"], {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]})
        self.assertEqual(RESOURCES["ApiAccessLogs"]["Properties"]["RetentionInDays"], {"Ref": "LogRetentionDays"})
        self.assertEqual(api["CorsConfiguration"]["Fn::If"][0], "HasCors")
        cors = api["CorsConfiguration"]["Fn::If"][1]
        # A page may send JSON, never a credential.
        self.assertEqual(cors["AllowHeaders"], ["content-type"])
        self.assertNotIn("AllowCredentials", cors)

    def test_token_key_comes_only_from_a_generated_secret(self):
        secret = RESOURCES["TokenSigningKeySecret"]
        self.assertGreaterEqual(secret["Properties"]["GenerateSecretString"]["PasswordLength"], 44)
        env = RESOURCES["VerifyCodeFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(env["OTP_TOKEN_SIGNING_KEY_SECRET_ARN"], {"Ref": "TokenSigningKeySecret"})
        self.assertEqual(env["OTP_TOKEN_AUDIENCE"], {"Ref": "TokenAudience"})
        self.assertEqual(env["OTP_BACKEND_TOKEN_AUDIENCE"], {"Ref": "BackendTokenAudience"})
        params = TEMPLATE["Parameters"]
        self.assertNotEqual(params["TokenAudience"]["Default"], params["BackendTokenAudience"]["Default"])
        self.assertFalse([p for p in TEMPLATE["Parameters"] if "SigningKey" in p])

    def test_user_directory_and_captcha_are_optional(self):
        table = RESOURCES["UserDirectoryTable"]
        self.assertEqual(table["Condition"], "HasUserDirectory")
        # The key the code reads (otp_core::directory::ADDRESS_ATTRIBUTE).
        self.assertEqual(table["Properties"]["KeySchema"], [{"AttributeName": "email", "KeyType": "HASH"}])
        env = RESOURCES["SendCodeFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(env["OTP_USER_DIRECTORY"],
                         {"Fn::If": ["HasUserDirectory", {"Fn::Sub": "dynamodb:${UserDirectoryTable}"}, ""]})
        self.assertEqual(env["OTP_CAPTCHA_PROVIDER"], {"Ref": "CaptchaProvider"})
        self.assertEqual(TEMPLATE["Parameters"]["CaptchaProvider"]["AllowedValues"],
                         ["", "turnstile", "hcaptcha", "recaptcha"])
        self.assertIn("CaptchaNeedsItsSecret", TEMPLATE["Rules"])

    def test_functions_write_emf_metrics_to_the_configured_namespace(self):
        env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(env["OTP_METRICS"], "emf")
        self.assertEqual(env["OTP_METRICS_NAMESPACE"], OWN)

    def test_alarms_read_only_metrics_the_code_emits_with_their_exact_dimensions(self):
        # The conversion alarms expanded for two countries.
        resources = expanded({"ConversionAlarmCallingCodes": ["1", "44"]})
        alarms = {k: r for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
        self.assertTrue({"ConversionAlarm1", "ConversionAlarm44"} <= set(alarms), sorted(alarms))
        own = 0
        for name, alarm in alarms.items():
            self.assertEqual(alarm["Properties"]["AlarmActions"], [{"Ref": "AlarmTopic"}], name)
            for namespace, metric, dims in alarm_metrics(alarm):
                if namespace != OWN:
                    self.assertIn(namespace, ["AWS/ApiGateway", "AWS/Lambda", "AWS/SQS"], name)
                    continue
                own += 1
                self.assertIn(metric, CATALOGUE, f"{name} reads {metric}, which the code never emits")
                # An EMF metric exists only under the exact dimension set the code writes.
                self.assertEqual(sorted(dims), sorted(CATALOGUE[metric]["dimensions"]), f"{name}: {metric}")
        self.assertGreater(own, 20)
        # The list: 5xx rate, delivery failures, conversion by country, budget at 80 %,
        # API Gateway throttling, DynamoDB errors.
        for wanted in ["Api5xxAlarm", "TwilioFailureAlarm", "SesFailureAlarm", "ConversionAlarm44",
                       "SmsBudgetAlarm", "ApiGatewayRefusalsAlarm", "FunctionThrottlesAlarm",
                       "StoreErrorsAlarm"]:
            self.assertIn(wanted, alarms)

    def test_conversion_alarms_follow_the_watched_countries(self):
        resources = expanded({"ConversionAlarmCallingCodes": ["49"]})
        names = [k for k in resources if k.startswith("ConversionAlarm")]
        self.assertEqual(names, ["ConversionAlarm49"])
        dims = alarm_metrics(resources["ConversionAlarm49"])
        self.assertEqual({d["CallingCode"] for _, _, d in dims}, {"49"})

    def test_budget_alarm_is_80_percent_of_the_configured_budget(self):
        alarm = RESOURCES["SmsBudgetAlarm"]
        self.assertEqual(alarm["Condition"], "HasSmsBudget")
        self.assertEqual(alarm["Properties"]["Threshold"], 80)
        spent = alarm["Properties"]["Metrics"][0]["Expression"]["Fn::Sub"]
        self.assertTrue(spent.endswith("/ ${SmsDailyBudget}"), spent)
        outcomes = {d["Outcome"] for _, _, d in alarm_metrics(alarm)}
        self.assertEqual(outcomes, {"sent", "delivery_uncertain", "invalid_destination"})
        # Every phone channel is charged to the budget, so the alarm adds them all up: every
        # metric it reads is in its expression.
        channels = {d["Channel"] for _, _, d in alarm_metrics(alarm)}
        self.assertEqual(channels, {"sms", "whatsapp", "voice"})
        ids = [m["Id"] for m in alarm["Properties"]["Metrics"] if "MetricStat" in m]
        for metric_id in ids:
            self.assertIn(f"FILL({metric_id}, 0)", spent)

    def test_no_alarm_reads_more_than_ten_metrics(self):
        # CloudWatch's hard limit for a metric math alarm.
        for name, resource in expanded({"ConversionAlarmCallingCodes": ["1", "44"]}).items():
            if resource["Type"] == "AWS::CloudWatch::Alarm":
                metrics = resource["Properties"].get("Metrics", [])
                self.assertLessEqual(sum("MetricStat" in m for m in metrics), 10, name)

    def test_dashboard_names_only_metrics_the_code_emits(self):
        body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
        body = body.replace("${MetricsNamespace}", "OtpService")
        body = re.sub(r"\$\{[A-Za-z:]+\}", "x", body)
        rows = dashboard_metrics(body)
        own = [(name, dims) for namespace, name, dims in rows if namespace == "OtpService"]
        self.assertEqual({name for name, _ in own}, set(CATALOGUE), "every metric is on the dashboard")
        for name, dims in own:
            self.assertEqual(dims, sorted(CATALOGUE[name]["dimensions"]), name)
        for namespace, name, _ in rows:
            self.assertIn(namespace, ["OtpService", "AWS/ApiGateway", "AWS/Lambda"], name)

    def test_sam_cli_reads_the_foreach_itself(self):
        # Without it `sam build` crashes on the Fn::ForEach ('list' object has no attribute 'get').
        import tomllib

        config = tomllib.loads((ROOT / "samconfig.toml").read_text())
        self.assertIs(config["default"]["build"]["parameters"]["language_extensions"], True)

    def test_alarm_notifications(self):
        self.assertEqual(RESOURCES["AlarmEmailSubscription"]["Condition"], "HasAlarmEmail")
        self.assertEqual(TEMPLATE["Parameters"]["AlarmEmail"]["Default"], "")
        self.assertIn("AlarmTopicArn", TEMPLATE["Outputs"])
        self.assertIn("DashboardUrl", TEMPLATE["Outputs"])

    def test_every_parameter_and_output_is_described(self):
        for kind in ["Parameters", "Outputs"]:
            for name, entry in TEMPLATE[kind].items():
                self.assertTrue(str(entry.get("Description", "")).strip(), f"{kind}.{name}")
        # ...and docs/deployment.md names every one of them.
        guide = (ROOT / "docs" / "deployment.md").read_text()
        for kind in ["Parameters", "Outputs"]:
            for name in TEMPLATE[kind]:
                self.assertIn(f"`{name}`", guide, f"docs/deployment.md lacks {kind}.{name}")

    def test_the_deployment_guide_tables_are_current(self):
        import subprocess, sys
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "deploy_docs.py")],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_outputs(self):
        self.assertIn("ApiUrl", TEMPLATE["Outputs"])
        self.assertEqual(TEMPLATE["Outputs"]["TableName"]["Value"], {"Ref": "OtpTable"})


# The functions CloudFormation accepts inside Rules.
RULE_FUNCTIONS = {"Ref", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Contains",
                  "Fn::EachMemberEquals", "Fn::EachMemberIn", "Fn::RefAll", "Fn::ValueOf",
                  "Fn::ValueOfAll"}


def evaluate(node, parameters):
    """A rule expression's value for `parameters` (name -> string), as CloudFormation computes
    it; raises on a function rules may not use."""
    if isinstance(node, dict):
        (function, argument), = node.items()
        if function not in RULE_FUNCTIONS:
            raise ValueError(f"{function} is not allowed in Rules")
        if function == "Ref":
            return parameters[argument]
        values = [evaluate(a, parameters) for a in argument] if isinstance(argument, list) else argument
        if function == "Fn::Equals":
            return str(values[0]) == str(values[1])
        if function == "Fn::Not":
            return not values[0]
        if function == "Fn::And":
            return all(values)
        if function == "Fn::Or":
            return any(values)
        if function == "Fn::Contains":
            return str(values[1]) in [str(v) for v in values[0]]
        raise ValueError(f"{function}: not evaluated by this test")
    return node


def broken_rules(overrides):
    """The rules a deploy with these parameter values (the rest at their defaults) breaks."""
    parameters = {name: str(p.get("Default", "")) for name, p in TEMPLATE["Parameters"].items()}
    parameters.update(overrides)
    broken = []
    for name, rule in TEMPLATE["Rules"].items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], parameters):
            continue
        if not all(evaluate(a["Assert"], parameters) for a in rule["Assertions"]):
            broken.append(name)
    return sorted(broken)


EMAIL = {"EmailFrom": "no-reply@example.com", "SesIdentity": "example.com"}
TWILIO = {"TwilioAccountSid": "AC123", "SmsAllowedCountries": "US,CA",
          "TwilioAuthTokenSecretArn": "arn:aws:secretsmanager:us-east-1:1:secret:twilio"}


class DeployRules(unittest.TestCase):
    """The template's Rules refuse, at deploy time, the combinations that would deploy and then
    fail at run time; the documented deploys pass them."""

    def test_the_documented_deploys_pass(self):
        self.assertEqual(broken_rules(EMAIL), [])
        self.assertEqual(broken_rules({**EMAIL, **TWILIO, "TwilioPhoneNumber": "+14155550100"}), [])
        self.assertEqual(broken_rules({**TWILIO, "TwilioMessagingServiceSid": "MG1"}), [])
        self.assertEqual(broken_rules({"SmsProvider": "aws", "SmsAllowedCountries": "*",
                                       "AwsSmsOriginationIdentityArn": "arn:aws:sms-voice:x"}), [])

    def test_the_broken_combinations_are_refused(self):
        for overrides, rule in [
            ({}, "SomethingToSend"),                                   # all defaults
            ({"EmailFrom": "no-reply@example.com"}, "EmailNeedsSesIdentity"),
            ({**EMAIL, "EmailFrom": ""}, "SesIdentityNeedsEmailFrom"),
            ({**EMAIL, **TWILIO}, "TwilioSmsNeedsASender"),              # no sender number
            ({**EMAIL, **TWILIO, "TwilioPhoneNumber": "+14155550100", "TwilioAccountSid": ""},
             "TwilioNeedsBothCredentials"),
            ({**EMAIL, **TWILIO, "TwilioPhoneNumber": "+14155550100", "SmsAllowedCountries": ""},
             "SmsNeedsCountries"),
            ({**EMAIL, "SmsProvider": "aws", "SmsAllowedCountries": "US"}, "AwsSmsNeedsAnIdentity"),
            ({**EMAIL, "TwilioVoiceFrom": "+14155550100"}, "PhoneChannelsNeedTwilio"),
            ({**EMAIL, "CaptchaProvider": "turnstile"}, "CaptchaNeedsItsSecret"),
        ]:
            self.assertIn(rule, broken_rules(overrides), overrides)

    def test_every_rule_explains_itself(self):
        for name, rule in TEMPLATE["Rules"].items():
            for assertion in rule["Assertions"]:
                self.assertGreater(len(assertion.get("AssertDescription", "")), 20, name)


if __name__ == "__main__":
    unittest.main()
