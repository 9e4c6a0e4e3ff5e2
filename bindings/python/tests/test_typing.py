"""The type hints hold: mypy --strict over the package as installed (Debian's python3-mypy)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

import libwebhook as wh


class TypingTest(unittest.TestCase):
    def test_mypy_strict(self) -> None:
        package = os.path.dirname(wh.__file__)
        with tempfile.TemporaryDirectory() as cache:
            p = subprocess.run(
                [sys.executable, "-m", "mypy", "--strict", "--cache-dir", cache, package],
                capture_output=True, text=True, timeout=300,
            )
        if "No module named mypy" in p.stderr:
            self.fail("mypy missing: scripts/deps.sh installs python3-mypy")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
