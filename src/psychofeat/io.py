"""Atomic, self-describing outputs, written one way everywhere.

Files: every result file is written to a temporary file in the same folder and renamed into place, so a killed run
never leaves a half-written file. An existing target that is not a regular file (a folder, a symbolic link, a device,
a fifo) is refused, naming what it is, never replaced. Without `overwrite` the file is committed with `os.link`
(or `O_EXCL` creation where a file system has no hard links), which fails if the name exists at that moment: two
runs writing one `--out` cannot both succeed, whatever their timing.

Folders: an output folder holds exactly one run. `run_folder` builds the run in a fresh folder beside the target
(`tempfile.mkdtemp` in the same parent) and swaps it in whole at the end (`os.rename`; with `overwrite` the previous
run is renamed aside first and deleted only once the new one is in place), so an interrupted run leaves the previous
one untouched and never a mix; its `manifest.json` lists exactly the files present. Resumable verbs (invert,
sr train, sr experiment) keep their state in the folder itself: `prepare_out_dir` clears a previous run's outputs
when a fresh run is asked for. `--overwrite` replaces only psychofeat's own output folders (one with a
`manifest.json`, or the verb's own state files): a non-empty folder of other files is refused, never deleted.

`provenance()` records what produced a result so any figure can be reproduced.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from psychofeat._version import __version__
from psychofeat.errors import InputError, OutputError, OutputExistsError
from psychofeat.machine import describe

#: every run folder holds this file; it lists the run's files under "outputs"
MANIFEST = "manifest.json"


def kind_of(st: os.stat_result) -> str:
    """What a file-system entry is, in words ("a symbolic link", "a character device", ...)."""
    mode = st.st_mode
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a regular file"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe (fifo)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a parent is a file: reported by _check_parent
        return None
    except OSError as exc:
        raise _output_error(path, exc) from exc


def _output_error(path: Path, exc: OSError, action: str = "write") -> OutputError:
    """An OSError met while writing `path`, as a one-line `OutputError` naming the path and the reason."""
    reason = {errno.EACCES: "permission denied: the folder is read-only for you",
              errno.EPERM: "operation not permitted: the folder is read-only",
              errno.EROFS: "the file system is read-only",
              errno.ENOENT: "a folder on the way does not exist and cannot be created",
              errno.ENOTDIR: "a part of the path is a file, not a folder",
              errno.EISDIR: "it is a folder",
              errno.ENOSPC: "no space left on the device",
              errno.EDQUOT: "disk quota exceeded",
              errno.ENAMETOOLONG: "the name is too long",
              errno.ELOOP: "too many symbolic links on the way"}.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(f"cannot {action} {path}: {reason}. Choose another output path.")


def _first_existing(path: Path) -> Path:
    """The nearest ancestor of `path` (or `path` itself) that exists (a dangling link counts as existing)."""
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _check_parent(path: Path) -> None:
    """Refuse an output path that lies under a file or in a folder this process cannot write (checked by creating
    and removing an anonymous temporary file, which also holds for root and read-only mounts)."""
    anc = _first_existing(path.parent)
    st = os.stat(anc) if os.path.exists(anc) else None
    if st is None or not stat.S_ISDIR(st.st_mode):
        what = kind_of(os.lstat(anc)) if st is None else kind_of(st)
        what = "a dangling symbolic link" if st is None and what == "a symbolic link" else what
        raise OutputError(f"cannot write {path}: {anc} is {what}, not a folder. Choose another output path.")
    try:
        with tempfile.TemporaryFile(dir=anc):
            pass
    except OSError as exc:
        raise _output_error(path, exc) from exc


def _mkdirs(folder: Path, target: Path) -> list[Path]:
    """Create `folder` and its missing parents; return the folders created (deepest last), for clean-up."""
    missing = []
    p = folder
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            _remove_empty(created)
            raise _output_error(target, exc) from exc
        created.append(d)
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: {folder} is not a folder. Choose another output path.")
    return created


def _remove_empty(folders: Iterable[Path]) -> None:
    """Remove the folders this run created, deepest first, where they are still empty."""
    for d in reversed(list(folders)):
        with contextlib.suppress(OSError):
            d.rmdir()


def check_output_file(path: str | os.PathLike[str], overwrite: bool = True) -> Path:
    """Refuse a file output that cannot or must not be written, before any work: an existing target that is not a
    regular file, an existing file without `overwrite`, a path under a file or in a read-only folder."""
    path = Path(path)
    st = _lstat(path)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path} is a folder; give a file name, e.g. {path / 'scores.csv'}.")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path} exists and is {kind_of(st)}; psychofeat replaces only regular files. Remove "
                              "it or choose another path.")
        if not overwrite:
            raise OutputExistsError(f"{path} exists; pass --overwrite to replace it, or choose another path.")
    _check_parent(path)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _commit_file(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished `tmp` onto `path`: a replace (regular files only) or an exclusive creation."""
    if overwrite:
        st = _lstat(path)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path} exists and is {kind_of(st)}; psychofeat replaces only regular files. Remove "
                              "it or choose another path.")
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise _output_error(path, exc) from exc
        return
    try:
        os.link(tmp, path)  # atomic, and fails if the name exists now
        return
    except FileExistsError:
        raise OutputExistsError(f"{path} was created by another process while this one ran; nothing was written. "
                                "Pass --overwrite to replace it, or choose another path.") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV):
            raise _output_error(path, exc) from exc
    try:  # a file system without hard links: exclusive creation, then the bytes
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise OutputExistsError(f"{path} was created by another process while this one ran; nothing was written. "
                                "Pass --overwrite to replace it, or choose another path.") from None
    except OSError as exc:
        raise _output_error(path, exc) from exc
    with os.fdopen(fd, "wb") as dst, open(tmp, "rb") as src:
        shutil.copyfileobj(src, dst)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is committed onto `path` (`_commit_file`): replaced
    when `overwrite` (regular files only), else created exclusively (an existing `path` is an `OutputExistsError`)."""
    path = Path(path)
    st = _lstat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        check_output_file(path)  # raises, naming what the target is
    _mkdirs(path.parent, path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp creates 0600; give the result the usual permissions
            os.chmod(tmp_path, 0o666 & ~_umask())
        _commit_file(tmp_path, path, overwrite)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> Path:
    with atomic_path(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = True) -> Path:
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def to_json(obj: Any) -> str:
    """JSON text; NaN/inf become null so the file is valid JSON for every reader."""
    return json.dumps(_nan_to_none(obj), indent=2, default=_json_default, allow_nan=False) + "\n"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.floating) and not np.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _nan_to_none(obj.tolist())
    if hasattr(obj, "to_dict"):  # results and configs: their NaNs become null like any other
        return _nan_to_none(obj.to_dict())
    return obj


def write_json(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = True) -> Path:
    return write_text(path, to_json(obj), overwrite=overwrite)


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_table(path: str | os.PathLike[str], df: Any, *, overwrite: bool = True) -> Path:
    """Write a pandas DataFrame as CSV or Parquet (by suffix), atomically."""
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def write_npz(path: str | os.PathLike[str], **arrays: Any) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return path


#: a spreadsheet reads a cell starting with one of these as a formula (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(df: Any, columns: Iterable[str]) -> Any:
    """A copy of `df` whose text `columns` (file names and the like, never numbers) cannot be read as spreadsheet
    formulas: a cell starting with =, +, -, @, tab or CR gets a leading apostrophe, as spreadsheets themselves do."""
    out = df.copy()
    for col in columns:
        if col in out.columns:
            out[col] = [f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v for v in out[col]]
    return out


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_same_settings(saved: Mapping[str, Any], now: Mapping[str, Any], context: str) -> None:
    """Refuse to resume with settings other than the saved ones (a resumed run must replay the same work),
    naming every difference. `context` completes "--resume with other …", e.g. "settings than the run in DIR"."""
    diffs = [f"{k}: {saved.get(k)!r} then, {v!r} now" for k, v in now.items() if saved.get(k) != v]
    if diffs:
        raise InputError(f"--resume with other {context}: " + "; ".join(diffs)
                         + ". Use the original settings, or a new --out.")


def _is_run(folder: Path, owned: Iterable[str]) -> bool:
    """Whether `folder` holds a psychofeat run: its manifest, or one of the verb's own state files."""
    return any((folder / name).exists() for name in (MANIFEST, *owned))


