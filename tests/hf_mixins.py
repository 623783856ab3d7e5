# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Make transformers' own test mixins importable as the `hf_tests` package.

`ModelTesterMixin`, `ConfigTester` and `SequenceFeatureExtractionTestMixin` live in the top-level `tests/` folder of
the transformers repository. The wheel does not ship them, but the PyPI source distribution does, so they are taken
from the sdist of the *installed* version (the mixins import private transformers internals and must match it
exactly). The sdist lacks three modules those files import; they are replaced by the stubs below, which only drop
the torch.export and generate() tests, irrelevant to an audio encoder.

The generated folder (`<repo>/hf_tests/`) is git-ignored and regenerated when the transformers version changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

MIXIN_FILES = (
    "test_modeling_common.py",
    "test_configuration_common.py",
    "test_feature_extraction_common.py",
    "test_sequence_feature_extraction_common.py",
)

STUBS = {
    "__init__.py": "",
    "exporters/__init__.py": "",
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "generation/__init__.py": "",
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "utils/__init__.py": "",
    "utils/test_configuration_utils.py": (
        "config_common_kwargs = {\n"
        '    "return_dict": False, "output_hidden_states": True, "dtype": "float16", "chunk_size_feed_forward": 5,\n'
        '    "architectures": ["BertModel"], "id2label": {0: "label"}, "label2id": {"label": "0"},\n'
        '    "problem_type": "regression",\n'
        "}\n"
    ),
}

# Written last: its presence (with the right version) means the folder is complete.
VERSION_MARKER = ".transformers_version"

DOWNLOAD_TIMEOUT_S = 600

# Set by the last failed `materialize_hf_test_mixins` call, so tests can report why the mixins are missing.
last_error: Exception | None = None


class HFMixinsUnavailableError(RuntimeError):
    """The transformers test mixins could not be materialised (no PyPI access, pip missing, ...)."""


def _is_complete(dest: Path, version: str) -> bool:
    marker = dest / VERSION_MARKER
    if not marker.is_file() or marker.read_text().strip() != version:
        return False
    return all((dest / name).is_file() for name in (*MIXIN_FILES, *STUBS))


def _write_atomic(path: Path, data: bytes) -> None:
    # Another pytest process may generate the same folder concurrently; a rename never exposes a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download_sdist(version: str, workdir: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"transformers=={version}",
        "-d",
        str(workdir),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HFMixinsUnavailableError(f"`{' '.join(command)}` could not run: {exc}") from exc
    if done.returncode != 0:
        raise HFMixinsUnavailableError(
            f"`{' '.join(command)}` failed (exit code {done.returncode}):\n{done.stderr.strip()[-2000:]}"
        )
    archives = sorted(workdir.glob("transformers-*.tar.gz"))
    if not archives:
        raise HFMixinsUnavailableError(f"pip download succeeded but left no transformers sdist in {workdir}.")
    return archives[0]


def materialize_hf_test_mixins(dest: Path) -> Path:
    """
    Make sure `dest` holds transformers' test mixins for the installed version, downloading them if needed.

    Copies `tests/{test_modeling_common,test_configuration_common,test_feature_extraction_common,
    test_sequence_feature_extraction_common}.py` from the transformers sdist on PyPI (`pip download --no-deps
    --no-binary :all:`) into `dest` and writes the package `__init__.py` files and stub modules they need.
    Does nothing when `dest` is already complete for this transformers version.

    Args:
        dest: the folder to fill, normally `<repo>/hf_tests` (importable as `hf_tests` from the repo root).

    Returns:
        `dest`.

    Raises:
        HFMixinsUnavailableError: the sdist could not be downloaded or does not contain the expected files.
    """
    global last_error
    dest = Path(dest)
    version = transformers.__version__
    if _is_complete(dest, version):
        return dest
    try:
        with tempfile.TemporaryDirectory(prefix="hf-sdist-") as workdir:
            archive = _download_sdist(version, Path(workdir))
            with tarfile.open(archive, "r:gz") as tar:
                root = tar.getnames()[0].split("/")[0]
                for name in MIXIN_FILES:
                    try:
                        member = tar.extractfile(f"{root}/tests/{name}")
                    except KeyError:
                        member = None
                    if member is None:
                        raise HFMixinsUnavailableError(f"{archive.name} has no tests/{name}.")
                    _write_atomic(dest / name, member.read())
        for name, text in STUBS.items():
            _write_atomic(dest / name, text.encode())
        _write_atomic(dest / VERSION_MARKER, f"{version}\n".encode())
    except Exception as exc:
        last_error = exc
        raise
    last_error = None
    return dest


def unavailable_message() -> str:
    """Explanation for tests that need the mixins when materialisation failed."""
    cause = repr(last_error) if last_error is not None else "no download error was recorded"
    return (
        f"transformers' test mixins (the `hf_tests` package) are not available ({cause}). tests/conftest.py takes "
        f"them from the transformers=={transformers.__version__} sdist on PyPI with `pip download`: give pip access "
        "to PyPI (or run `python tests/hf_mixins.py` where it has access) and re-run the tests."
    )


if __name__ == "__main__":
    print(materialize_hf_test_mixins(Path(__file__).resolve().parents[1] / "hf_tests"))
