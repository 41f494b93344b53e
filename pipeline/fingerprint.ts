/**
 * A stage's fingerprint: what its output depends on, hashed. Two stages with the same
 * fingerprint produce interchangeable outputs, so a verified output with the fingerprint a plan
 * asks for is reused instead of recomputed. Pure (runs inside workflows).
 *
 * It covers the stage contract's version, the image *digest*, the configuration the stage reads
 * (trainer arguments, runtime fixes, environment, the host repo folder mounted at /recogdrive,
 * the output check) and the fingerprints of its inputs. It leaves out what does not change the
 * output: run id, URIs, container names, compute (backend, accelerator, zones), retry limits.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import stableStringify from 'safe-stable-stringify';
import { CONTRACTS } from './contracts/index.ts';
import type { PipelineConfig } from './input.ts';
import type { StageName } from './stages.ts';

/** Bump when what goes into a fingerprint changes meaning (every earlier fingerprint stops matching). */
export const FINGERPRINT_SCHEMA = 1;

/** Flat name → value map of everything a fingerprint covers; compared field by field to say why a stage runs. */
export type FingerprintComponents = Record<string, string>;

export interface StageFingerprint {
  stage: StageName;
  fingerprint: string;
  components: FingerprintComponents;
}

export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** Canonical JSON: keys sorted, so equal values always hash equally. */
export function canonicalJson(value: unknown): string {
  return stableStringify(value) ?? 'null';
}

export function fingerprintOf(stage: StageName, components: FingerprintComponents): string {
  return `sha256:${sha256Hex(canonicalJson({ schema: FINGERPRINT_SCHEMA, stage, components }))}`;
}

/** The fingerprint an artifact given by URI (providedArtifacts) stands for when it has no lineage record. */
export function providedFingerprint(uri: string): string {
  return `sha256:${sha256Hex(canonicalJson({ schema: FINGERPRINT_SCHEMA, provided: uri }))}`;
}

/**
 * Arguments as named fields: hydra `key=value` (and `+key=value`), HF `--key value` and `--key=value`; anything
 * else by position. Named, a change reads "agent.lr: 0.0001 → 5e-05" instead of "argv changed".
 */
export function argumentComponents(args: readonly string[]): FingerprintComponents {
  const out: FingerprintComponents = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const option = /^(--[A-Za-z_][\w.-]*)=/.exec(arg);
    if (option !== null) {
      // `--key=value` (user overrides) names the same component as `--key value`: equal runs stay equal.
      out[`arg ${option[1]}`] = arg.slice(option[0].length);
    } else if (arg.startsWith('--') && next !== undefined && !next.startsWith('--')) {
      out[`arg ${arg}`] = next;
      i++;
    } else if (/^\+?[A-Za-z_][\w.]*=/.test(arg)) {
      const at = arg.indexOf('=');
      out[`arg ${arg.slice(0, at)}`] = arg.slice(at + 1);
    } else {
      out[`arg #${i}`] = arg;
    }
  }
  return out;
}

/**
 * The components of one stage, given the digest its image resolves to and the fingerprints of the
 * stages it reads. `imageDigest` undefined means "not resolved" (a plan made without a backend).
 */
export function stageComponents(
  config: PipelineConfig,
  stage: StageName,
  imageDigest: string | undefined,
  inputFingerprints: Readonly<Partial<Record<StageName, string>>>,
  /** The archive's version as the store reports it ("<uri> md5=... generation=..."); git sources carry their commit. */
  codeVersion?: string,
): FingerprintComponents {
  const contract = CONTRACTS[stage];
  const rendered = contract.render(config);
  const image = config.images[contract.image];
  const components: FingerprintComponents = {
    contract: `${stage} v${contract.version}`,
    image: imageDigest ?? `unresolved ${image}`,
    script: rendered.script ?? contract.script,
    // How many processes on how many machines: the effective batch size depends on it.
    ...(rendered.launcher === undefined ? {} : { launcher: rendered.launcher.join(' ') }),
    runtimeFixes: canonicalJson(contract.runtimeFixes),
    repo: config.paths.hostRepoDir,
    // Declared sources (a bare VM fetches them): what is read, not where it is put.
    ...(config.sources?.code === undefined ? {} : { code: codeComponent(config.sources.code, codeVersion) }),
    ...Object.fromEntries((config.sources?.data ?? []).map((d) => [`data ${d.path}`, d.uri])),
    check: canonicalJson(contract.verification(config).outputs),
    ...argumentComponents([...rendered.args, ...rendered.addedArgs]),
  };
  for (const [name, value] of Object.entries({ ...rendered.env, ...config[stage].env })) components[`env ${name}`] = value;
  for (const input of rendered.inputs) {
    const fingerprint = inputFingerprints[input.stage];
    if (fingerprint === undefined) throw new Error(`${stage} reads ${input.stage}, whose fingerprint is not known yet`);
    components[`input ${input.stage}`] = fingerprint;
  }
  return components;
}

function codeComponent(code: NonNullable<NonNullable<PipelineConfig['sources']>['code']>, codeVersion: string | undefined): string {
  if ('git' in code) return `git ${code.git} ${code.commit}`;
  return codeVersion ?? `unresolved ${code.archive}`;
}

/** What changed between two component maps, in words ("arg agent.lr: 0.0001 → 5e-05"). */
export function describeChanges(before: FingerprintComponents, after: FingerprintComponents): string[] {
  const changes: string[] = [];
  for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    const was = before[key];
    const now = after[key];
    if (was === now) continue;
    if (key.startsWith('input ')) changes.push(`${key.slice('input '.length)} output changed`);
    else if (was === undefined) changes.push(`${key} added (${short(now!)})`);
    else if (now === undefined) changes.push(`${key} removed (was ${short(was)})`);
    else changes.push(`${key}: ${short(was)} → ${short(now)}`);
  }
  return changes;
}

function short(value: string): string {
  return value.length > 80 ? `${value.slice(0, 77)}...` : value;
}
