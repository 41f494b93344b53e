"""Converts a trainer's checkpoint into the torch file the GPU scripts load.

Stage 3's reference policy and the evaluation read torch.load(path, map_location="cpu")["state_dict"]
with keys prefixed "agent." (see README.md): one file at a fixed path. Two trainers write something
else, and --format says which:

orbax (default): Stage 2 on TPU saves with torchax.save_checkpoint(state,
"<out>/checkpoint-epoch-<E>.pt", step=global_step), i.e. flax.training.checkpoints -> an orbax
PyTree directory <out>/checkpoint-epoch-<E>.pt/checkpoint_<step>/ holding {'params': {<torch name>:
array}, 'epoch': int, 'global_step': int}. The newest committed step is converted and --prefix is
prepended to every name.

lightning: the upstream PyTorch Lightning scripts (run_training_recogdrive.py,
run_training_recogdrive_rl.py) write <out>/lightning_logs/version_<V>/checkpoints/epoch=<E>-step=<S>.ckpt,
whose state_dict keys already carry "agent." but whose names hydra cannot take as a value ('=') and
which also hold optimizer states, callback state and hyper-parameters. The newest version's newest
checkpoint is reduced to its state_dict, every key of which must already start with --prefix.

    python orbax_to_torch.py [--format orbax] --checkpoint <.../checkpoint-epoch-E.pt> --output <file.pt>
                             --manifest <file.json> [--prefix agent.]
    python orbax_to_torch.py --format lightning --checkpoint <trainer output_dir> --output <file.pt>
                             --manifest <file.json> [--prefix agent.]

Failures raise BridgeError (a traceback, exit 1); usage errors are argparse's (exit 2).
"""

import argparse
import json
import os
import re
import sys

# The conversion needs no accelerator. On a TPU VM the image sets PJRT_DEVICE=TPU and ships
# libtpu: without this, importing orbax/jax would claim the TPU (or fail when a trainer holds it).
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import jax  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402
import torch  # noqa: E402

STEP_DIR = re.compile(r"^checkpoint_(\d+)$")
VERSION_DIR = re.compile(r"^version_(\d+)$")
LIGHTNING_CHECKPOINT = re.compile(r"^epoch=(\d+)-step=(\d+)\.ckpt$")
MANIFEST_FORMAT = "recogdrive-orbax-to-torch/1"

# numpy dtypes torch.from_numpy cannot take (ml_dtypes' extension types), read through a view of
# the same bytes as an integer type and viewed back as the torch dtype: bit-exact, no rounding.
VIEWED_DTYPES = {
    "bfloat16": (np.uint16, torch.bfloat16),
    "float8_e4m3fn": (np.uint8, torch.float8_e4m3fn),
    "float8_e5m2": (np.uint8, torch.float8_e5m2),
}


class BridgeError(Exception):
    """A checkpoint or output the bridge cannot convert; the message says why."""


def parse_args(argv):
    # allow_abbrev=False: no `--check` for `--checkpoint`; the contract spells every flag out.
    parser = argparse.ArgumentParser(
        prog="orbax_to_torch.py",
        description="Convert a trainer's checkpoint (a torchax/orbax checkpoint directory, or the newest "
        "PyTorch Lightning checkpoint of an output folder) into a torch.save state_dict file.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="orbax: the checkpoint-epoch-<E>.pt directory torchax.save_checkpoint wrote; "
        "lightning: the trainer's output folder, holding lightning_logs/",
    )
    parser.add_argument("--output", required=True, help="the torch file to write ({'state_dict': {...}})")
    parser.add_argument("--manifest", required=True, help="the JSON manifest to write (keys, shapes, dtypes)")
    parser.add_argument(
        "--prefix",
        default="agent.",
        help="orbax: prepended to every parameter name; lightning: what every key must already start with "
        "(default: agent.)",
    )
    parser.add_argument(
        "--format",
        choices=["orbax", "lightning"],
        default="orbax",
        help="what --checkpoint is (default: orbax)",
    )
    return parser.parse_args(argv)


