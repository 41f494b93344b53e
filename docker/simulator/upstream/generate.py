#!/usr/bin/env python3
"""Derive, as data, what the upstream ReCogDrive configuration accepts.

Reads an upstream work tree (--repo) and the transformers wheel or its unpacked folder
(--transformers) and writes the TypeScript data modules next to this file:

  hydra-configs.ts  hydra 1.3 composition of the navsim primary configs our scripts use
  log-splits.ts     counts and deterministic samples of the log/token lists
  hf-arguments.ts   the argparse view of HfArgumentParser((ModelArguments, DataTrainingArguments,
                    TrainingArguments)) in the pinned transformers version

Standard library + PyYAML only; dataclasses are read with `ast` (nothing upstream is imported).
Run by hand when upstream moves (CI does not run it):

  python3 docker/simulator/upstream/generate.py --repo /tmp/upstream-recogdrive \
      --transformers /tmp/tf/transformers-4.37.2-py3-none-any.whl

The generator refuses (exits non-zero) on any construct it does not model, so a change upstream
shows up as a failed regeneration instead of silently wrong data.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

CONFIG_ROOT = "navsim/planning/script/config"
STAGE1_SCRIPT = "internvl_chat/internvl/train/internvl_chat_finetune_torchax.py"
STAGE1_DATACLASSES = ("ModelArguments", "DataTrainingArguments")

# The primary configs our scripts use: (config_path relative to the script dir, config_name, scripts).
PRIMARIES = (
    ("training", "default_training", ("run_training_recogdrive_torchax.py", "run_caching_recogdrive_torchax.py")),
    ("metric_caching", "default_metric_caching", ("run_metric_caching.py",)),
    ("pdm_scoring", "default_run_pdm_score", ("run_pdm_score_recogdrive.py",)),
)
SCRIPT_DIR = "navsim/planning/script"

# Lists longer than this are exported as { count, sample } instead of inline.
SHORT_LIST_MAX = 16
LONG_LIST_SAMPLE = 8

# log-splits.ts sample sizes (the brief's numbers).
NAVTRAIN_LOG_SAMPLE = 64
NAVTEST_LOG_SAMPLE = 64
NAVTRAIN_TOKEN_SAMPLE = 1024
NAVTEST_TOKEN_SAMPLE = 512
NAVMINI_LOG_SAMPLE = 16
NAVMINI_TOKEN_SAMPLE = 64
VAL_LOG_SAMPLE = 16
TEST_LOG_SAMPLE = 16


class Unsupported(Exception):
    """An upstream construct this generator does not model: regenerate by extending it."""


# --------------------------------------------------------------------------------------------
# YAML as OmegaConf 2.3 reads it (omegaconf/_utils.py get_yaml_loader): YAML 1.1 SafeLoader plus
# floats without a dot (1e-4, 5e-03), no timestamps, duplicate keys rejected.
# --------------------------------------------------------------------------------------------


class OmegaConfLikeLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> Any:  # type: ignore[override]
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
                continue
            if key_node.value in seen:
                raise Unsupported(f"duplicate key {key_node.value!r} at {key_node.start_mark}")
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_DIGITS = r"[0-9]+(?:_[0-9]+)*"
OmegaConfLikeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        "^(?:"
        + "|".join(
            (
                rf"[-+]?{_DIGITS}\.[0-9_]*(?:[eE][-+]?[0-9]+)?",
                rf"[-+]?{_DIGITS}(?:[eE][-+]?[0-9]+)",
                rf"\.{_DIGITS}(?:[eE][-+][0-9]+)?",
                rf"[-+]?{_DIGITS}(?::[0-5]?[0-9])+\.[0-9_]*",
                r"[-+]?\.(?:inf|Inf|INF)",
                r"\.(?:nan|NaN|NAN)",
            )
        )
        + ")$"
    ),
    list("-+0123456789."),
)
OmegaConfLikeLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in OmegaConfLikeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        text = f.read()
    if re.search(r"^#\s*@package", text[:512], re.M):
        raise Unsupported(f"{path}: '# @package' headers are not modelled")
    data = yaml.load(text, Loader=OmegaConfLikeLoader)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise Unsupported(f"{path}: top level is {type(data).__name__}, not a mapping")
    return data


# --------------------------------------------------------------------------------------------
# Values as the TypeScript side represents them.
# --------------------------------------------------------------------------------------------

MANDATORY = {"kind": "mandatory", "text": "???"}


def is_interpolation(value: str) -> bool:
    # OmegaConf's get_value_kind: a string containing "${" is an interpolation.
    return "${" in value


def encode_scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Unsupported(f"{where}: non-finite float")
        return value
    if isinstance(value, str):
        if value == "???":
            return MANDATORY
        if is_interpolation(value):
            return {"kind": "interpolation", "text": value}
        return value
    raise Unsupported(f"{where}: value of type {type(value).__name__}")


def encode_value(value: Any, where: str, source: str) -> Any:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, (list, dict)):
                raise Unsupported(f"{where}: nested containers in lists are not modelled")
        if len(value) > SHORT_LIST_MAX:
            return {
                "kind": "long-list",
                "count": len(value),
                "sample": [encode_scalar(v, where) for v in value[:LONG_LIST_SAMPLE]],
                "source": f"{source}#{where}",
            }
        return [encode_scalar(v, where) for v in value]
    if isinstance(value, dict):
        if value:
            raise AssertionError("non-empty dicts are flattened before encoding")
        return {"kind": "empty-dict"}
    return encode_scalar(value, where)


def flatten(node: dict[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """Leaves (dotted key -> raw value) and intermediate dict nodes of a mapping."""
    leaves: dict[str, Any] = {}
    nodes: list[str] = []
    for key, value in node.items():
        if not isinstance(key, str):
            raise Unsupported(f"non-string key {key!r} under {prefix or '<root>'}")
        if "." in key:
            raise Unsupported(f"dotted key {key!r} under {prefix or '<root>'}")
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            nodes.append(path)
            sub_leaves, sub_nodes = flatten(value, path)
            leaves.update(sub_leaves)
            nodes.extend(sub_nodes)
        else:
            leaves[path] = value
    return leaves, nodes


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def put_at(root: dict[str, Any], package: str, value: dict[str, Any]) -> dict[str, Any]:
    if not package:
        return value
    for part in reversed(package.split(".")):
        value = {part: value}
    return value


# --------------------------------------------------------------------------------------------
# Hydra 1.3 defaults lists (hydra/_internal/defaults_list.py), for the constructs upstream uses:
# config defaults, group defaults (option, ???), `override group: option` in the primary, and
# `_self_` (appended last when a config with a defaults list does not name it).
# --------------------------------------------------------------------------------------------


@dataclass
class SearchDir:
    provider: str
    url: str
    path: Path


@dataclass
class ConfigRepo:
    repo: Path
    dirs: list[SearchDir]

    def find(self, config_path: str) -> SearchDir | None:
        for d in self.dirs:
            if (d.path / f"{config_path}.yaml").is_file():
                return d
        return None

    def is_group(self, group: str) -> bool:
        return any((d.path / group).is_dir() for d in self.dirs)

    def options(self, group: str) -> list[str]:
        found: set[str] = set()
        for d in self.dirs:
            gdir = d.path / group
            if not gdir.is_dir():
                continue
            for entry in gdir.iterdir():
                if entry.name in ("__init__.py", "__pycache__"):
                    continue
                if entry.is_file():
                    if entry.suffix not in (".yaml", ".yml"):
                        raise Unsupported(f"{entry}: non-yaml file in a config group")
                    found.add(entry.stem)
        return sorted(found)

    def subgroups(self, group: str) -> list[str]:
        found: set[str] = set()
        for d in self.dirs:
            gdir = d.path / group if group else d.path
            if gdir.is_dir():
                for entry in gdir.iterdir():
                    if entry.is_dir() and entry.name != "__pycache__":
                        found.add(f"{group}/{entry.name}" if group else entry.name)
        return sorted(found)

    def file_of(self, config_path: str) -> str:
        d = self.find(config_path)
        if d is None:
            raise Unsupported(f"config {config_path!r} not found in the search path")
        return str((d.path / f"{config_path}.yaml").relative_to(self.repo))


@dataclass
class DefaultEntry:
    kind: str  # "self" | "config" | "group" | "override"
    name: str  # config path (relative) or group name (relative)
    option: str | None = None  # group option, "???" for missing


def parse_defaults(raw: Any, where: str) -> list[DefaultEntry]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise Unsupported(f"{where}: defaults is not a list")
    out: list[DefaultEntry] = []
    for item in raw:
        if isinstance(item, str):
            if item == "_self_":
                out.append(DefaultEntry("self", "_self_"))
            elif re.fullmatch(r"[A-Za-z0-9_/]+", item):
                out.append(DefaultEntry("config", item))
            else:
                raise Unsupported(f"{where}: defaults entry {item!r}")
        elif isinstance(item, dict) and len(item) == 1:
            ((key, value),) = item.items()
            if not isinstance(value, str):
                raise Unsupported(f"{where}: group default {key!r} has value {value!r}")
            if key.startswith("override "):
                group = key[len("override ") :].strip()
                if not re.fullmatch(r"[A-Za-z0-9_/]+", group):
                    raise Unsupported(f"{where}: override {key!r}")
                out.append(DefaultEntry("override", group, value))
            elif re.fullmatch(r"[A-Za-z0-9_/]+", key):
                out.append(DefaultEntry("group", key, value))
            else:
                raise Unsupported(f"{where}: defaults key {key!r} (optional/@package are not modelled)")
        else:
            raise Unsupported(f"{where}: defaults entry {item!r}")
    return out


@dataclass
class GroupUse:
    group: str  # absolute group path, e.g. train_test_split/scene_filter
    package: str
    declared_in: str  # config path that lists it
    declared_default: str  # option or "???"
    effective_default: str  # after primary overrides
    override: str | None


@dataclass
class Composition:
    order: list[str] = field(default_factory=list)  # merge order: config paths ("<primary>" for primary _self_)
    merged: dict[str, Any] = field(default_factory=dict)
    own: dict[str, Any] = field(default_factory=dict)  # primary + its non-group configs only
    own_sources: dict[str, str] = field(default_factory=dict)
    groups: dict[str, GroupUse] = field(default_factory=dict)
    choices: dict[str, str] = field(default_factory=dict)


def compose(repo: ConfigRepo, primary: str, choice_overrides: dict[str, str] | None = None) -> Composition:
    """Compose `primary` as hydra 1.3 does (config content only; the hydra node is taken as written)."""
    result = Composition()
    primary_cfg = load_yaml(repo.repo / repo.file_of(primary))
    primary_defaults = parse_defaults(primary_cfg.get("defaults"), primary)
    overrides = {e.name: e.option for e in primary_defaults if e.kind == "override"}
    forced = dict(choice_overrides or {})

    def expand(config_path: str, package: str, is_primary: bool, in_group: bool, sources_into_own: bool) -> None:
        cfg = load_yaml(repo.repo / repo.file_of(config_path))
        defaults = parse_defaults(cfg.get("defaults"), config_path)
        content = {k: v for k, v in cfg.items() if k != "defaults"}
        if not any(e.kind == "self" for e in defaults):
            defaults.append(DefaultEntry("self", "_self_"))
        parent_group = config_path.rsplit("/", 1)[0] if "/" in config_path else ""
        for entry in defaults:
            if entry.kind == "override":
                if not is_primary:
                    raise Unsupported(f"{config_path}: overrides outside the primary config")
                continue
            if entry.kind == "self":
                label = "<primary>" if is_primary else config_path
                result.order.append(label)
                result.merged = deep_merge(result.merged, put_at({}, package, content))
                if sources_into_own:
                    result.own = deep_merge(result.own, put_at({}, package, content))
                    leaves, _ = flatten(put_at({}, package, content)) if content else ({}, [])
                    src = repo.file_of(config_path)
                    for key in leaves:
                        result.own_sources[key] = src
                continue
            if entry.kind == "config":
                child = f"{parent_group}/{entry.name}" if parent_group else entry.name
                if repo.find(child) is None:
                    raise Unsupported(f"{config_path}: config default {child!r} not found")
                expand(child, package, False, in_group, sources_into_own and not in_group)
                continue
            # group default
            group = f"{parent_group}/{entry.name}" if parent_group else entry.name
            if not repo.is_group(group):
                raise Unsupported(f"{config_path}: group {group!r} not found")
            child_package = group.replace("/", ".")
            declared = entry.option or ""
            effective = overrides.get(group, declared)
            if group in forced:
                effective = forced[group]
            result.groups[group] = GroupUse(group, child_package, config_path, declared, effective, overrides.get(group))
            result.choices[group] = effective
            if effective == "???":
                continue
            if effective not in repo.options(group):
                raise Unsupported(f"{config_path}: option {group}/{effective} not found")
            expand(f"{group}/{effective}", child_package, False, True, False)

    expand(primary, "", True, False, True)
    unused = set(overrides) - set(result.groups)
    if unused:
        raise Unsupported(f"{primary}: override of groups not in the defaults list: {sorted(unused)}")
    return result


# --------------------------------------------------------------------------------------------
# hydra-configs.ts
# --------------------------------------------------------------------------------------------


def encode_table(raw: dict[str, Any], source_of: Callable[[str], str]) -> tuple[dict[str, Any], list[str]]:
    leaves, _ = flatten(raw)
    table = {key: encode_value(value, key, source_of(key)) for key, value in leaves.items()}
    floats = sorted(key for key, value in leaves.items() if isinstance(value, float))
    return table, floats


def build_hydra(repo_dir: Path) -> dict[str, Any]:
    config_root = repo_dir / CONFIG_ROOT
    group_options: dict[str, Any] = {}
    primaries: dict[str, Any] = {}
    override_paths: dict[str, list[str]] = {}
    all_groups: set[str] = set()

    for subdir, name, scripts in PRIMARIES:
        primary_dir = config_root / subdir
        primary_cfg = load_yaml(primary_dir / f"{name}.yaml")
        hydra_node = primary_cfg.get("hydra", {})
        searchpath = hydra_node.get("searchpath", []) if isinstance(hydra_node, dict) else []
        dirs = [SearchDir("main", f"file://{SCRIPT_DIR}/config/{subdir}", primary_dir)]
        for url in searchpath:
            m = re.fullmatch(r"pkg://([A-Za-z0-9_.]+)", url)
            if not m:
                raise Unsupported(f"{name}: search path {url!r}")
            dirs.append(SearchDir("hydra.searchpath in main", url, repo_dir / m.group(1).replace(".", "/")))
        for d in dirs:
            if not d.path.is_dir():
                raise Unsupported(f"search path {d.url} does not exist in the repo")
        repo = ConfigRepo(repo_dir, dirs)
        comp = compose(repo, name)

        own_table, own_floats = encode_table(comp.own, lambda key: comp.own_sources.get(key, ""))
        # Groups nested in group options (scene_filter under train_test_split): record them even
        # when their parent is ??? so the simulator knows the group exists once the parent is chosen.
        groups_out: dict[str, Any] = {}
        for group, use in comp.groups.items():
            groups_out[group] = {
                "declaredDefault": MANDATORY if use.declared_default == "???" else use.declared_default,
                "declaredIn": repo.file_of(use.declared_in),
                "default": MANDATORY if use.effective_default == "???" else use.effective_default,
                "options": repo.options(group),
                "override": None if use.override is None else f"override {group}: {use.override}",
                "package": use.package,
                "parent": None,
            }
        # Nested groups under every group of the tree, whatever option is chosen.
        pending = list(comp.groups)
        while pending:
            group = pending.pop()
            for sub in repo.subgroups(group):
                if sub in groups_out:
                    continue
                parent_choice = groups_out[group]["default"]
                sub_default: Any = None
                if isinstance(parent_choice, str):
                    sub_comp = parse_defaults(load_yaml(repo.repo / repo.file_of(f"{group}/{parent_choice}")).get("defaults"), group)
                    for e in sub_comp:
                        if e.kind == "group" and f"{group}/{e.name}" == sub:
                            sub_default = MANDATORY if e.option == "???" else e.option
                groups_out[sub] = {
                    "declaredDefault": None,
                    "declaredIn": None,
                    "default": sub_default,
                    "options": repo.options(sub),
                    "override": None,
                    "package": sub.replace("/", "."),
                    "parent": group,
                }
                pending.append(sub)
        all_groups.update(groups_out)

        for group in groups_out:
            if group in group_options:
                continue
            options: dict[str, Any] = {}
            for option in repo.options(group):
                file = repo.file_of(f"{group}/{option}")
                cfg = load_yaml(repo_dir / file)
                content = {k: v for k, v in cfg.items() if k != "defaults"}
                table, floats = encode_table(content, lambda _key, file=file: file)
                _, nodes = flatten(content)
                nested = {}
                for e in parse_defaults(cfg.get("defaults"), f"{group}/{option}"):
                    if e.kind == "group":
                        nested[e.name] = MANDATORY if e.option == "???" else e.option
                    elif e.kind != "self":
                        raise Unsupported(f"{group}/{option}: defaults entry {e.kind} {e.name}")
                options[option] = {"defaults": nested, "file": file, "floatKeys": floats, "keys": table, "nodes": sorted(nodes)}
            group_options[group] = {"options": options, "package": group.replace("/", ".")}

        merged_table, merged_floats = encode_table(
            comp.merged, lambda key: comp.own_sources.get(key, "group option (see GROUP_OPTIONS)")
        )
        merged_leaves, merged_nodes = flatten(comp.merged)
        paths = sorted(set(merged_leaves) | set(merged_nodes))
        override_paths[name] = paths
        primaries[name] = {
            "configName": name,
            "configPath": f"config/{subdir}",
            "defaultComposition": {
                "choices": {g: (MANDATORY if c == "???" else c) for g, c in comp.choices.items()},
                "floatKeys": merged_floats,
                "keys": merged_table,
                "mergeOrder": comp.order,
            },
            "file": str((primary_dir / f"{name}.yaml").relative_to(repo_dir)),
            "floatKeys": own_floats,
            "groups": groups_out,
            "keySources": dict(sorted(comp.own_sources.items())),
            "keys": own_table,
            "scripts": [f"{SCRIPT_DIR}/{s}" for s in scripts],
            "searchPath": [{"path": "pkg://hydra.conf", "provider": "hydra"}]
            + [{"path": d.url, "provider": d.provider} for d in dirs]
            + [{"path": "structured://", "provider": "schema"}],
        }
    return {"groupOptions": group_options, "primaries": primaries, "overridePaths": override_paths, "groups": sorted(all_groups)}


# --------------------------------------------------------------------------------------------
# log-splits.ts
# --------------------------------------------------------------------------------------------


def name_list(values: list[Any], sample: list[Any], rule: str, source: str) -> dict[str, Any]:
    for v in values:
        if not isinstance(v, str):
            raise Unsupported(f"{source}: non-string entry {v!r} (YAML typed it as {type(v).__name__})")
    return {
        "count": len(values),
        "distinct": len(set(values)),
        "sample": sample,
        "sampleRule": rule,
        "sha256": hashlib.sha256("\n".join(values).encode("utf-8")).hexdigest(),
        "source": source,
    }


def build_log_splits(repo_dir: Path) -> dict[str, Any]:
    split_file = f"{CONFIG_ROOT}/training/default_train_val_test_log_split.yaml"
    splits = load_yaml(repo_dir / split_file)
    for key in ("train_logs", "val_logs", "test_logs"):
        if not isinstance(splits.get(key), list):
            raise Unsupported(f"{split_file}: {key} is not a list")
    extra = set(splits) - {"train_logs", "val_logs", "test_logs"}
    if extra:
        raise Unsupported(f"{split_file}: unexpected keys {sorted(extra)}")

    filters: dict[str, dict[str, Any]] = {}
    filter_files: dict[str, str] = {}
    for option in ("navtrain", "navtest", "navmini"):
        filter_files[option] = f"{CONFIG_ROOT}/common/train_test_split/scene_filter/{option}.yaml"
        filters[option] = load_yaml(repo_dir / filter_files[option])

    train_set = set(splits["train_logs"])
    val_set = set(splits["val_logs"])
    navtrain_logs = filters["navtrain"]["log_names"]
    in_both = [name for name in navtrain_logs if name in train_set]
    if len(in_both) < NAVTRAIN_LOG_SAMPLE:
        raise Unsupported("fewer navtrain logs in train_logs than the sample size")
    both_sample = in_both[:NAVTRAIN_LOG_SAMPLE]
    both_rule = (
        f"the first {NAVTRAIN_LOG_SAMPLE} names of navtrain's scene_filter.log_names (file order) that are also in "
        f"train_logs ({len(in_both)} of navtrain's {len(navtrain_logs)} log names are)"
    )
    # navtrain also holds validation logs: a pipeline that caches all of navtrain gives the GPU
    # trainers their validation set (Lightning's ModelCheckpoint monitors val/loss_epoch).
    in_val = [name for name in navtrain_logs if name in val_set]
    if len(in_val) < VAL_LOG_SAMPLE:
        raise Unsupported("fewer navtrain logs in val_logs than the sample size")
    val_sample = in_val[:VAL_LOG_SAMPLE]
    val_rule = (
        f"the first {VAL_LOG_SAMPLE} names of navtrain's scene_filter.log_names (file order) that are also in "
        f"val_logs ({len(in_val)} of navtrain's {len(navtrain_logs)} log names are)"
    )
    navtrain_rule = f"{both_rule}, then {val_rule}"

    out_filters: dict[str, Any] = {}
    samples = {
        "navtrain": (both_sample + val_sample, navtrain_rule, NAVTRAIN_TOKEN_SAMPLE),
        "navtest": (None, f"the first {NAVTEST_LOG_SAMPLE} in file order", NAVTEST_TOKEN_SAMPLE),
        "navmini": (None, f"the first {NAVMINI_LOG_SAMPLE} in file order", NAVMINI_TOKEN_SAMPLE),
    }
    log_sample_sizes = {"navtest": NAVTEST_LOG_SAMPLE, "navmini": NAVMINI_LOG_SAMPLE}
    for option, cfg in filters.items():
        file = filter_files[option]
        log_sample, log_rule, token_n = samples[option]
        logs = cfg.get("log_names")
        tokens = cfg.get("tokens")
        other = {k: v for k, v in cfg.items() if k not in ("log_names", "tokens")}
        for key, value in other.items():
            if isinstance(value, (list, dict)):
                raise Unsupported(f"{file}: {key} is a container")
        out_filters[option] = {
            "file": file,
            "keys": {k: encode_scalar(v, k) for k, v in other.items()},
            "logNames": None
            if logs is None
            else name_list(
                logs,
                log_sample if log_sample is not None else logs[: log_sample_sizes[option]],
                log_rule,
                f"{file}#log_names",
            ),
            "tokens": None
            if tokens is None
            else name_list(tokens, tokens[:token_n], f"the first {token_n} in file order", f"{file}#tokens"),
        }

    return {
        "filters": out_filters,
        "testLogs": name_list(
            splits["test_logs"], splits["test_logs"][:TEST_LOG_SAMPLE], f"the first {TEST_LOG_SAMPLE} in file order", f"{split_file}#test_logs"
        ),
        "trainLogs": name_list(splits["train_logs"], both_sample, both_rule, f"{split_file}#train_logs"),
        "valLogs": name_list(splits["val_logs"], val_sample, val_rule, f"{split_file}#val_logs"),
    }


# --------------------------------------------------------------------------------------------
# hf-arguments.ts: transformers' HfArgumentParser._parse_dataclass_field rules, applied to the
# dataclass fields read with ast.
# --------------------------------------------------------------------------------------------


class TransformersSource:
    def __init__(self, path: Path):
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None

    def read(self, rel: str) -> str:
        if self._zip is not None:
            return self._zip.read(rel).decode("utf-8")
        base = self.path
        if (base / "transformers").is_dir():
            base = base / "transformers"
        return (base / rel.removeprefix("transformers/")).read_text(encoding="utf-8")

    def version(self) -> str:
        text = self.read("transformers/__init__.py")
        m = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
        if not m:
            raise Unsupported("transformers/__init__.py has no __version__")
        return m.group(1)


# Type model: ("str"|"int"|"float"|"bool"|"dict"|"Dict"|"none", ), ("list", elem), ("union", [..]),
# ("literal", [values]), ("enum", name, [values]).
TypeT = tuple


@dataclass
class TypeEnv:
    enums: dict[str, list[str]]

    def eval(self, node: ast.expr) -> TypeT:
        if isinstance(node, ast.Constant) and node.value is None:
            return ("none",)
        if isinstance(node, ast.Name):
            if node.id in ("str", "int", "float", "bool", "dict"):
                return (node.id,)
            if node.id == "Dict":
                return ("Dict",)
            if node.id in ("list", "List"):
                raise Unsupported("bare list annotations")
            if node.id in self.enums:
                return ("enum", node.id, self.enums[node.id])
            raise Unsupported(f"annotation name {node.id}")
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            head = node.value.id
            args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
            if head == "Optional":
                return self.union([self.eval(args[0]), ("none",)])
            if head == "Union":
                return self.union([self.eval(a) for a in args])
            if head in ("List", "list"):
                return ("list", self.eval(args[0]))
            if head == "Literal":
                return ("literal", [ast.literal_eval(a) for a in args])
            if head in ("Dict", "dict"):
                return ("Dict",)
        raise Unsupported(f"annotation {ast.unparse(node)}")

    @staticmethod
    def union(members: list[TypeT]) -> TypeT:
        flat: list[TypeT] = []
        for m in members:
            for x in (m[1] if m[0] == "union" else [m]):
                if x not in flat:
                    flat.append(x)
        return flat[0] if len(flat) == 1 else ("union", flat)


def collect_enums(sources: dict[str, str]) -> dict[str, list[str]]:
    enums: dict[str, list[str]] = {}
    for rel, text in sources.items():
        for node in ast.parse(text).body:
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(b) for b in node.bases}
            if not bases & {"ExplicitEnum", "Enum", "str, Enum"}:
                continue
            values = []
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                    if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                        values.append(stmt.value.value)
            enums[node.name] = values
    return enums


MISSING = object()


@dataclass
class RawField:
    dataclass: str
    name: str
    annotation: str
    type: TypeT
    default: Any  # python value or MISSING
    default_factory: str | None
    factory_value: Any
    init: bool
    metadata: dict[str, Any]
    source: str


def read_dataclass(text: str, rel: str, cls_name: str, env: TypeEnv, resolve: Callable[[ast.expr, dict[str, Any]], Any]) -> list[RawField]:
    tree = ast.parse(text)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name), None)
    if cls is None:
        raise Unsupported(f"{rel}: no class {cls_name}")
    if not any(ast.unparse(d) == "dataclass" for d in cls.decorator_list):
        raise Unsupported(f"{rel}: {cls_name} is not a plain @dataclass")
    if cls.bases:
        raise Unsupported(f"{rel}: {cls_name} has bases (inherited fields are not modelled)")
    class_vars: dict[str, Any] = {}
    fields: list[RawField] = []
    for stmt in cls.body:
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.AsyncFunctionDef, ast.Expr)):
            raise Unsupported(f"{rel}:{stmt.lineno}: {type(stmt).__name__} in the body of {cls_name}")
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                try:
                    class_vars[stmt.targets[0].id] = ast.literal_eval(stmt.value)
                except ValueError:
                    pass
            continue
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        annotation = ast.unparse(stmt.annotation)
        if annotation.startswith("ClassVar"):
            continue
        name = stmt.target.id
        default: Any = MISSING
        factory: str | None = None
        factory_value: Any = None
        init = True
        metadata: dict[str, Any] = {}
        value = stmt.value
        if isinstance(value, ast.Call) and ast.unparse(value.func) == "field":
            if value.args:
                raise Unsupported(f"{rel}:{stmt.lineno}: positional field() arguments")
            for kw in value.keywords:
                if kw.arg == "default":
                    default = resolve(kw.value, class_vars)
                elif kw.arg == "default_factory":
                    factory = ast.unparse(kw.value)
                    if factory == "dict":
                        factory_value = {}
                    elif factory == "list":
                        factory_value = []
                    else:
                        raise Unsupported(f"{rel}:{stmt.lineno}: default_factory {factory}")
                elif kw.arg == "init":
                    init = bool(ast.literal_eval(kw.value))
                elif kw.arg == "metadata":
                    if not isinstance(kw.value, ast.Dict):
                        raise Unsupported(f"{rel}:{stmt.lineno}: metadata is not a dict literal")
                    for k, v in zip(kw.value.keys, kw.value.values):
                        key = ast.literal_eval(k)
                        if key == "help":
                            metadata[key] = resolve(v, class_vars)
                        elif key == "choices":
                            metadata[key] = list(resolve(v, class_vars))
                        else:
                            raise Unsupported(f"{rel}:{stmt.lineno}: metadata key {key!r}")
                elif kw.arg == "repr":
                    pass
                else:
                    raise Unsupported(f"{rel}:{stmt.lineno}: field() keyword {kw.arg}")
        elif value is not None:
            default = resolve(value, class_vars)
        fields.append(
            RawField(cls_name, name, annotation, env.eval(stmt.annotation), default, factory, factory_value, init, metadata, f"{rel}:{stmt.lineno}")
        )
    return fields


def make_resolver(module_text: str, extra: dict[str, Any]) -> Callable[[ast.expr, dict[str, Any]], Any]:
    def resolve(node: ast.expr, class_vars: dict[str, Any]) -> Any:
        try:
            return ast.literal_eval(node)
        except ValueError:
            pass
        if isinstance(node, ast.Name) and node.id in class_vars:
            return class_vars[node.id]
        text = ast.unparse(node)
        if text in extra:
            return extra[text]
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
            return text  # help strings built from parts; only used to flag deprecation
        raise Unsupported(f"cannot evaluate {text}")

    return resolve


def trainer_log_level_choices(tf: TransformersSource) -> list[str]:
    """training_args.py: trainer_log_levels = dict(**log_levels, passive=-1), log_levels from utils/logging.py."""
    args_text = tf.read("transformers/training_args.py")
    if not re.search(r"^log_levels = logging\.get_log_levels_dict\(\)\.copy\(\)$", args_text, re.M):
        raise Unsupported("training_args.py: log_levels is no longer logging.get_log_levels_dict().copy()")
    if not re.search(r"^trainer_log_levels = dict\(\*\*log_levels, passive=-1\)$", args_text, re.M):
        raise Unsupported("training_args.py: trainer_log_levels changed")
    logging_tree = ast.parse(tf.read("transformers/utils/logging.py"))
    for node in logging_tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["log_levels"]:
            if not isinstance(node.value, ast.Dict):
                raise Unsupported("utils/logging.py: log_levels is not a dict literal")
            return [ast.literal_eval(k) for k in node.value.keys] + ["passive"]
    raise Unsupported("utils/logging.py: no log_levels")


def argparse_view(raw: RawField) -> dict[str, Any]:
    """HfArgumentParser._parse_dataclass_field (hf_argparser.py) on the type model."""
    t = raw.type
    metadata = dict(raw.metadata)
    help_text = str(metadata.pop("help", ""))
    choices_meta = metadata.pop("choices", None)
    aliases: list[str] = []
    if metadata:
        raise Unsupported(f"{raw.source}: metadata keys {sorted(metadata)}")
    if t[0] == "union":
        members = t[1]
        if ("str",) not in members and (len(members) != 2 or ("none",) not in members):
            raise Unsupported(f"{raw.source}: upstream itself raises ValueError for Union {raw.annotation}")
        if ("none",) not in members:
            t = members[0] if members[1] == ("str",) else members[1]
        elif ("bool",) not in members:
            t = members[0] if members[1] == ("none",) else members[1]
    optional_bool = t == ("union", [("bool",), ("none",)])
    out: dict[str, Any] = {
        "aliases": aliases,
        "choices": None,
        "const": None,
        "deprecated": "deprecated" in help_text.lower(),
        "elementType": None,
        "nargs": None,
        "negation": None,
        "typeName": None,
    }
    default_missing = raw.default is MISSING and raw.default_factory is None
    argparse_default: Any = None
    required = False
    if t[0] in ("literal", "enum"):
        out["kind"] = "choice"
        out["choices"] = list(t[1]) if t[0] == "literal" else list(t[2])
        if raw.default is not MISSING:
            argparse_default = raw.default
        else:
            required = True
    elif t == ("bool",) or optional_bool:
        out["kind"] = "bool"
        out["typeName"] = "string_to_bool"
        if t == ("bool",) or (raw.default is not None and raw.default is not MISSING):
            argparse_default = False if raw.default is MISSING else raw.default
            out["nargs"] = "?"
            out["const"] = True
        if raw.default is True:
            out["negation"] = f"--no_{raw.name}"
    elif t[0] == "list":
        out["kind"] = "list"
        out["nargs"] = "+"
        elem = t[1]
        if elem[0] == "enum":
            out["elementType"] = elem[1]
            out["typeName"] = elem[1]
            out["choices"] = None
            out["elementValues"] = list(elem[2])
        elif elem[0] in ("str", "int", "float"):
            out["elementType"] = elem[0]
            out["typeName"] = None if elem[0] == "str" else elem[0]
        else:
            raise Unsupported(f"{raw.source}: list of {elem}")
        if raw.default_factory is not None:
            argparse_default = {"factory": raw.default_factory, "kind": "factory", "value": raw.factory_value}
        elif raw.default is MISSING:
            required = True
        # else: argparse gets no default (None), whatever the dataclass says.
    else:
        if t[0] in ("str", "int", "float"):
            out["kind"] = "str" if t[0] == "str" else t[0]
            out["typeName"] = None if t[0] == "str" else t[0]
        elif t[0] in ("dict", "Dict"):
            out["kind"] = "dict"
            out["typeName"] = t[0]
        else:
            raise Unsupported(f"{raw.source}: type {t} after hf_argparser's unwrapping")
        if raw.default is not MISSING:
            argparse_default = raw.default
        elif raw.default_factory is not None:
            argparse_default = {"factory": raw.default_factory, "kind": "factory", "value": raw.factory_value}
        else:
            required = True
    if choices_meta is not None:
        if out["kind"] not in ("str",):
            raise Unsupported(f"{raw.source}: metadata choices on a {out['kind']} field")
        out["kind"] = "choice"
        out["choices"] = list(choices_meta)
    if isinstance(argparse_default, tuple):
        argparse_default = list(argparse_default)
    dataclass_default: Any
    if raw.default_factory is not None:
        dataclass_default = {"factory": raw.default_factory, "kind": "factory", "value": raw.factory_value}
    elif default_missing:
        dataclass_default = {"kind": "required"}
    else:
        dataclass_default = raw.default
    out.update(
        {
            "annotation": raw.annotation,
            "dataclass": raw.dataclass,
            "dataclassDefault": dataclass_default,
            "default": {"kind": "required"} if required else argparse_default,
            "name": raw.name,
            "optionStrings": [f"--{raw.name}", *aliases],
            "required": required,
            "source": raw.source,
        }
    )
    return out


def build_hf(repo_dir: Path, tf: TransformersSource) -> dict[str, Any]:
    enum_sources = {
        rel: tf.read(rel)
        for rel in (
            "transformers/training_args.py",
            "transformers/trainer_utils.py",
            "transformers/debug_utils.py",
            "transformers/utils/generic.py",
        )
    }
    env = TypeEnv(collect_enums(enum_sources))
    stage1_text = (repo_dir / STAGE1_SCRIPT).read_text(encoding="utf-8")
    if "HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))" not in stage1_text:
        raise Unsupported(f"{STAGE1_SCRIPT}: the parser is no longer HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments))")
    if re.search(r"^from __future__ import annotations", stage1_text, re.M):
        raise Unsupported(f"{STAGE1_SCRIPT}: postponed annotations")
    fields: list[RawField] = []
    stage1_resolve = make_resolver(stage1_text, {})
    for cls in STAGE1_DATACLASSES:
        fields += read_dataclass(stage1_text, STAGE1_SCRIPT, cls, env, stage1_resolve)
    args_text = tf.read("transformers/training_args.py")
    args_resolve = make_resolver(args_text, {"trainer_log_levels.keys()": trainer_log_level_choices(tf)})
    fields += read_dataclass(args_text, "transformers/training_args.py", "TrainingArguments", env, args_resolve)

    out = []
    seen: dict[str, str] = {"-h": "help", "--help": "help"}
    for raw in fields:
        if not raw.init:
            continue
        view = argparse_view(raw)
        for opt in view["optionStrings"] + ([view["negation"]] if view["negation"] else []):
            if opt in seen:
                raise Unsupported(f"argparse would refuse the parser: {opt} of {raw.name} conflicts with {seen[opt]}")
            seen[opt] = raw.name
        out.append(view)
    used: set[str] = set()

    def walk(t: TypeT) -> None:
        if t[0] == "enum":
            used.add(t[1])
        elif t[0] == "union":
            for m in t[1]:
                walk(m)
        elif t[0] == "list":
            walk(t[1])

    for raw in fields:
        if raw.init:
            walk(raw.type)
    return {"fields": out, "enums": {k: env.enums[k] for k in sorted(used)}}


# --------------------------------------------------------------------------------------------
# TypeScript emission
# --------------------------------------------------------------------------------------------


def ts(value: Any, indent: int = 0) -> str:
    pad = "  " * indent
    inner = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        rendered = [(k, ts(value[k], indent + 1)) for k in sorted(value)]
        if all("\n" not in r for _, r in rendered):
            one = "{ " + ", ".join(f"{json.dumps(k)}: {r}" for k, r in rendered) + " }"
            if len(one) + len(pad) <= 100 and len(rendered) <= 4:
                return one
        parts = [f"{inner}{json.dumps(k)}: {r}," for k, r in rendered]
        return "{\n" + "\n".join(parts) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        items = [ts(v, indent + 1) for v in value]
        if all("\n" not in i for i in items):
            one = "[" + ", ".join(items) + "]"
            if len(one) + len(pad) <= 110:
                return one
            lines: list[str] = []
            cur = ""
            for i in items:
                cand = f"{cur} {i}," if cur else f"{i},"
                if len(inner) + len(cand) > 110 and cur:
                    lines.append(cur)
                    cur = f"{i},"
                else:
                    cur = cand
            if cur:
                lines.append(cur)
            return "[\n" + "\n".join(inner + line for line in lines) + f"\n{pad}]"
        return "[\n" + "\n".join(f"{inner}{i}," for i in items) + f"\n{pad}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return json.dumps(value, ensure_ascii=False)
    raise Unsupported(f"cannot emit {type(value).__name__}")


def header(commit: str, tf_version: str, what: str) -> str:
    return (
        f"// {what}\n"
        f"// Upstream: zorrofox/recogdrive @ {commit}; transformers {tf_version}.\n"
        "// generated by docker/simulator/upstream/generate.py; do not edit.\n"
    )


HYDRA_TYPES = """
/** A YAML scalar as OmegaConf 2.3 loads it (`1e-4` is a float, `yes`/`no` are booleans, `Null` is null). */
export type Scalar = string | number | boolean | null;
/** A string holding `${...}`: OmegaConf resolves it on access; kept as its text. */
export interface Interpolation {
  readonly kind: 'interpolation';
  readonly text: string;
}
/** `???`: OmegaConf's mandatory-missing marker (reading it raises MissingMandatoryValue). */
export interface Mandatory {
  readonly kind: 'mandatory';
  readonly text: '???';
}
/**
 * A list longer than 16 items: its size and its first 8 items (file order). A SUBSET: the full
 * list is in the upstream file named by `source`; see log-splits.ts for curated samples.
 */
