"""A record's error as a user needs it: at the line the record starts on in its file, with the
file's own name of a column a release renames or spells with spaces, and the task whose release
file it is when it was given as another's.

Serves the `injection_task` and `target_task` config groups, for `layerft/records.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from layerft.errors import LayerftError
from layerft.kinds.base import Record
from layerft.readers import record_line

if TYPE_CHECKING:
    from layerft.task import TaskConfig


def spaced(err: LayerftError, record: Record) -> LayerftError:
    """A missing column the record names with spaces around it (a CSV header written `a, b`),
    which the list of its columns does not show."""
    for own in record:
        if isinstance(own, str) and own != own.strip() and f"no column '{own.strip()}'" in str(err):
            return LayerftError(f"{err}; the file names it {own!r}, with spaces around it")
    return err


def placed(
    err: LayerftError, task: TaskConfig, group: str, origin: str, number: int
) -> LayerftError:
    """A record's error with the line the record starts on in its file (the kinds know only its
    number), and the file's own name of a column a release renames."""
    message = str(err)
    read_as = {"data_files": "records", "data_dir": task.release_format}.get(task.source)
    line = None if read_as is None else record_line(Path(origin), read_as, number)
    if line is not None:
        message = message.replace(f"{origin}: record", f"{origin}:{line}: record", 1)
    for own, renamed in task.release_rename.items() if read_as is not None else ():
        if f"no column '{renamed}'" in message:
            message += f" ('{renamed}' is {group}.release_rename of the file's '{own}')"
    name = Path(origin).name
    if task.source == "data_files" and "no column '" in message:  # a release file read as records
        if name in task.release_files.values():  # its own
            message += (
                f"; {name} is a release file of '{task.name}': give its folder, "
                f"{group}.data_dir={Path(origin).parent}"
            )
        elif others := release_file_of(name, group):
            # A hint, not a verdict: a file of one's own may share a generic name (`train.tsv`).
            message += (
                f"; a release file of {', '.join(others)} is also named {name}: if this is one, "
                f"choose that task, not '{task.name}'"
            )
    return LayerftError(message)


def release_file_of(name: str, group: str) -> list[str]:
    """The shipped options of `group` whose release_files name `name` (another task's file)."""
    import yaml

    from layerft.config_errors import CONF

    found = []
    for path in sorted((CONF / group).glob("*.yaml")):
        release = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("release_files")
        if isinstance(release, dict) and name in release.values():
            found.append(f"'{path.stem}'")
    return found