def check_out_dir(out: str | os.PathLike[str], overwrite: bool, owned: Iterable[str] = ()) -> Path:
    """Refuse an output folder that cannot or must not be used, before any work: a target that is not a folder
    (or is a symbolic link), a non-empty folder without `overwrite`, a non-empty folder that is not a psychofeat
    run even with it, a path under a file or in a read-only folder."""
    out = Path(out)
    st = _lstat(out)
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise OutputError(f"--out {out} is a symbolic link; give the real folder's path (psychofeat does not "
                              "replace links).")
        if not stat.S_ISDIR(st.st_mode):
            raise OutputExistsError(f"--out {out} exists and is {kind_of(st)}, not a folder; choose another --out.")
        try:
            non_empty = any(out.iterdir())
        except OSError as exc:
            raise _output_error(out, exc, "list") from exc
        if non_empty:
            if not overwrite:
                raise OutputExistsError(f"output directory {out} is not empty. Pass --overwrite to replace its "
                                        "results, or choose another --out.")
            if not _is_run(out, owned):
                raise OutputExistsError(f"output directory {out} is not empty and holds no psychofeat run (no "
                                        f"{MANIFEST}); --overwrite replaces only psychofeat's own outputs. Choose "
                                        "another --out, or empty it yourself.")
    _check_parent(out / MANIFEST if st is not None else out)
    return out


