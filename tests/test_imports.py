"""The queue, the store and the listing commands must start without torch (about
2 s of import time here): names and configs validate from torch-free modules."""

import subprocess
import sys


def test_config_and_registry_import_without_torch() -> None:
    code = (
        "import sys, rlmrec.config, rlmrec.registry, rlmrec.models, rlmrec.align;"
        "rlmrec.config.resolve_config('gccf', 'con', 'amazon');"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
