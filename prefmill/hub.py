"""Publish a store version as a Hugging Face dataset repository, or as the same layout in a local folder.

One commit per version: `data/<config>/<split>-00000-of-00001.parquet` of every config and non-empty
split (cut by prompt, prefmill/splits.py), README.md (the dataset card, prefmill/card.py) and its PNG
plots, then a tag named after the version (`v0003`). The commit message and the card record the
version's content hash and the split settings, so publishing the same version the same way again
changes nothing, and the same version cut differently is a new commit the tag moves to. The token comes from huggingface_hub's usual sources (`HF_TOKEN`, `hf auth login`):
prefmill never takes, stores or prints it, and any error of the client is re-raised as a `StoreError`
with tokens redacted.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefmill.card import MARKER, card_from_manifest, card_marker, version_configs
from prefmill.card_plots import PLOTS_DIR, render_plots
from prefmill.errors import StoreError, cut
from prefmill.splits import Splits, split_path, write_splits
from prefmill.store import file_sha256, read_manifest

REPO_TYPE = "dataset"
README = "README.md"
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""What `--repo` must look like to mean a Hub repository (`namespace/name`); anything else is a folder."""
_HASH_LINE = re.compile(r"prefmill content_hash: ([0-9a-f]{64})")
_SPLIT_LINE = re.compile(r"prefmill splits: (splits=\S+ test_size=\S+)")
_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{6,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\"]+")


@dataclass(frozen=True)
class PublishResult:
    """What `publish` did. `created` False: this version was already there, nothing was sent or written."""

    dataset: str
    version: str  # v0003
    repo: str  # the Hub id, or the folder's path
    kind: str  # "hub" | "folder"
    created: bool
    content_hash: str
    files: tuple[str, ...] = ()  # paths in the repository: data files, README.md, plots
    commit: str | None = None  # the commit's id (Hub only)
    tag: str | None = None  # the version's tag (Hub only)
    url: str | None = None
    plots: tuple[str, ...] = field(default=())
    split_rows: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> {split: rows}
    resplit: bool = False  # the Hub tag was moved from the same version cut with other split settings

    @property
    def message(self) -> str:
        """One line for the CLI."""
        where = f"{self.repo}@{self.tag}" if self.kind == "hub" else self.repo
        if not self.created:
            return (f"{self.dataset} {self.version}: already published to {where} with the same splits "
                    f"(content {self.content_hash[:12]}), nothing to do")
        rows: dict[str, int] = {}
        for per_split in self.split_rows.values():
            for split, n in per_split.items():
                rows[split] = rows.get(split, 0) + n
        text = ", ".join(f"{split} {n:,}" for split, n in rows.items())
        moved = f"; other split settings than before, tag {self.tag} moved to the new commit" if self.resplit else ""
        return f"{self.dataset} {self.version}: published {len(self.files)} files to {where} (rows: {text}){moved}"


def publish(root: Path, dataset: str, version: str | None, *, repo: str, private: bool = False,
            splits: Splits = Splits(), api: Any = None) -> PublishResult:
    """Publish `dataset`'s `version` (None: the latest; `v0003` or `3`) from the store at `root`.

    `repo`: a Hub dataset id `namespace/name` (created when missing, `private` then), or a local
    folder (`./out`, `/abs/out`, `file:///abs/out`; anything that is not `namespace/name`) that gets the
    same files, so `datasets.load_dataset(folder, "pairs")` works offline. `splits`: how every config is
    cut into train and test by prompt (default: a tenth of the prompts in `test`). On the Hub: one
    commit with every config's split files, README.md and plots (files left by an earlier version are
    deleted in that commit), then the tag `vNNNN` on it. A second publish of the same version with the
    same splits is a no-op (`created=False`); with other splits it is a new commit and the tag moves to
    it (refused when main has moved past the tag); a tag `vNNNN` already holding other content is
    refused. `api`: an `huggingface_hub.HfApi` (default: a new one, token from huggingface_hub's usual
    sources). Raises `StoreError` (client errors included, tokens redacted)."""
    manifest = read_manifest(root, dataset, version)
    name = manifest["version"]
    folder = root / dataset / name
    configs = version_configs(manifest)
    sources = {config: _checked(folder, info) for config, info in configs.items()}
    if not sources:
        raise StoreError(f"{folder}: the manifest lists no data files", hint="nothing to publish")
    local = local_target(repo)
    with tempfile.TemporaryDirectory(prefix="prefmill-publish-") as tmp:
        layout = write_splits(sources, splits, Path(tmp))
        data = {split_path(c, s): f.path for c, files in layout.items() for s, f in files.items() if f.path}
        counts = {c: {s: f.rows for s, f in files.items()} for c, files in layout.items()}
        if not data:
            raise StoreError(f"{folder}: every config is empty", hint="nothing to publish")
        plots = {plot.path: Path(tmp) / plot.path for plot in render_plots(manifest, Path(tmp) / PLOTS_DIR)}
        card = card_from_manifest(manifest, layout, repo=str(local) if local else repo, folder=folder, splits=splits)
        if local is not None:
            return _publish_folder(local, manifest, data, plots, card, splits=splits, counts=counts)
        return _publish_hub(api, repo, manifest, data, plots, card, private=private, splits=splits, counts=counts)


