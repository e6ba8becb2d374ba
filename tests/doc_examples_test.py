"""The shell examples of README.md and docs/api.md, run in order against the real server binary as
a reader would run them (part of `make test`), so that they cannot rot.

Every ```sh block of those files is run, command by command, in one shell state (a variable set
by one command is there for the next). Below a command, comment lines that start with `{` or with
a status (`# 401 {...}`) are its documented answer: the body must be that JSON (a string ending in
`...` matches any value that starts with what comes before it) and the status that number. What a
reader would do by hand is done for them: `localhost:8000` is the test's server, `123456` in a
command is the code the server printed last, `make run &` (with its variables) restarts the server
with that environment, and `cargo run -q --bin otp-service --` is the built binary. The ```sh
blocks of the other docs/ pages are checked with `bash -n` (they need AWS or a second terminal).

Usage: python tests/doc_examples_test.py path/to/otp-service
"""
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUN = ["README.md", "docs/api.md"]
CODE = re.compile(r"code is (\d{4,10})")
FENCE = re.compile(r"^```sh\s*$")


def blocks(path):
    """The ```sh blocks of a Markdown file, each as its list of lines."""
    found, current = [], None
    for line in (ROOT / path).read_text().splitlines():
        if current is None and FENCE.match(line):
            current = []
        elif current is not None and line.startswith("```"):
            found.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return found


def commands(block):
    """(command, expected answer text or None) pairs of a block."""
    steps, i = [], 0
    while i < len(block):
        line = block[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        command = line
        while command.rstrip().endswith("\\") and i + 1 < len(block):
            i += 1
            command = command.rstrip()[:-1] + " " + block[i].strip()
        i += 1
        expected = None
        if i < len(block) and re.match(r"#\s*(\d{3} )?\{", block[i]):
            expected = block[i][1:].strip()
            i += 1
            while i < len(block) and block[i].startswith("#  "):
                expected += " " + block[i][1:].strip()
                i += 1
        steps.append((command, expected))
    return steps


def matches(expected, actual):
    if isinstance(expected, str) and expected.endswith("...") and isinstance(actual, str):
        return actual.startswith(expected[:-3])
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(map(matches, expected, actual))
    return expected == actual


class Server:
    """The binary on a free port; its stdout (the console delivery) collected."""

    def __init__(self, binary, extra_env):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OTP_", "TWILIO_", "EMAIL_", "SES_", "AWS_"))}
        env.update(PORT="0", RUST_LOG="warn", **extra_env)
        self.process = subprocess.Popen([binary], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, text=True)
        self.lines = []
        banner = self.process.stdout.readline()
        if not banner.startswith("OTP service listening on "):
            raise SystemExit(f"the server did not start: {banner!r} {self.process.stderr.read()}")
        self.url = banner.split()[-1]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def codes(self):
        return [m.group(1) for line in list(self.lines) for m in [CODE.search(line)] if m]

    def last_code(self):
        codes = self.codes()
        return codes[-1] if codes else None

    def wait_for_code(self, seen, timeout=10):
        """Until the console shows more than `seen` codes: a send's line may reach this reader
        after the answer reached curl."""
        deadline = time.time() + timeout
        while len(self.codes()) <= seen and time.time() < deadline:
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(20)


class Shell:
    """One shell state across commands: the variables that commands assign."""

    def __init__(self):
        self.state = tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False)
        self.state.close()
        self.names = set()

    def run(self, command):
        self.names.update(re.findall(r"(?:^|[;&]\s*)([A-Za-z_]\w*)=", command))
        save = f"declare -p {' '.join(sorted(self.names))} > {self.state.name} 2>/dev/null; true" \
            if self.names else "true"
        script = f"source {self.state.name}\n{command}\nstatus=$?\n{save}\nexit $status\n"
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120)

    def value(self, raw):
        """`raw` (a variable assignment's value) with the shell's variables expanded."""
        return self.run(f'printf %s "{raw}"').stdout


