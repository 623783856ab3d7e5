# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Write a beats_hf folder back as an official BEATs checkpoint (loadable strictly by microsoft/unilm's code).

    python convert/convert_hf_to_original.py --model-dir beats-iter3-plus-as2m --output BEATs_iter3_plus_AS2M.pt

Works for `BeatsModel`, `BeatsForAudioClassification` and `BeatsTokenizerModel` folders. A folder converted from
an official file gives that file's content back bit for bit. The logic lives in `beats_hf.conversion`.
"""

import sys
from pathlib import Path

try:
    import beats_hf  # noqa: F401
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from beats_hf.conversion import main_convert_to_original

if __name__ == "__main__":
    sys.exit(main_convert_to_original())
