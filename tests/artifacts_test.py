"""What `sam build` ships (run after it in make test): each function's bootstrap holds only the
code its routes need. verify-code is built without the delivery features and without the send
routes (otp-core's `sending` feature), so neither Twilio's request code, SES's client, the
message texts of any language nor the phone metadata's regular-expression engine is in it;
send-code has them all. The AWS-LC library those builds link was compiled without CPU-jitter
entropy (.cargo/config.toml). fraud-guard and events, which read the table's stream, link neither
delivery code nor the send routes. The binary budgets hold (send-code 8.5 MB, events 7 MB,
verify-code and fraud-guard 6 MB), and the sizes are printed for the record."""
import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
# Strings only the delivery code carries: the Twilio Messages API path, and SES's operation name.
TWILIO = b"Messages.json"
SES = b"SendEmail"
# A German email sentence (the languages' texts), and the regex engine's source paths in its panic
# locations (libphonenumber's patterns are what needs it).
TEXTS = "Geben Sie diesen Code ein".encode()
REGEX = b"regex-automata"
# Megabytes, as AWS counts a deployment package (decimal).
BUDGETS = {"SendCodeFunction": 8_500_000, "VerifyCodeFunction": 6_000_000,
           "FraudGuardFunction": 6_000_000, "EventsFunction": 7_000_000}


def bootstrap(function):
    path = BUILD / function / "bootstrap"
    if not path.is_file():
        raise AssertionError(f"{path} is missing: run `sam build` first")
    return path.read_bytes()


def cross_built_aws_lc():
    """The AWS-LC static libraries cargo lambda built for the Lambda target (sam build's)."""
    return sorted(ROOT.glob("target/*-unknown-linux-gnu/release/build/aws-lc-sys-*/out/**/*.a"))


class Artifacts(unittest.TestCase):
    def test_aws_lc_is_built_without_jitter_entropy(self):
        libraries = cross_built_aws_lc()
        self.assertTrue(libraries, "no AWS-LC library under target/<lambda target>: run sam build")
        for library in libraries:
            # jitterentropy's entry point; its symbol is in the archive when the code is built in.
            self.assertNotIn(b"jent_entropy_init", library.read_bytes(), library)

    def test_verify_code_links_no_delivery_code(self):
        binary = bootstrap("VerifyCodeFunction")
        self.assertNotIn(TWILIO, binary)
        self.assertNotIn(SES, binary)

    def test_verify_code_links_no_send_route_code(self):
        binary = bootstrap("VerifyCodeFunction")
        self.assertNotIn(TEXTS, binary)
        self.assertNotIn(REGEX, binary)

    def test_fraud_guard_links_no_delivery_and_no_send_route_code(self):
        binary = bootstrap("FraudGuardFunction")
        for absent in (TWILIO, SES, TEXTS, REGEX):
            self.assertNotIn(absent, binary)

    def test_events_links_no_delivery_and_no_send_route_code(self):
        binary = bootstrap("EventsFunction")
        for absent in (TWILIO, SES, TEXTS, REGEX):
            self.assertNotIn(absent, binary)

    def test_send_code_links_both_providers_the_texts_and_the_phone_metadata(self):
        binary = bootstrap("SendCodeFunction")
        self.assertIn(TWILIO, binary)
        self.assertIn(SES, binary)
        self.assertIn(TEXTS, binary)
        self.assertIn(REGEX, binary)

    def test_sizes_within_budget(self):
        for function, budget in BUDGETS.items():
            size = len(bootstrap(function))
            print(f"\n{function}: {size:,} bytes ({size / 1e6:.2f} MB, budget {budget / 1e6:.1f} MB)", end="")
            self.assertGreater(size, 1_000_000)
            self.assertLessEqual(size, budget, f"{function} is over its budget")


if __name__ == "__main__":
    unittest.main()