def _clear(folder: Path) -> None:
    """Remove a previous run's files from `folder` (the folder itself stays)."""
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def prepare_out_dir(out: str | os.PathLike[str], overwrite: bool, *, keep: bool = False,
                    owned: Iterable[str] = ()) -> Path:
    """The output folder of a verb that keeps its state in it (a resumable run), created; a non-empty folder is
    refused without `overwrite` or `keep`. `overwrite` without `keep` removes the previous run's outputs first, so
    the folder never mixes two runs; `keep` (--resume) leaves them to be continued. `owned`: file names that mark
    the folder as this verb's (besides manifest.json), for the --overwrite safety check."""
    out = check_out_dir(out, overwrite or keep, owned)
    if out.is_dir() and overwrite and not keep:
        try:
            _clear(out)
        except OSError as exc:
            raise _output_error(out, exc, "clear the previous run in") from exc
    _mkdirs(out, out)
    return out


def list_files(folder: Path) -> list[str]:
    """Every regular file under `folder`, as sorted '/'-separated relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def record_outputs(folder: Path) -> None:
    """Make `folder/manifest.json` (when there is one) list exactly the files present, under "outputs"."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return
    data = read_json(manifest)
    if isinstance(data, dict):
        data["outputs"] = list_files(folder)
        write_json(manifest, data)


class RunFolder:
    """One run's output folder, built beside its target and swapped in whole on success (module docstring).

    Use as a context manager: write into `.path`; leaving the block normally commits, an exception (or Ctrl-C)
    discards the new folder and leaves the target as it was. Paths recorded in the results should be the final
    ones: `final(p)` maps a path under `.path` to the one it will have.
    """

    def __init__(self, out: str | os.PathLike[str], overwrite: bool = False) -> None:
        self.target = check_out_dir(out, overwrite)
        self.overwrite = overwrite
        # renames work on the normalised absolute path: "--out ." or "a/.." name the folder, not an entry in it
        self._abs = Path(os.path.abspath(self.target))
        if self._abs == self._abs.parent:
            raise OutputError(f"--out {out} is the file system's root; choose a folder for the run.")
        parent = self._abs.parent
        self._created = _mkdirs(parent, self.target)
        self.committed = False
        self.in_place = False
        try:
            self.path = Path(tempfile.mkdtemp(prefix=f".{self._abs.name}.new-", dir=parent))
        except OSError as exc:
            if self.target.is_dir() and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                # the target is writable but its parent is not: the run is written in place, the previous
                # run's outputs removed first (one run per folder still; an interrupted run leaves a partial one)
                self.path = prepare_out_dir(self.target, overwrite)
                self.in_place = True
                return
            _remove_empty(self._created)
            raise _output_error(self.target, exc) from exc
        os.chmod(self.path, 0o777 & ~_umask())

    def final(self, path: str | os.PathLike[str]) -> Path:
        return self.target / Path(path).relative_to(self.path)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def discard(self) -> None:
        """Delete the unfinished run (and the parent folders this run created)."""
        if self.committed:
            return
        if self.in_place:
            with contextlib.suppress(OSError):
                _clear(self.path)
            return
        shutil.rmtree(self.path, ignore_errors=True)
        _remove_empty(self._created)

    def commit(self) -> Path:
        """Swap the finished run in: a rename onto an absent or empty target, else (with overwrite) the previous
        run renamed aside, the new one renamed in, the previous one deleted. Without overwrite a target filled
        meanwhile by another run is an `OutputExistsError`, and this run's results are kept where they are."""
        record_outputs(self.path)
        if self.in_place:
            self.committed = True
            return self.target
        keep = (f"; this run's results are kept in {self.path}: move them where you want them")
        target = self._abs
        try:
            os.rename(self.path, target)  # atomic; fails on a non-empty folder or a file
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise OutputError(f"cannot move the finished run to {self.target} ({exc.strerror}){keep}.") from exc
            st = _lstat(target)
            if not self.overwrite or st is None or not stat.S_ISDIR(st.st_mode):
                what = "filled by another run" if st is not None and stat.S_ISDIR(st.st_mode) else (
                    f"replaced by {kind_of(st)}" if st is not None else "changed")
                raise OutputExistsError(f"{self.target} was {what} while this run worked{keep}.") from None
            try:
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
                os.rename(target, old)  # onto the empty folder just made: the previous run, set aside whole
            except OSError as exc2:
                raise OutputError(f"cannot set the previous run in {self.target} aside ({exc2.strerror}){keep}.") \
                    from exc2
            try:
                os.rename(self.path, target)
            except OSError as exc2:
                os.rename(old, target)  # put the previous run back
                raise OutputExistsError(f"{self.target} could not be replaced ({exc2.strerror}){keep}.") from None
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        return self.target


def run_folder(out: str | os.PathLike[str], overwrite: bool = False) -> RunFolder:
    """A `RunFolder` for `out` (checked now: see `check_out_dir`)."""
    return RunFolder(out, overwrite)


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def provenance(**extra: Any) -> dict[str, Any]:
    """What produced a result: versions, platform, command line, time; plus any extra fields."""
    import torch  # here, not at the top: io also serves torch-free commands

    info: dict[str, Any] = {
        "psychofeat_version": __version__,
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": describe(),
        "command": " ".join(sys.argv),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    info.update(extra)
    return info
