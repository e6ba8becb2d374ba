"""What `sam build` ships (run after it in make test): each function's bootstrap holds only the
code its routes need. verify-code is built without the delivery features, so neither Twilio's
request code nor SES's client is in it; send-code has both. Sizes are printed for the record."""
import pathlib
import unittest

BUILD = pathlib.Path(__file__).resolve().parent.parent / ".aws-sam" / "build"
# Strings only the delivery code carries: the Twilio Messages API path, and SES's operation name.
TWILIO = b"Messages.json"
SES = b"SendEmail"


def bootstrap(function):
    path = BUILD / function / "bootstrap"
    if not path.is_file():
        raise AssertionError(f"{path} is missing: run `sam build` first")
    return path.read_bytes()


class Artifacts(unittest.TestCase):
    def test_verify_code_links_no_delivery_code(self):
        binary = bootstrap("VerifyCodeFunction")
        self.assertNotIn(TWILIO, binary)
        self.assertNotIn(SES, binary)

    def test_send_code_links_both_providers(self):
        binary = bootstrap("SendCodeFunction")
        self.assertIn(TWILIO, binary)
        self.assertIn(SES, binary)

    def test_sizes(self):
        for function in ("SendCodeFunction", "VerifyCodeFunction"):
            size = len(bootstrap(function))
            print(f"\n{function}: {size:,} bytes ({size / 1e6:.2f} MB)", end="")
            self.assertGreater(size, 1_000_000)


if __name__ == "__main__":
    unittest.main()
