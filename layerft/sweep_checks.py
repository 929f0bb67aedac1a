"""sweep.py's own command line checked before the grid is planned: the grid's name, the overrides
that would swap or empty its params, and the `--dir` it writes to. Each would otherwise pass the
plan and run another grid, a grid other than its params say, or stop only at the launch (a dry run
that passes is a run that starts).

Serves the `sweep` config group's runs: `layerft/sweep.py` calls these.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from hydra.errors import HydraException

from layerft.errors import LayerftError
from layerft.sweep_hydra import overlaps, split_overrides


def check_grid_name(grid: str) -> None:
    """The grid's name reads as one option in Hydra's override grammar (`sweep=<grid>`, as the
    launch passes it): a file named `a=b.yaml` or `a,b.yaml` stopped on Hydra's parse error, which
    names no grid, or its advice to add --multirun. Nor is it spelled as a file: `demo.yaml` ran
    demo into multirun_outputs/demo.yaml/, apart from demo's results; `../sweep/mine` ran a grid
    of the search path into a folder outside multirun_outputs/."""
    if grid.endswith(".yaml") or grid.startswith("/") or {".", ".."} & set(grid.split("/")):
        raise LayerftError(
            f"grid '{grid}': name it as sweep.py lists it (its file's name in a sweep/ folder "
            "without .yaml, e.g. demo), not by a path"
        )
    try:
        [override] = split_overrides([f"sweep={grid}"])[0]
        # `1`, `true`, `null` read as a number, a bool, no choice: refused naming `sweep=` alone
        unread = override.is_sweep_override() or not isinstance(override.value(), str)
    except HydraException:  # `a=b`, `a~b`, letters outside ASCII
        unread = True
    if unread:
        raise LayerftError(
            f"grid '{grid}': Hydra cannot read that name as one option (sweep={grid}); "
            "rename its file with ASCII letters, digits, '-', '_' and '.' (not a number, true "
            "or null)"
        )


def check_grid_overrides(grid: str, overrides: Sequence[str]) -> None:
    """No override picks another grid (`sweep=other`: its params ran into this grid's folder) or
    sets the grid's params (`hydra.sweeper.params.seed=4,5` swept a key of that name beside the
    grid's: twice the jobs, each the run of another; `hydra.sweeper.params={}` was ignored)."""
    for override in split_overrides(overrides)[0]:
        key = override.key_or_group
        if key.split("@")[0] == "sweep":
            raise LayerftError(
                f"{override.input_line}: sweep.py's first argument names the grid "
                f"(python sweep.py <grid>, here {grid}); give no sweep= override"
            )
        if overlaps(key, "hydra.sweeper.params"):  # hydra.sweeper whole: check_hydra_overrides
            raise LayerftError(
                f"{key}: a grid's params are its file's; narrow or extend them with plain "
                "overrides (seed=4,5)"
            )


def folder_argument(text: str) -> Path:
    """A folder option's path: `''` is refused, not read as the current folder (`--dir ''` wrote
    the jobs and tables there, `aggregate ''` tabled every record under it)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; name the folder ('.' for this one)")
    return Path(text)


def check_sweep_dir(sweep_dir: Path, option: str = "--dir") -> None:
    """`--dir` is a folder, or one that can be made: a UTF-8 path without `${`, whose nearest
    existing path above it is a writable folder (a dry run had passed a folder inside a file,
    which the run refused). `option`: how the messages name it (`--dir`, or "the sweep folder"
    where sweep.py chose it)."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise LayerftError(f"{option} {sweep_dir}: not a folder")
    try:  # bytes that are no UTF-8 (surrogate escapes): safetensors and the tables refuse them
        str(sweep_dir).encode("utf-8")
    except UnicodeEncodeError:
        raise LayerftError(f"{option} {ascii(str(sweep_dir))}: not a UTF-8 path") from None
    if "${" in str(sweep_dir):  # Hydra resolves the job folders it joins to it
        raise LayerftError(f"{option} {sweep_dir}: Hydra would read its '${{' as an interpolation")
    above = sweep_dir.absolute()
    while not above.exists() and above != above.parent:
        above = above.parent
    if above == sweep_dir.absolute():  # a folder already (a dry run may list a read-only one)
        return
    if not above.is_dir() or not os.access(above, os.W_OK | os.X_OK):
        why = "is not a folder" if not above.is_dir() else "is not writable"
        raise LayerftError(
            f"{option} {sweep_dir}: cannot use it as the sweep folder ({above} {why})"
        )
