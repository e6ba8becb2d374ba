#!/usr/bin/env python3
"""The parameter and output tables of docs/deployment.md, generated from template.yaml so that
every parameter is described where a deployer reads (`make deploy-docs` rewrites them;
tests/template_test.py fails when the committed tables are stale)."""
import pathlib
import sys

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "deployment.md"
BEGIN, END = "<!-- generated:parameters -->", "<!-- end generated:parameters -->"


def cell(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def tables(template):
    lines = [BEGIN, "", "| Parameter | Default | Allowed | What it sets |", "|---|---|---|---|"]
    for name, p in template["Parameters"].items():
        default = p.get("Default")
        default = "*(none)*" if default is None else ("*(empty)*" if default == "" else f"`{default}`")
        allowed = []
        if "AllowedValues" in p:
            allowed.append(", ".join(f"`{v}`" for v in p["AllowedValues"]))
        if "MinValue" in p or "MaxValue" in p:
            allowed.append(f"{p.get('MinValue', '')}–{p.get('MaxValue', '')}")
        if "AllowedPattern" in p:
            allowed.append(cell(p.get("ConstraintDescription", p["AllowedPattern"])))
        lines.append(f"| `{name}` | {default} | {'; '.join(allowed)} | {cell(p['Description'])} |")
    lines += ["", "| Output | What it is |", "|---|---|"]
    for name, o in template["Outputs"].items():
        condition = f" (only with the condition {o['Condition']})" if "Condition" in o else ""
        lines.append(f"| `{name}` | {cell(o['Description'])}{condition} |")
    lines += ["", END]
    return "\n".join(lines)


def rendered():
    template, errors = decode(str(ROOT / "template.yaml"))
    if errors:
        sys.exit(f"template.yaml does not parse: {errors}")
    text = GUIDE.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return text, head + tables(template) + tail


if __name__ == "__main__":
    current, fresh = rendered()
    if "--write" in sys.argv:
        GUIDE.write_text(fresh)
    elif current != fresh:
        sys.exit("docs/deployment.md's tables are stale: run `make deploy-docs`")