def committed_step(checkpoint):
    """The newest committed checkpoint_<N> under the .pt directory: (N, its path).

    Orbax writes checkpoint_<N>.orbax-checkpoint-tmp-<i>/ and renames it once done, and sets
    commit_timestamp_nsecs in _CHECKPOINT_METADATA when it commits. A tmp dir, or a step without a
    commit timestamp, is an interrupted save: never converted.
    """
    if not os.path.isdir(checkpoint):
        raise BridgeError(f"checkpoint directory not found: {checkpoint!r}")
    steps = sorted(
        (int(match.group(1)) for match in map(STEP_DIR.match, os.listdir(checkpoint)) if match is not None),
        reverse=True,
    )
    for step in steps:
        step_dir = os.path.join(checkpoint, f"checkpoint_{step}")
        try:
            with open(os.path.join(step_dir, "_CHECKPOINT_METADATA"), encoding="utf-8") as file:
                metadata = json.load(file)
        except (OSError, ValueError):
            continue
        if isinstance(metadata, dict) and metadata.get("commit_timestamp_nsecs") is not None:
            return step, step_dir
    present = sorted(os.listdir(checkpoint))
    raise BridgeError(
        f"no committed orbax step under {checkpoint!r} (want checkpoint_<N>/ with a commit timestamp in "
        f"_CHECKPOINT_METADATA; found: {present or 'nothing'})"
    )


def restore_tree(step_dir):
    """The saved PyTree with numpy leaves, built from the checkpoint's own metadata.

    No target tree and no torch model are needed: the tree structure and each leaf's type come
    from _METADATA. Every leaf is restored as a host numpy array, so sharding metadata from the
    TPU mesh that saved it plays no part.
    """
    checkpointer = ocp.PyTreeCheckpointer()
    tree = checkpointer.metadata(step_dir).item_metadata.tree
    restore_args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    return checkpointer.restore(step_dir, args=ocp.args.PyTreeRestore(restore_args=restore_args))


def flat_params(tree, checkpoint):
    if not isinstance(tree, dict) or "params" not in tree:
        keys = sorted(tree) if isinstance(tree, dict) else type(tree).__name__
        raise BridgeError(f"no 'params' in the checkpoint tree of {checkpoint!r} (top-level keys: {keys})")
    params = {}

    # torchax saves a flat {torch name: array} dict; a nested dict (a flax-style tree) is flattened
    # with dots, which is what its torch names would be.
    def walk(node, path):
        for key, value in node.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(value, dict):
                walk(value, name)
            else:
                params[name] = value

    walk(tree["params"], "")
    if not params:
        raise BridgeError(f"the 'params' dict of {checkpoint!r} is empty: nothing to convert")
    return params


def to_tensor(name, value):
    array = np.asarray(value)
    viewed = VIEWED_DTYPES.get(array.dtype.name)
    if viewed is not None:
        as_int, torch_dtype = viewed
        return torch.from_numpy(np.require(array, requirements=["C", "W"]).view(as_int)).view(torch_dtype)
    try:
        # np.require: a writable contiguous copy only when the restored array is not one already.
        return torch.from_numpy(np.require(array, requirements=["C", "W"]))
    except TypeError as error:
        raise BridgeError(f"parameter {name!r} has dtype {array.dtype}, which torch cannot hold: {error}") from None


def newest_lightning_checkpoint(output_dir):
    """The newest version_<V>'s newest checkpoints/epoch=<E>-step=<S>.ckpt under output_dir/lightning_logs.

    Each run of a Lightning script (a retry too) logs to a new version_<V+1>; ModelCheckpoint keeps
    the best few epochs there. Only the newest version counts: when it holds no checkpoint, the
    newest run produced none, and an older run's checkpoint is not its result.
    """
    if not os.path.isdir(output_dir):
        raise BridgeError(f"trainer output folder not found: {output_dir!r}")
    logs = os.path.join(output_dir, "lightning_logs")
    if not os.path.isdir(logs):
        present = sorted(os.listdir(output_dir))
        raise BridgeError(
            f"no lightning_logs/ under {output_dir!r}: not the output folder of a Lightning run "
            f"(found: {present or 'nothing'})"
        )
    versions = sorted(
        (int(match.group(1)), match.group(0))
        for match in map(VERSION_DIR.match, os.listdir(logs))
        if match is not None and os.path.isdir(os.path.join(logs, match.group(0)))
    )
    if not versions:
        present = sorted(os.listdir(logs))
        raise BridgeError(f"no version_<V>/ under {logs!r} (found: {present or 'nothing'})")
    version_dir = os.path.join(logs, versions[-1][1])
    checkpoints_dir = os.path.join(version_dir, "checkpoints")
    present = sorted(os.listdir(checkpoints_dir)) if os.path.isdir(checkpoints_dir) else []
    saved = sorted(
        (int(match.group(1)), int(match.group(2)), match.group(0))
        for match in map(LIGHTNING_CHECKPOINT.match, present)
        if match is not None
    )
    if not saved:
        raise BridgeError(
            f"no checkpoint in the newest Lightning run {version_dir!r} (want checkpoints/epoch=<E>-step=<S>.ckpt; "
            f"found: {present or 'nothing'}): ModelCheckpoint saved nothing, e.g. the run had no validation data, "
            f"so val/loss_epoch was never logged"
        )
    return os.path.join(checkpoints_dir, saved[-1][2])