export interface LongList {
  readonly kind: 'long-list';
  readonly count: number;
  readonly sample: readonly Scalar[];
  readonly source: string;
}
/** `key: {}`. */
export interface EmptyDict {
  readonly kind: 'empty-dict';
}
export type ListItem = Scalar | Interpolation | Mandatory;
export type DefaultValue = Scalar | Interpolation | Mandatory | readonly ListItem[] | LongList | EmptyDict;
/** Dotted full key (leaf) -> default. */
export type KeyTable = Readonly<Record<string, DefaultValue>>;

/** One option of a config group: the yaml file's keys, relative to the group's node. */
export interface GroupOption {
  /** Repo-relative yaml file. */
  readonly file: string;
  /** Leaf keys relative to the group node (e.g. worker option ray_distributed: `threads_per_node`). */
  readonly keys: KeyTable;
  /** Intermediate dict nodes relative to the group node (e.g. `trajectory_sampling`). */
  readonly nodes: readonly string[];
  /** The option's own group defaults: subgroup name (relative) -> option (train_test_split -> scene_filter). */
  readonly defaults: Readonly<Record<string, string | Mandatory>>;
  /** Keys whose default is a Python float (print with Python's float repr: 0.0001, 1.0). */
  readonly floatKeys: readonly string[];
}
export interface GroupOptions {
  /** Dotted package the options are merged at (`train_test_split.scene_filter`). */
  readonly package: string;
  /** Every option on disk (hydra lists *.yaml, ignoring __init__.py and __pycache__). */
  readonly options: Readonly<Record<string, GroupOption>>;
}

