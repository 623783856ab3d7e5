# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Helpers for the command-line entry points (beats-hf, the converters)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """
    No transformers warnings, load reports or progress bars while the block runs, so that a command's errors stay
    one line; the previous settings come back afterwards (commands also run in-process, e.g. from tests).
    """
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    progress = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if progress:
            transformers_logging.enable_progress_bar()


__all__ = ["quiet_transformers"]
