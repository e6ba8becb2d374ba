#!/usr/bin/env python3
"""The local server's pages in a real browser: headless Chromium (Debian's chromium and
chromedriver, which `make test` installs) driven with Selenium against the real `otp-service`
binary on a free port, with every host but 127.0.0.1 made unresolvable, so a page that needed
the internet would fail here.

- /demo: an address, the code read from the console delivery on the server's stdout, a wrong
  code refused with the seed's sentence, the right one accepted, and the token's claims shown
  with its signature checked by the page against /.well-known/jwks.json.
- /docs: Swagger UI renders every route of /openapi.json from the server's own files.
- /redoc: ReDoc does the same, from the bundle compiled into the server.

Screenshots go to target/browser/. Usage: browser_test.py [path/to/otp-service]"""
import json
import os
import pathlib
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as shown
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import checklist  # noqa: E402

SHOTS = ROOT / "target" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHECKS = checklist.Checklist("browser test")
check = CHECKS.check


class Server:
    """The binary with PORT=0; its stdout lines (the URL, then the console deliveries) in a
    queue. Stopped by its PID."""

    def __init__(self, binary):
        env = dict(os.environ, PORT="0", RUST_LOG="warn")
        for var in [v for v in env if v.startswith(("OTP_", "TWILIO_", "EMAIL_", "AWS_ENDPOINT"))]:
            del env[var]
        self.log = open(SHOTS / "server.log", "w")
        self.process = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=self.log,
                                        text=True, env=env, cwd=ROOT)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.lines.get(timeout=30)
        check("the server starts and prints its URL", first.startswith("OTP service listening on "),
              first)
        self.url = first.rsplit(" ", 1)[1]

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def code_sent_to(self, address, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith(f"[dev-delivery] email to {address}:"):
                return re.search(r"\b(\d{6})\b", line).group(1)
        check(f"a code was delivered to {address} on the console", False, "none in time")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def browser(profile):
    for tool in (CHROMIUM, CHROMEDRIVER):
        check(f"{tool} is installed (make test installs Debian's chromium and chromium-driver)",
              shutil.which(tool), tool)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1400",
                 f"--user-data-dir={profile}",
                 # Only the server under test resolves: no CDN, no font service, nothing else.
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


def resources(driver):
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat([location.href])")


def severe_console(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def demo(driver, server):
    address = "demo.user@example.com"
    driver.get(f"{server.url}/demo")
    wait = WebDriverWait(driver, 20)
    driver.find_element(By.ID, "email").send_keys(address)
    driver.find_element(By.ID, "request").click()
    wait.until(shown.visibility_of_element_located((By.ID, "code")))
    check("the demo asks for the code after a send",
          "OTP sent to your email" in driver.find_element(By.ID, "status").text,
          driver.find_element(By.ID, "status").text)
    code = server.code_sent_to(address)
    wrong = "".join(str((int(c) + 1) % 10) for c in code)
    driver.find_element(By.ID, "code").send_keys(wrong)
    driver.find_element(By.ID, "verify").click()
    wait.until(shown.text_to_be_present_in_element((By.ID, "status"), "Invalid or expired OTP"))
    check("a wrong code shows the seed's sentence", True)
    field = driver.find_element(By.ID, "code")
    field.clear()
    field.send_keys(code)
    driver.find_element(By.ID, "verify").click()
    wait.until(shown.visibility_of_element_located((By.ID, "claims")))
    wait.until(lambda d: d.find_element(By.ID, "signature").text)
    claims = json.loads(driver.find_element(By.ID, "claims").text)
    check("the page shows the token's claims for the verified address",
          claims["sub"] == address and claims["channel"] == "email"
          and claims["exp"] - claims["iat"] == 300 and claims["jti"], claims)
    signature = driver.find_element(By.ID, "signature").text
    check("the page checked the signature with the published key (WebCrypto Ed25519)",
          signature.startswith("Signature valid"), signature)
    driver.save_screenshot(str(SHOTS / "demo.png"))
    loaded = resources(driver)
    check("the demo loaded nothing from elsewhere",
          all(u.startswith(server.url) for u in loaded), loaded)
    errors = severe_console(driver)
    # The wrong code's 400 is logged by Chromium as a failed resource load; nothing else may be.
    unexpected = [e for e in errors if "/auth/verify-otp" not in e["message"]]
    check("the demo ran without console errors (no CSP violation, no script error)",
          not unexpected, unexpected)


def docs(driver, server):
    driver.get(f"{server.url}/docs")
    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")) >= 5)
    paths = sorted({e.text.replace("\u200b", "")
                    for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")})
    with open(ROOT / "openapi.json") as document:
        documented = sorted(json.load(document)["paths"])
    check("the docs render every route of the API", paths == documented, (paths, documented))
    driver.save_screenshot(str(SHOTS / "docs.png"))
    loaded = resources(driver)
    check("the docs loaded their scripts and styles from this server only",
          any(u.endswith("/docs/swagger-ui-bundle.js") for u in loaded)
          and all(u.startswith(server.url) for u in loaded), loaded)


def redoc(driver, server):
    driver.get(f"{server.url}/redoc")
    sections = "[data-section-id*='paths/']"
    WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, sections)) >= 5)
    shown = driver.find_element(By.TAG_NAME, "body").text
    with open(ROOT / "openapi.json") as document:
        documented = sorted(json.load(document)["paths"])
    missing = [path for path in documented if path not in shown]
    check("ReDoc renders every route of the API", not missing, missing)
    driver.save_screenshot(str(SHOTS / "redoc.png"))
    # ReDoc's footer asks for its logo from cdn.redoc.ly; the page's CSP refuses it. Nothing else
    # may come from elsewhere, and nothing else may fail.
    logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    loaded = [u for u in resources(driver) if u != logo]
    check("ReDoc loaded its bundle and the document from this server only",
          any(u.endswith("/redoc/redoc.standalone.js") for u in loaded)
          and all(u.startswith((server.url, "blob:", "data:")) for u in loaded), loaded)
    errors = severe_console(driver)
    refused_logo = [e for e in errors if logo in e["message"] and e.get("source") == "security"]
    unexpected = [e for e in errors if e not in refused_logo]
    check("ReDoc ran without console errors (only its logo refused by the CSP)", not unexpected,
          unexpected)


def main():
    binary = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target" / "debug" / "otp-service"
    check("the server binary is built", binary.is_file(), binary)
    SHOTS.mkdir(parents=True, exist_ok=True)
    server = Server(binary)
    profile = tempfile.mkdtemp(prefix="otp-chromium-")
    driver = None
    try:
        driver = browser(profile)
        demo(driver, server)
        docs(driver, server)
        redoc(driver, server)
    finally:
        if driver is not None:
            driver.quit()
        server.stop()
        shutil.rmtree(profile, ignore_errors=True)
    CHECKS.summary(f" (screenshots in {SHOTS})")


if __name__ == "__main__":
    main()