/** A config group as one primary config's defaults tree uses it. */
export interface GroupUse {
  /** The option composed when the command line does not choose one; `???` = must be chosen; null = group only exists once its parent group is chosen. */
  readonly default: string | Mandatory | null;
  /** What the declaring config's defaults list says, before the primary's `override` entries. */
  readonly declaredDefault: string | Mandatory | null;
  /** Repo-relative file whose defaults list names the group (null for groups nested in a group option). */
  readonly declaredIn: string | null;
  /** The primary's `override group: option` entry, if any. */
  readonly override: string | null;
  readonly options: readonly string[];
  readonly package: string;
  /** For nested groups: the group whose options declare it (scene_filter -> train_test_split). */
  readonly parent: string | null;
}

export interface SearchPathEntry {
  readonly provider: string;
  readonly path: string;
}

export interface PrimaryConfig {
  readonly configName: string;
  /** @hydra.main config_path, relative to navsim/planning/script. */
  readonly configPath: string;
  readonly file: string;
  readonly scripts: readonly string[];
  /** hydra's "Config search path" (hydra.conf first, structured:// last). */
  readonly searchPath: readonly SearchPathEntry[];
  /** Config groups in the defaults tree (plus groups nested in their options). */
  readonly groups: Readonly<Record<string, GroupUse>>;
  /**
   * The primary's own keys: the primary yaml and the non-group configs of its defaults list
   * (default_common, default_evaluation, ...), merged in hydra's order, including `hydra.*` as the
   * primary writes them. Group contents are in GROUP_OPTIONS.
   */
  readonly keys: KeyTable;
  /** Key -> repo-relative file that sets its final default. */
  readonly keySources: Readonly<Record<string, string>>;
  readonly floatKeys: readonly string[];
  /** The composition with every group at its default option (groups at `???` contribute nothing). */
  readonly defaultComposition: {
    readonly choices: Readonly<Record<string, string | Mandatory>>;
    readonly keys: KeyTable;
    readonly floatKeys: readonly string[];
    /** Configs in merge order (later wins); `<primary>` is the primary's `_self_`. */
    readonly mergeOrder: readonly string[];
  };
}
"""

LOG_TYPES = """
/**
 * A list from an upstream yaml file: its size and a deterministic SAMPLE. The sample is a subset,
 * so a simulator that treats names outside the sample as "not in the list" is stricter than
 * upstream, never looser. `sha256` is of the full list joined with "\\n" (file order), to check a
 * full copy against.
 */