def local_target(repo: str) -> Path | None:
    """The folder `repo` names, or None when it is a Hub id (`namespace/name`)."""
    if repo.startswith("file:"):
        parsed = urllib.parse.urlparse(repo)
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"{cut(repr(repo))}: only local file:// URLs are supported", hint="use file:///absolute/path")
        return Path(urllib.request.url2pathname(parsed.path))
    if HUB_ID.fullmatch(repo) and not repo.startswith("."):
        return None
    if not repo.strip():
        raise StoreError("--repo is empty", hint="give a Hub dataset id `namespace/name` or a folder")
    return Path(repo).expanduser()


def redact(text: str) -> str:
    """`text` without Hugging Face tokens: the token huggingface_hub would use, anything shaped like a
    token (`hf_...`) and bearer credentials."""
    secrets = [t for t in (_current_token(), os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")) if t]
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _TOKEN.sub("hf_***", text)
    return _BEARER.sub(r"\1***", text)


# --- local folder ---


def _publish_folder(target: Path, manifest: dict[str, Any], data: dict[str, Path], plots: dict[str, Path],
                    card: str, *, splits: Splits, counts: dict[str, dict[str, int]]) -> PublishResult:
    dataset, name, content_hash = manifest["dataset"], manifest["version"], str(manifest.get("content_hash") or "")
    files = (*data, README, *plots)
    result = PublishResult(dataset, name, str(target), "folder", True, content_hash, files, plots=tuple(plots),
                           split_rows=counts)
    readme = target / README
    if target.exists() and not target.is_dir():
        raise StoreError(f"{target}: is a file, not a folder", hint="give --repo a folder (or a path to create)")
    previous = _read_text(readme)
    if target.is_dir() and any(target.iterdir()) and (previous is None or card_marker(previous) is None):
        raise StoreError(f"{target}: the folder is not empty and holds no dataset card written by prefmill",
                         hint="publish into an empty folder or one prefmill published to before")
    if previous is not None and (marker := card_marker(previous)) and marker == (dataset, name, content_hash, splits.key) and all(
        (target / rel).is_file() and file_sha256(target / rel) == file_sha256(path) for rel, path in data.items()
    ):
        return PublishResult(dataset, name, str(target), "folder", False, content_hash, files, plots=tuple(plots),
                             split_rows=counts)
    try:
        target.mkdir(parents=True, exist_ok=True)
        if readme.exists():  # the card goes last: an interrupted publish is never taken as finished
            readme.unlink()
        for sub in ("data", PLOTS_DIR):
            keep = {rel for rel in (*data, *plots) if rel.startswith(f"{sub}/")}
            for old in sorted((target / sub).rglob("*"), reverse=True) if (target / sub).is_dir() else []:
                rel = old.relative_to(target).as_posix()
                if old.is_file() and rel not in keep:
                    old.unlink()
                elif old.is_dir() and not any(old.iterdir()):
                    old.rmdir()
        for rel, path in {**data, **plots}.items():
            _copy(path, target / rel)
        tmp = readme.with_name(f".{README}.tmp")
        tmp.write_text(card, encoding="utf-8")
        os.replace(tmp, readme)
    except OSError as exc:
        raise StoreError(f"{target}: cannot write the published version: {exc.strerror or exc}") from None
    return result


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


# --- the Hub ---


def _publish_hub(api: Any, repo: str, manifest: dict[str, Any], data: dict[str, Path], plots: dict[str, Path],
                 card: str, *, private: bool, splits: Splits, counts: dict[str, dict[str, int]]) -> PublishResult:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    dataset, name, content_hash = manifest["dataset"], manifest["version"], str(manifest.get("content_hash") or "")
    files = (*data, README, *plots)
    url = f"https://huggingface.co/datasets/{repo}/tree/{name}"

    _hub(api, "create the repository", repo, "create_repo", repo, repo_type=REPO_TYPE, private=private, exist_ok=True)
    refs = _hub(api, "list the tags", repo, "list_repo_refs", repo, repo_type=REPO_TYPE)
    tags = {t.name: t.target_commit for t in (getattr(refs, "tags", None) or [])}
    resplit = name in tags
    if resplit:
        commits = _hub(api, f"read the commit of tag {name}", repo, "list_repo_commits", repo, repo_type=REPO_TYPE,
                       revision=tags[name])
        head = commits[0] if commits else None
        text = f"{getattr(head, 'title', '')}\n{getattr(head, 'message', '')}" if head else ""
        found, split_line = _HASH_LINE.search(text), _SPLIT_LINE.search(text)
        if not found or found.group(1) != content_hash:
            raise StoreError(
                f"{repo}: tag {name} already exists and holds other content "
                f"({'content hash ' + found.group(1)[:12] if found else 'no prefmill content hash'}; "
                f"this version: {content_hash[:12]})",
                hint="the repository was published from another store: publish to another --repo, or delete the tag on the Hub",
            )
        if split_line and split_line.group(1) == splits.key:
            return PublishResult(dataset, name, repo, "hub", False, content_hash, files, tags[name], name, url,
                                 tuple(plots), counts)
        main = {b.name: b.target_commit for b in (getattr(refs, "branches", None) or [])}.get("main")
        if main is not None and main != tags[name]:
            raise StoreError(
                f"{repo}: {name} was published with other splits ({split_line.group(1) if split_line else 'train only'}) "
                f"and main has moved past it: publishing it again with {splits.key} would put it on top of a later version",
                hint="publish it with the split settings it has, or to another --repo")
    existing = _hub(api, "list the files", repo, "list_repo_files", repo, repo_type=REPO_TYPE)
    stale = [p for p in existing or [] if p.startswith(("data/", f"{PLOTS_DIR}/")) and p not in files]
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in data.items()]
    operations.append(CommitOperationAdd(path_in_repo=README, path_or_fileobj=card.encode("utf-8")))
    operations += [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in plots.items()]
    operations += [CommitOperationDelete(path_in_repo=rel) for rel in stale]
    title, description = commit_message(manifest, splits)
    info = _hub(api, f"commit {name}", repo, "create_commit", repo, operations=operations, commit_message=title,
                commit_description=description, repo_type=REPO_TYPE)
    oid = getattr(info, "oid", None)
    if not oid:
        raise StoreError(f"{repo}: the Hub returned no commit id for {name}", hint="rerun the same command")
    if resplit:  # the same data cut differently: the version's tag names the newest cut
        _hub(api, f"move tag {name}", repo, "delete_tag", repo, tag=name, repo_type=REPO_TYPE)
    _hub(api, f"tag {name}", repo, "create_tag", repo, tag=name, tag_message=f"prefmill {dataset} {name}",
         revision=oid, repo_type=REPO_TYPE)
    return PublishResult(dataset, name, repo, "hub", True, content_hash, files, oid, name, url, tuple(plots), counts,
                         resplit)


def commit_message(manifest: dict[str, Any], splits: Splits) -> tuple[str, str]:
    """(title, description) of a version's commit; the description records the content hash and the
    split settings (what a second publish compares)."""
    dataset, name = manifest["dataset"], manifest["version"]
    title = f"prefmill: publish {dataset} {name}"
    lines = [f"prefmill content_hash: {manifest.get('content_hash', '')}", f"prefmill splits: {splits.key}",
             f"parent: {manifest.get('parent') or 'none'}",
             f"created_at: {manifest.get('created_at', '')}", f"engine: {manifest.get('engine', '')}"]
    return title, "\n".join(lines)


def _hub(api: Any, what: str, repo: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """`api.<method>(*args, **kwargs)`; any exception becomes a `StoreError` without the token."""
    try:
        return getattr(api, method)(*args, **kwargs)
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - every client error: HTTP, offline mode, connection, validation
        reason = redact(f"{type(exc).__name__}: {exc}")
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403) or re.search(r"\b(401|403)\b|unauthori[sz]ed|forbidden|token", reason, re.IGNORECASE):
            hint = "log in with `hf auth login` or set HF_TOKEN to a token with write access (prefmill never takes one)"
        elif "offline" in reason.lower():
            hint = "HF_HUB_OFFLINE is set: unset it to publish to the Hub, or give --repo a local folder"
        else:
            hint = "check the repository id and your connection, then rerun: a published tag is never sent twice"
        raise StoreError(f"{repo}: cannot {what} on the Hub: {reason}", hint=hint) from None


def _current_token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001 - no token source is not an error here
        return None


def _checked(folder: Path, info: dict[str, Any]) -> Path:
    """The version's file, refused when it no longer matches its manifest (size, sha256)."""
    path = folder / info["path"]
    if not path.is_file():
        raise StoreError(f"{path}: missing", hint="the version is damaged: restore it from a backup")
    if ("bytes" in info and path.stat().st_size != info["bytes"]) or file_sha256(path) != info.get("sha256"):
        raise StoreError(f"{path}: does not match its manifest (size or sha256)",
                         hint="the version is damaged: restore it from a backup; nothing was published")
    return path


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


__all__ = ["MARKER", "PublishResult", "commit_message", "local_target", "publish", "redact"]
