# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Session setup: make transformers' test mixins importable as `hf_tests` before any test module is collected."""

import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

# pytest's default import mode already puts this folder on sys.path; other modes do not, and the test modules import
# the `hf_mixins` helper next to this file.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import hf_mixins  # noqa: E402

try:
    hf_mixins.materialize_hf_test_mixins(REPO_ROOT / "hf_tests")
except Exception:
    # Not fatal here: only the tests built on the mixins need them, and they fail with
    # `hf_mixins.unavailable_message()`, which includes this error.
    pass
