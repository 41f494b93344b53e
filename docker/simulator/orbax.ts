/**
 * torchax.save_checkpoint → flax save_checkpoint(overwrite=True) → orbax PyTree checkpoint, scaled
 * down. Orbax commits atomically: it writes `checkpoint_<S>.orbax-checkpoint-tmp-0/` with
 * `commit_timestamp_nsecs: null`, then sets the timestamp and renames it to `checkpoint_<S>/`.
 * A checkpoint that stays a tmp dir is the unfinalized state the verifier must reject.
 */
import type { ContainerFs } from './container-fs.ts';
import { floats, hashHex } from './deterministic.ts';

export interface CheckpointTree {
  /** Trainable parameter names (torch names, keys of the `params` dict). */
  params: readonly string[];
  /** Frozen parameters and buffers (Stage 1 only). */
  staticParams?: readonly string[];
  epoch: number;
  globalStep: number;
}

/** Writes `<ptDir>/checkpoint_<globalStep>`; returns the directory left on disk (the tmp dir when not committed). */
export function saveCheckpoint(fs: ContainerFs, ptDir: string, tree: CheckpointTree, options: { commit: boolean }): string {
  const final = `${ptDir}/checkpoint_${tree.globalStep}`;
  const tmp = `${final}.orbax-checkpoint-tmp-0`;
  fs.remove(final);
  fs.remove(tmp);

  const initNs = nowNs();
  fs.writeFile(`${tmp}/_METADATA`, JSON.stringify(treeMetadata(tree)));
  const arrayData = Buffer.from(new Float32Array(floats(`${ptDir}/${tree.globalStep}`, 64)).buffer);
  fs.writeFile(`${tmp}/d/${hashHex(`${ptDir}/${tree.globalStep}`, 32)}`, arrayData);
  fs.writeFile(`${tmp}/manifest.ocdbt`, Buffer.from(`OCDBT${hashHex(ptDir, 8)}`));
  fs.writeFile(`${tmp}/_CHECKPOINT_METADATA`, checkpointMetadata(initNs, null));
  if (!options.commit) return tmp;

  fs.writeFile(`${tmp}/_CHECKPOINT_METADATA`, checkpointMetadata(initNs, nowNs()));
  fs.rename(tmp, final);
  return final;
}

function treeMetadata(tree: CheckpointTree): unknown {
  const entries: Record<string, unknown> = {};
  const add = (path: string[], valueType: string) => {
    entries[`(${path.map((p) => `'${p}'`).join(', ')})`] = {
      key_metadata: path.map((key) => ({ key, key_type: 2 })),
      value_metadata: { value_type: valueType, skip_deserialize: false },
    };
  };
  for (const name of tree.params) add(['params', name], 'jax.Array');
  for (const name of tree.staticParams ?? []) add(['static_params', name], 'jax.Array');
  add(['epoch'], 'scalar');
  add(['global_step'], 'scalar');
  return { tree_metadata: entries, use_zarr3: false };
}

/** Written by hand: nanosecond timestamps exceed a double's exact integers. */
function checkpointMetadata(initNs: bigint, commitNs: bigint | null): string {
  return `{"item_handlers": "orbax.checkpoint._src.handlers.pytree_checkpoint_handler.PyTreeCheckpointHandler", "metrics": {}, "performance_metrics": {}, "init_timestamp_nsecs": ${initNs}, "commit_timestamp_nsecs": ${commitNs ?? 'null'}, "custom": {}}`;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * The committed checkpoint in an orbax `.pt` directory (`<dir>/checkpoint_<S>` with a commit
 * timestamp), with its parameter names; undefined when there is none.
 */
export function committedCheckpoint(fs: ContainerFs, ptDir: string): { step: number; params: string[] } | undefined {
  const steps = fs
    .listDir(ptDir)
    .map((name) => /^checkpoint_(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a);
  for (const step of steps) {
    const dir = `${ptDir}/checkpoint_${step}`;
    if (!fs.isFile(`${dir}/_CHECKPOINT_METADATA`) || /"commit_timestamp_nsecs": null/.test(fs.readText(`${dir}/_CHECKPOINT_METADATA`))) continue;
    const metadata = JSON.parse(fs.readText(`${dir}/_METADATA`)) as { tree_metadata?: Record<string, { key_metadata?: Array<{ key: string }> }> };
    const params = Object.values(metadata.tree_metadata ?? {})
      .map((entry) => entry.key_metadata?.map((k) => k.key) ?? [])
      .filter((keys) => keys[0] === 'params' && keys[1] !== undefined)
      .map((keys) => keys[1]!);
    return { step, params };
  }
  return undefined;
}