def run_examples(binary):
    failures, ran = [], 0
    server = Server(binary, {})
    shell = Shell()
    try:
        for path in RUN:
            # Blocks that talk to the local server; the others (AWS, IAM) are only syntax-checked.
            for block in (b for b in blocks(path) if any("localhost:8000" in line for line in b)):
                for command, expected in commands(block):
                    ran += 1
                    where = f"{path}: {command[:90]}"
                    restart = re.fullmatch(r"((?:\w+=\S+\s+)*)make run\s*&?\s*(#.*)?", command.strip())
                    if restart:
                        env = {}
                        for assignment in shlex.split(restart.group(1) or ""):
                            name, _, raw = assignment.partition("=")
                            env[name] = shell.value(raw)
                        server.stop()
                        server = Server(binary, env)
                        continue
                    command = command.replace("cargo run -q --bin otp-service --", shlex.quote(binary))
                    command = command.replace("localhost:8000", server.url.removeprefix("http://"))
                    status = None
                    if expected and re.match(r"\d{3} ", expected):
                        status, expected = int(expected[:3]), expected[4:]
                        command += " -w '\\n%{http_code}'"
                    if "123456" in command:
                        code = server.last_code()
                        if code is None:
                            failures.append(f"{where}: no code printed before it")
                            continue
                        command = command.replace("123456", code)
                    seen = len(server.codes())
                    result = shell.run(command)
                    if '"OTP sent' in result.stdout:
                        server.wait_for_code(seen)
                    if result.returncode != 0:
                        failures.append(f"{where}: exit {result.returncode}: {result.stderr[-500:]}")
                        continue
                    if expected is None:
                        continue
                    output = result.stdout.strip()
                    if status is not None:
                        output, _, got = output.rpartition("\n")
                        if got != str(status):
                            failures.append(f"{where}: status {got}, documented {status}")
                    want, _ = json.JSONDecoder().raw_decode(expected)
                    try:
                        got_json = json.loads(output)
                    except ValueError:
                        failures.append(f"{where}: not JSON: {output[:300]}")
                        continue
                    if not matches(want, got_json):
                        failures.append(f"{where}:\n  documented {json.dumps(want)}\n  got        {json.dumps(got_json)}")
    finally:
        server.stop()
        os.unlink(shell.state.name)
    return ran, failures


def syntax_only():
    failures, checked = [], 0
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        path = str(page.relative_to(ROOT))
        for block in blocks(path):
            if path in RUN and any("localhost:8000" in line for line in block):
                continue
            checked += 1
            result = subprocess.run(["bash", "-n"], input="\n".join(block), capture_output=True, text=True)
            if result.returncode != 0:
                failures.append(f"{path}: {result.stderr.strip()}")
    return checked, failures


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^a-z0-9\- ]", "", text).replace(" ", "-")


def broken_links():
    """Relative links of README.md, CHANGELOG.md, SECURITY.md and docs/ whose file or heading
    does not exist."""
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "SECURITY.md",
             *sorted((ROOT / "docs").glob("*.md"))]
    broken, checked = [], 0
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such file")
            elif anchor and file.suffix == ".md":
                headings = {slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}
                if anchor not in headings:
                    broken.append(f"{page.relative_to(ROOT)}: {target}: no such heading")
    return checked, broken


def main():
    binary = str(pathlib.Path(sys.argv[1]).resolve())
    ran, failures = run_examples(binary)
    checked, syntax = syntax_only()
    failures += syntax
    links, broken = broken_links()
    failures += broken
    for failure in failures:
        print(f"FAIL {failure}")
    if ran < 15:
        failures.append(f"only {ran} commands found")
    passed = ran + checked + links - len(failures)
    print(f"doc examples: {ran} commands run, {checked} blocks syntax-checked, {links} links followed")
    print(f"{passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
