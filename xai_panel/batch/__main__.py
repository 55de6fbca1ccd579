"""``python -m xai_panel.batch DATA [options]``: the precompute CLI on its own."""

import sys

from ..cli_store import main_precompute

if __name__ == "__main__":
    sys.exit(main_precompute())