export interface NameList {
  readonly count: number;
  readonly distinct: number;
  readonly sample: readonly string[];
  readonly sampleRule: string;
  readonly sha256: string;
  readonly source: string;
}
export type FilterScalar = string | number | boolean | null;
/** A scene filter option (config/common/train_test_split/scene_filter/<name>.yaml). */
export interface SceneFilterFacts {
  readonly file: string;
  /** Every key but log_names and tokens (num_history_frames, frame_interval, has_route, max_scenes, _target_...). */
  readonly keys: Readonly<Record<string, FilterScalar>>;
  /** null when the yaml sets log_names: null (all logs). */
  readonly logNames: NameList | null;
  /** null when the yaml sets tokens: null (all tokens). */
  readonly tokens: NameList | null;
}
"""

HF_TYPES = """
export type HfKind = 'bool' | 'int' | 'float' | 'str' | 'list' | 'choice' | 'dict';
/** `field(default_factory=...)`: computed per instance; `value` is what the factory returns. */
export interface FactoryDefault {
  readonly kind: 'factory';
  readonly factory: string;
  readonly value: Readonly<Record<string, never>> | readonly never[];
}
/** No default in the dataclass: argparse marks the option required. */
export interface RequiredMarker {
  readonly kind: 'required';
}
export type HfScalar = string | number | boolean | null;
export type HfDefault = HfScalar | readonly HfScalar[] | FactoryDefault | RequiredMarker;

