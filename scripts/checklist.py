"""One named list of end-to-end checks (the Lambda e2e, the browser test): each check prints
`ok` or stops the run with `FAIL` and what it saw."""
import sys


class Checklist:
    def __init__(self, name):
        self.name = name
        self.passed = []

    def check(self, label, condition, detail=""):
        if not condition:
            print(f"FAIL {label}: {detail}")
            print(f"{self.name}: {len(self.passed)} passed, 1 failed")
            sys.exit(1)
        self.passed.append(label)
        print(f"ok   {label}")

    def summary(self, extra=""):
        print(f"{self.name}: {len(self.passed)} passed, 0 failed{extra}")
