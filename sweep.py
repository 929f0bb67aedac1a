"""Run a named grid of conf/sweep/ resumably, then aggregate it (see layerft/sweep.py).

python sweep.py <grid> [overrides...] [--dry-run] [--force]
python sweep.py aggregate <sweep folder> [--baseline key=value ...] [--heatmap a b]
"""

import sys

from layerft.console import console_checked, guard_console, undecoded_input
from layerft.interrupts import interrupted_exit
from layerft.processes import quick_exit

# Ctrl-C or SIGTERM while the training stack loads (its first seconds) is the same one line as
# later, not a traceback through torch's imports (nor, for SIGTERM, a silent end)
with interrupted_exit():
    from layerft.sweep import main

if __name__ == "__main__":
    quick_exit()
    guard_console()
    if refused := undecoded_input():
        print(f"error: {refused}", file=sys.stderr)
        sys.exit(2)
    with console_checked():
        sys.exit(main(sys.argv[1:]))
