"""The core crate's layering: no module of shared/src refers to a module that refers back to it.
Test code (files named *tests.rs, and everything after a file's first #[cfg(test)]) and comments
do not count: a test may build the service through the start-up builder."""
import pathlib
import re
import unittest

SRC = pathlib.Path(__file__).resolve().parent.parent / "shared" / "src"


def references():
    edges = {}
    for path in SRC.rglob("*.rs"):
        relative = path.relative_to(SRC).parts
        if path.name.endswith("tests.rs") or relative == ("lib.rs",):
            continue
        module = relative[0].removesuffix(".rs")
        code = path.read_text().split("#[cfg(test)]")[0]
        code = "\n".join(line.split("//")[0] for line in code.splitlines())
        for target in re.findall(r"\$?crate::([a-z_]+)", code):
            is_module = (SRC / f"{target}.rs").exists() or (SRC / target).is_dir()
            if target != module and is_module:
                edges.setdefault(module, set()).add(target)
    return edges


class Layering(unittest.TestCase):
    def test_no_module_refers_to_one_that_refers_back(self):
        edges = references()
        cycles = sorted((a, b) for a in edges for b in edges[a] if a < b and a in edges.get(b, ()))
        self.assertEqual(cycles, [], edges)

    def test_the_engine_knows_nothing_of_http_lambda_or_start_up(self):
        self.assertFalse(references()["engine"] & {"http", "lambda", "startup", "openapi"})


if __name__ == "__main__":
    unittest.main()