/** One argparse argument HfArgumentParser adds for a dataclass field (hf_argparser.py _parse_dataclass_field). */
export interface HfField {
  readonly name: string;
  readonly dataclass: 'ModelArguments' | 'DataTrainingArguments' | 'TrainingArguments';
  /** file:line of the field. */
  readonly source: string;
  /** The annotation as written. */
  readonly annotation: string;
  readonly kind: HfKind;
  /** `--name` then metadata aliases. */
  readonly optionStrings: readonly string[];
  readonly aliases: readonly string[];
  /** `--no_<name>` (store_false, same dest) for bool fields whose default is True. */
  readonly negation: string | null;
  /** '?' for bools (value optional, parsed by string_to_bool; bare flag = const true), '+' for lists, null = exactly one value. */
  readonly nargs: '?' | '+' | null;
  readonly const: boolean | null;
  /** The argparse `type` whose failure gives "invalid <typeName> value: '<v>'" (string_to_bool raises its own message); null: never fails. */
  readonly typeName: string | null;
  /** Lists: the element type (enum name for enum elements). */
  readonly elementType: string | null;
  /** Lists of enums: the accepted element values. */
  readonly elementValues?: readonly string[];
  /** Choices argparse checks (Literal / Enum values, or metadata choices). */
  readonly choices: readonly HfScalar[] | null;
  /** What argparse puts in the namespace when the option is absent (this reaches the dataclass). */
  readonly default: HfDefault;
  /** What the dataclass itself declares (differs for list fields with a plain default: argparse passes None). */
  readonly dataclassDefault: HfDefault;
  readonly required: boolean;
  /** The help text says the field is deprecated. */
  readonly deprecated: boolean;
}
"""


def render_hydra(data: dict[str, Any], commit: str, tf_version: str) -> str:
    names = sorted(data["primaries"])
    groups = sorted(data["groupOptions"])
    out = [header(commit, tf_version, "hydra 1.3 composition of the navsim primary configs (navsim/planning/script/config).")]
    out.append(HYDRA_TYPES)
    out.append(f"export type PrimaryName = {' | '.join(repr(n) for n in names)};\n")
    out.append(f"export type GroupPath = {' | '.join(repr(g) for g in groups)};\n")
    out.append(f"export const UPSTREAM_COMMIT = {json.dumps(commit)};\n")
    out.append(
        "/** Every option of every config group, with its keys relative to the group node. */\n"
        f"export const GROUP_OPTIONS: Readonly<Record<GroupPath, GroupOptions>> = {ts(data['groupOptions'])};\n"
    )
    out.append(f"export const PRIMARY_CONFIGS: Readonly<Record<PrimaryName, PrimaryConfig>> = {ts(data['primaries'])};\n")
    out.append(
        "/**\n"
        " * Valid `key=value` override paths of each primary's default composition: every leaf and every\n"
        " * intermediate dict node (hydra.* included as the primary writes it; hydra's own HydraConf keys\n"
        " * such as hydra.job.name are not listed, nor list indices). Choosing another group option\n"
        " * replaces that group's subtree with GROUP_OPTIONS[group].options[option] under its package.\n"
        " */\n"
        f"export const OVERRIDE_PATHS: Readonly<Record<PrimaryName, readonly string[]>> = {ts(data['overridePaths'])};\n"
    )
    return "\n".join(out)


def render_logs(data: dict[str, Any], commit: str, tf_version: str) -> str:
    out = [header(commit, tf_version, "Log and token lists of the navsim configs: counts and deterministic samples (subsets).")]
    out.append(LOG_TYPES)
    out.append(
        "/** training/default_train_val_test_log_split.yaml train_logs. The sample is navtrain ∩ train_logs (see sampleRule). */\n"
        f"export const TRAIN_LOGS: NameList = {ts(data['trainLogs'])};\n"
    )
    out.append(f"/** training/default_train_val_test_log_split.yaml val_logs. The sample is navtrain ∩ val_logs (see sampleRule). */\nexport const VAL_LOGS: NameList = {ts(data['valLogs'])};\n")
    out.append(f"/** training/default_train_val_test_log_split.yaml test_logs (sample: a subset). */\nexport const TEST_LOGS: NameList = {ts(data['testLogs'])};\n")
    out.append(
        "/** Scene filters navtrain, navtest, navmini. Samples are subsets (stricter, never looser). */\n"
        f"export const SCENE_FILTERS: Readonly<Record<'navtrain' | 'navtest' | 'navmini', SceneFilterFacts>> = {ts(data['filters'])};\n"
    )
    return "\n".join(out)


def render_hf(data: dict[str, Any], commit: str, tf_version: str, prog: str) -> str:
    out = [header(commit, tf_version, "The argparse arguments HfArgumentParser((ModelArguments, DataTrainingArguments, TrainingArguments)) builds.")]
    out.append(HF_TYPES)
    out.append(f"export const TRANSFORMERS_VERSION = {json.dumps(tf_version)};\n")
    out.append(
        "/** The parser as a whole: an argparse.ArgumentParser (allow_abbrev=True: unambiguous prefixes of long options are accepted). */\n"
        "export const HF_PARSER = "
        + ts(
            {
                "allowAbbrev": True,
                "dataclasses": ["ModelArguments", "DataTrainingArguments", "TrainingArguments"],
                "helpOptions": ["-h", "--help"],
                "jsonFileForm": "a single argument ending in .json is read with parser.parse_json_file (unknown keys raise ValueError)",
                "prog": prog,
                "script": STAGE1_SCRIPT,
            }
        )
        + " as const;\n"
    )
    out.append(f"/** Enum values used by the fields (values, in declaration order). */\nexport const HF_ENUMS: Readonly<Record<string, readonly string[]>> = {ts(data['enums'])};\n")
    out.append(f"/** Every argument, in the order the parser adds them. */\nexport const HF_FIELDS: readonly HfField[] = {ts(data['fields'])};\n")
    return "\n".join(out)


def git_commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise Unsupported(f"{repo} is not a git work tree (pass --commit)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, type=Path, help="upstream recogdrive work tree")
    parser.add_argument("--transformers", required=True, type=Path, help="transformers wheel or unpacked folder")
    parser.add_argument("--commit", help="upstream commit (default: git rev-parse HEAD in --repo)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    parser.add_argument("--dump-json", type=Path, help="also write the raw data as JSON (for cross-checks)")
    args = parser.parse_args(argv)

    try:
        commit = args.commit or git_commit(args.repo)
        tf = TransformersSource(args.transformers)
        tf_version = tf.version()
        hydra_data = build_hydra(args.repo)
        log_data = build_log_splits(args.repo)
        hf_data = build_hf(args.repo, tf)
    except Unsupported as exc:
        print(f"generate.py: unsupported upstream construct: {exc}", file=sys.stderr)
        return 1

    files = {
        "hydra-configs.ts": render_hydra(hydra_data, commit, tf_version),
        "log-splits.ts": render_logs(log_data, commit, tf_version),
        "hf-arguments.ts": render_hf(hf_data, commit, tf_version, Path(STAGE1_SCRIPT).name),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name} ({len(text)} bytes)")
    if args.dump_json:
        args.dump_json.write_text(json.dumps({"hydra": hydra_data, "logs": log_data, "hf": hf_data}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
