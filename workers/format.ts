/**
 * Human-readable output of the CLI: plans, run status and run summaries. Text from runs (a
 * stage's last log lines in an error, reasons, names) is printed with control characters shown
 * escaped, so a log line cannot move the cursor, clear the screen or retitle the terminal.
 */
import { gpuHoursOf, tpuHoursOf, type ComputeUsage } from '../pipeline/cost.ts';
import { gpusOf } from '../pipeline/gpu-machines.ts';
import { dockerRunCommandLine } from '../pipeline/launch.ts';
import { shortFingerprint } from '../pipeline/lineage.ts';
import type { Plan } from '../pipeline/plan.ts';
import type { RunStatus, RunSummary } from '../pipeline/status.ts';

/** `text` with every control character but the newline escaped (\u001b → "\u001b"). */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- escaping control characters is the point
  return text.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, (c) => (c === '\t' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

export function formatPlan(plan: Plan): string {
  const lines = [`plan for run ${plan.runId} (experiment ${plan.experiment}), artifacts under ${plan.artifactRoot}`];
  if (plan.rerunOf !== undefined) lines.push(`rerun of ${plan.rerunOf}`);
  if (!plan.imagesResolved) lines.push('image tags not resolved to digests: fingerprints name the tags (a run resolves them)');
  lines.push('');
  for (const stage of plan.stages) {
    lines.push(`${stage.stage.padEnd(13)} ${stage.decision.padEnd(9)} ${stage.reason}`);
    if (stage.artifactUri !== undefined) lines.push(`  artifacts: ${stage.artifactUri}`);
    if (stage.fingerprint !== undefined) lines.push(`  fingerprint: ${shortFingerprint(stage.fingerprint)}`);
    if (stage.compute !== undefined) lines.push(`  compute:   ${describeCompute(stage.compute)}`);
    if (stage.launch !== undefined) lines.push(`  image:     ${stage.launch.image}${stage.imageDigest?.startsWith('sha256:') === true ? ` → ${stage.imageDigest}` : ' (not resolved to a digest)'}`);
    if (stage.launch !== undefined) lines.push(`  command:   ${dockerRunCommandLine(stage.launch)}`);
    for (const note of stage.notes) lines.push(`  note:      ${note}`);
    lines.push('');
  }
  return printable(lines.join('\n'));
}

function gpuText(gpus: { type: string; count: number } | undefined): string {
  return gpus === undefined ? '' : ` (${gpus.count}×${gpus.type})`;
}

function describeCompute(compute: NonNullable<Plan['stages'][number]['compute']>): string {
  switch (compute.backend) {
    case 'local':
      return 'local (stage simulator on this machine)';
    case 'tpu-api':
      return `TPU ${compute.accelerator}${compute.spot ? ' spot' : ''} in ${compute.zones.join(' > ')}`;
    case 'compute-engine':
      return `VM ${compute.machineType}${gpuText(gpusOf(compute.machineType, compute.gpus))}${compute.spot ? ' spot' : ''} in ${compute.zones.join(' > ')}`;
    case 'static':
      return `static hosts ${compute.hosts.map((h) => `${h.user}@${h.address}:${h.port}`).join(', ')}`;
  }
}

export function formatStatus(status: RunStatus): string {
  const lines = [`run ${status.runId} (${status.experiment}): ${status.state}${status.error ? ` — ${status.error}` : ''}`];
  for (const s of status.stages) {
    const progress = s.progress;
    const bar = progress?.fraction === undefined ? '' : ` ${progressBar(progress.fraction)} ${Math.round(progress.fraction * 100)}%`;
    const eta = progress?.etaSeconds === undefined || s.state !== 'running' ? '' : ` eta ${progress.etaSeconds}s`;
    const output = progress?.output === undefined || s.state !== 'running' ? '' : ` output ${progress.output.files} files ${formatBytes(progress.output.bytes)}`;
    const phase = s.phase === undefined ? '' : ` (${s.phase})`;
    const attempt = s.attempt > 0 ? ` attempt ${s.attempt}` : '';
    const reused = s.state === 'reused' && s.reason !== undefined ? ` ${s.reason}` : '';
    lines.push(`  ${s.stage.padEnd(13)} ${(s.state + phase).padEnd(22)}${attempt}${bar}${eta}${output}${reused}`);
    if (s.error !== undefined) lines.push(`    error: ${s.error.split('\n')[0]}`);
    if (s.computeEvent !== undefined) lines.push(`    compute: ${s.computeEvent}`);
    if (s.compute !== undefined && s.compute.length > 0) lines.push(`    machines: ${describeUsage(s.compute, Date.now())}`);
  }
  return printable(lines.join('\n'));
}

/**
 * "rd-x-stage2-1 us-east5-b v6e-8 spot preempted; rd-x-stage2-2 … — 3.2 TPU-hours", and for
 * machines with GPUs "rd-x-stage3-1 us-east5-b a2-highgpu-8g 8×nvidia-tesla-a100 spot succeeded — 0 TPU-hours, 16 GPU-hours".
 */
function describeUsage(usages: readonly ComputeUsage[], now: number): string {
  const each = usages.map((u) =>
    [u.name, u.zone, u.machine, (u.gpus ?? 0) > 0 ? `${u.gpus}×${u.gpuType ?? 'GPU'}` : undefined, u.spot ? 'spot' : undefined, u.outcome ?? (u.releasedAt === undefined ? 'held' : undefined)]
      .filter(Boolean)
      .join(' '),
  );
  const gpus = usages.some((u) => (u.gpus ?? 0) > 0) ? `, ${gpuHoursOf(usages, now)} GPU-hours` : '';
  return `${each.join('; ')} — ${tpuHoursOf(usages, now)} TPU-hours${gpus}`;
}

function progressBar(fraction: number, width = 20): string {
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export function formatSummary(summary: RunSummary): string {
  const lines = [`run ${summary.runId} succeeded (${summary.startedAt} → ${summary.endedAt})`];
  for (const s of summary.stages) {
    const work = s.workMs === undefined ? '' : ` ${(s.workMs / 1000).toFixed(1)}s`;
    const outputs = s.outputs === undefined ? '' : ` ${Object.entries(s.outputs).map(([k, v]) => `${k}=${v}`).join(' ')}`;
    const reason = s.decision === 'REUSE' && s.reason !== undefined ? ` ${s.reason}` : '';
    lines.push(`  ${s.stage.padEnd(13)} ${s.decision.padEnd(9)}${work}${outputs}${reason}`);
    if (s.artifactUri !== undefined) lines.push(`    ${s.artifactUri}`);
    if (s.compute !== undefined && s.compute.length > 0) lines.push(`    machines: ${describeUsage(s.compute, Date.parse(summary.endedAt))}`);
  }
  return printable(lines.join('\n'));
}

/** 1536 -> "1.5 KiB". */
function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
