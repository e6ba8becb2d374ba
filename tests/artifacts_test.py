"""What `sam build` ships (run after it in make test): each function's bootstrap holds only the
code its routes need. verify-code is built without the delivery features, so neither Twilio's
request code nor SES's client is in it; send-code has both. The AWS-LC library those builds link
was compiled without CPU-jitter entropy (.cargo/config.toml). Sizes are printed for the record."""
import pathlib
import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
# Strings only the delivery code carries: the Twilio Messages API path, and SES's operation name.
TWILIO = b"Messages.json"
SES = b"SendEmail"


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
