/**
 * Verification of a finished stage from its completion markers: DONE.json (the wrapper's
 * verdict and the contract check it ran next to the data), the manifest it points to (digest,
 * counts), and a few sampled files still being there with their sizes. A constant number of
 * object reads, however many files the output has: never a listing of a 100k-file cache.
 */
import type { VerificationSpec } from '../../pipeline/contracts/index.ts';
import { canonicalJson, sha256Hex } from '../../pipeline/fingerprint.ts';
import { markerFiles, type MarkerFiles, type MarkerLayout } from '../../pipeline/markers.ts';
import type { OutputReader } from '../../pipeline/verify/reader.ts';
import { parseDoneMarker, parseManifest, parseVerdictClaim } from '../artifacts/markers.ts';
import type { VerifyReport } from '../types.ts';
import { checkSamples, sampleFiles } from './samples.ts';

/**
 * What verification reads: the markers (paths relative to their location, pipeline/markers.ts)
 * and the data (paths relative to the output). In the old `inside` layout both are the output.
 */
export interface OutputReaders {
  markers: OutputReader;
  data: OutputReader;
  files: MarkerFiles;
}

export function outputReaders(markers: OutputReader, data: OutputReader, layout: MarkerLayout): OutputReaders {
  return { markers, data, files: markerFiles(layout) };
}

export async function verifyFromMarkers(
  readers: OutputReaders,
  spec: VerificationSpec,
  seenPatterns: readonly string[] | undefined,
): Promise<VerifyReport> {
  const logProblems = seenPatterns === undefined ? [] : checkLogPatterns(spec, seenPatterns);
  const DONE_MARKER = readers.files.done;
  const doneText = await readers.markers.readText(DONE_MARKER);
  if (doneText === undefined) {
    return report([`no ${DONE_MARKER}: the stage wrapper recorded no successful completion`, ...logProblems], {});
  }
  const done = parseDoneMarker(doneText);
  if (!done.ok) return report([done.problem, ...logProblems], {});
  const overruled = await overruledBy(readers, done.value.attempt);
  if (overruled !== undefined) {
    // FAILED is final for its attempt: a DONE.json written after it (a zombie, an older wrapper) is no verdict.
    return { ...report([`${DONE_MARKER} of attempt ${done.value.attempt} is ignored: ${overruled}`, ...logProblems], {}), ignoredDoneAttempt: done.value.attempt };
  }
  const { manifest, check } = done.value;
  const problems: string[] = [];
  if (canonicalJson(check.spec) !== canonicalJson(spec.outputs)) {
    problems.push(`${DONE_MARKER} was checked against another output contract (${canonicalJson(check.spec)}), not ${canonicalJson(spec.outputs)}`);
  }
  problems.push(...check.problems);

  const summary = { ...check.summary, files: manifest.files, bytes: manifest.bytes };
  const listText = await readers.markers.readText(manifest.list);
  if (listText === undefined) return report([...problems, `the manifest ${manifest.list} is missing`, ...logProblems], summary);
  const digest = `sha256:${sha256Hex(listText)}`;
  if (digest !== manifest.digest) return report([...problems, `${manifest.list} does not match the digest in ${DONE_MARKER}`, ...logProblems], summary);
  const files = parseManifest(listText);
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  if (files.length !== manifest.files || bytes !== manifest.bytes) {
    problems.push(`${manifest.list} lists ${files.length} files / ${bytes} bytes, ${DONE_MARKER} says ${manifest.files} / ${manifest.bytes}`);
  }
  const samples = sampleFiles(files, manifest.digest);
  problems.push(...(await checkSamples((path) => readers.data.stat(path), samples)));
  return {
    ...report([...problems, ...logProblems], summary),
    manifest: { files: manifest.files, bytes: manifest.bytes, digest: manifest.digest },
    samples,
    doneAttempt: done.value.attempt,
  };
}

/**
 * Why an attempt's DONE.json does not count (the attempt was declared failed first), or undefined
 * when it does. The claim decides (one read); without one (writers before claims) a FAILED.json does.
 */
async function overruledBy(readers: OutputReaders, attempt: number): Promise<string | undefined> {
  const claimText = await readers.markers.readText(readers.files.verdict(attempt));
  const claim = claimText === undefined ? undefined : parseVerdictClaim(claimText);
  if (claim?.ok === true) return claim.value.verdict === 'failed' ? `the attempt was declared failed first (${readers.files.verdict(attempt)})` : undefined;
  if ((await readers.markers.readText(readers.files.failed(attempt))) !== undefined) return `the attempt was declared failed (${readers.files.failed(attempt)})`;
  return undefined;
}

export function checkLogPatterns(spec: VerificationSpec, seenPatterns: readonly string[]): string[] {
  const seen = new Set(seenPatterns);
  return [
    ...spec.logMustContain.filter((p) => !seen.has(p)).map((p) => `the log never said "${p}"`),
    ...spec.logMustNotContain.filter((p) => seen.has(p)).map((p) => `the log says "${p}"`),
  ];
}

function report(problems: string[], summary: Record<string, number | string>): VerifyReport {
  return { ok: problems.length === 0, problems, summary };
}
