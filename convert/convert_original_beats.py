# Copyright 2026 The beats_hf developers. Licensed under the MIT License.
"""Convert official BEATs checkpoints (microsoft/unilm `beats/`) into Hugging Face folders.

    python convert/convert_original_beats.py --checkpoint BEATs_iter3_plus_AS2M.pt --output-dir beats-iter3-plus-as2m
    python convert/convert_original_beats.py --checkpoint-dir official/ --output-dir converted/
    python convert/convert_original_beats.py --checkpoint X.pt --output-dir out/ --push-to-hub OWNER/NAME

The kind (pre-trained, fine-tuned, tokenizer) is detected from the file. Each output folder holds
`model.safetensors`, `config.json` (complete `auto_map`), `preprocessor_config.json`, the model code for
`trust_remote_code=True` and a model card. The logic lives in `beats_hf.conversion`; `--help` lists the options.
"""

import sys
from pathlib import Path

try:
    import beats_hf  # noqa: F401
except ImportError:  # running from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from beats_hf.conversion import main_convert_original

if __name__ == "__main__":
    sys.exit(main_convert_original())