def lightning_state_dict(output_dir, prefix):
    """The newest Lightning checkpoint's path, its state_dict (keys checked, kept), global_step and epoch."""
    path = newest_lightning_checkpoint(output_dir)
    # weights_only=False: a Lightning checkpoint also pickles hyper-parameters and callback state,
    # which torch's restricted unpickler may refuse. The file is our own trainer's output, read from
    # the pipeline's own storage; what leaves here is tensors only (loadable with weights_only=True).
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state_dict = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state_dict, dict):
        keys = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise BridgeError(f"no 'state_dict' in the Lightning checkpoint {path!r} (top-level keys: {keys})")
    if not state_dict:
        raise BridgeError(f"the 'state_dict' of {path!r} is empty: nothing to convert")

    # The agent's loaders keep only "agent." keys and skip the rest one by one; a key without the
    # prefix means this is not AgentLightningModule's checkpoint (or another prefix was meant).
    lacking = sorted(name for name in state_dict if not name.startswith(prefix))
    if lacking:
        raise BridgeError(
            f"{len(lacking)} of {len(state_dict)} state_dict keys of {path!r} do not start with the prefix {prefix!r} "
            f"(e.g. {lacking[0]!r}); a Lightning checkpoint's keys are kept as they are, so each must carry it already"
        )
    # A module's get_extra_state() puts any object in a state_dict; the file written holds tensors only.
    not_tensors = sorted(name for name, value in state_dict.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise BridgeError(
            f"{len(not_tensors)} of {len(state_dict)} state_dict entries of {path!r} are not tensors "
            f"(e.g. {not_tensors[0]!r}: {type(state_dict[not_tensors[0]]).__name__}); the output holds tensors only"
        )
    step, epoch = ckpt.get("global_step"), ckpt.get("epoch")
    return (
        path,
        {name: state_dict[name] for name in sorted(state_dict)},
        None if step is None else int(step),
        None if epoch is None else int(epoch),
    )


def dtype_name(tensor):
    return str(tensor.dtype).removeprefix("torch.")


def write_atomically(path, write):
    """write(tmp) then rename: a reader never sees a half-written file, a failure leaves none."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        os.makedirs(directory, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        # RuntimeError: torch.save's zip writer reports some I/O failures that way.
        if os.path.exists(tmp):
            os.remove(tmp)
        reason = getattr(error, "strerror", None) or str(error)
        raise BridgeError(f"cannot write {path!r}: {reason}") from None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    checkpoint = os.path.abspath(args.checkpoint)
    output = os.path.abspath(args.output)
    if args.format == "lightning":
        source, state_dict, step, epoch = lightning_state_dict(checkpoint, args.prefix)
        read_from = source
    else:
        step, step_dir = committed_step(checkpoint)
        tree = restore_tree(step_dir)
        params = flat_params(tree, checkpoint)

        # A key that already has the prefix means a converted or differently named checkpoint:
        # doubling it ("agent.agent.") would make every key miss silently in the GPU scripts' filter.
        carrying = sorted(name for name in params if args.prefix and name.startswith(args.prefix))
        if carrying:
            raise BridgeError(
                f"{len(carrying)} of {len(params)} parameter names already start with the prefix {args.prefix!r} "
                f"(e.g. {carrying[0]!r}); refusing to double it (pass --prefix '' to keep the names as they are)"
            )

        state_dict = {args.prefix + name: to_tensor(name, params[name]) for name in sorted(params)}
        epoch = tree.get("epoch")
        epoch = None if epoch is None else int(epoch)
        source, read_from = checkpoint, step_dir

    tensors = {key: {"shape": list(tensor.shape), "dtype": dtype_name(tensor)} for key, tensor in state_dict.items()}
    manifest = {
        "format": MANIFEST_FORMAT,
        "source": {"checkpoint": source, "step": step},
        "epoch": epoch,
        "prefix": args.prefix,
        "output": output,
        "count": len(state_dict),
        "bytes": sum(tensor.numel() * tensor.element_size() for tensor in state_dict.values()),
        "tensors": tensors,
    }

    # The torch file first: a manifest on disk always describes a complete output. Only the
    # state_dict goes in: no optimizer state, no pickled objects beyond tensors.
    write_atomically(output, lambda tmp: torch.save({"state_dict": state_dict}, tmp))

    def write_manifest(tmp):
        with open(tmp, "w", encoding="utf-8") as file:
            json.dump(manifest, file, indent=2)
            file.write("\n")

    write_atomically(os.path.abspath(args.manifest), write_manifest)
    print(f"wrote {len(state_dict)} tensors ({manifest['bytes']} bytes) from {read_from} to {manifest['output']}")


if __name__ == "__main__":
    main()
