/**
 * `pip`, simulated: `install` prints pip's usual lines and records the new versions in the
 * container's state (see site-packages.ts); nothing is downloaded. Only the packages the stage
 * contracts install have known versions; others get a placeholder.
 */
import type { Controls } from './controls.ts';
import { err, out } from './log.ts';
import { compareVersions, installedPackages, recordInstalled } from './site-packages.ts';

/** What PyPI would resolve today for the runtime fix (the versions the TPU guide's runs got). */
const LATEST: Readonly<Record<string, string>> = { 'hydra-core': '1.3.2', omegaconf: '2.3.0', pytest: '8.3.4' };
const SITE_PACKAGES = '/usr/local/lib/python3.11/site-packages';
/** `pip install` options whose next argument is their value, not a requirement. */
const OPTIONS_WITH_VALUE = new Set(['-r', '--requirement', '-c', '--constraint', '-i', '--index-url', '--extra-index-url', '-t', '--target', '-f', '--find-links']);

export function runPip(args: readonly string[], controls: Controls): number {
  const [command, ...rest] = args;
  switch (command) {
    case 'install':
      return install(rest, controls);
    case '--version':
    case '-V':
      out(`pip 24.0 from ${SITE_PACKAGES}/pip (python 3.11)`);
      return 0;
    case 'list':
    case 'freeze': {
      const packages = Object.entries(installedPackages(controls.stateDir)).sort(([a], [b]) => a.localeCompare(b));
      for (const [name, version] of packages) out(command === 'freeze' ? `${name}==${version}` : `${name.padEnd(24)} ${version}`);
      return 0;
    }
    default:
      err(`WARNING: the stage simulator does not simulate 'pip ${args.join(' ')}'; nothing was done.`);
      return 0;
  }
}

interface Requirement {
  name: string;
  spec: string;
  /** `==` version. */
  pinned: string | undefined;
  /** `>=` version. */
  minimum: string | undefined;
}

function install(args: readonly string[], controls: Controls): number {
  const upgrade = args.includes('--upgrade') || args.includes('-U');
  const requirements = args.filter((a, i) => !a.startsWith('-') && !OPTIONS_WITH_VALUE.has(args[i - 1] ?? '')).map(parseRequirement);
  if (requirements.length === 0) {
    err('ERROR: You must give at least one requirement to install (see "pip help install")');
    return 1;
  }
  const installed = installedPackages(controls.stateDir);
  const chosen: Record<string, string> = {};
  for (const req of requirements) {
    const current = installed[req.name];
    const outdated = current === undefined || upgrade || (req.minimum !== undefined && compareVersions(current, req.minimum) < 0);
    const wanted = req.pinned ?? (outdated ? (LATEST[req.name] ?? req.minimum ?? current ?? '1.0.0') : current);
    if (current === wanted) {
      out(`Requirement already satisfied: ${req.spec} in ${SITE_PACKAGES} (${current})`);
      continue;
    }
    out(`Collecting ${req.spec}`);
    out(`  Downloading ${req.name.replaceAll('-', '_')}-${wanted}-py3-none-any.whl.metadata (${(3 + req.name.length / 4).toFixed(1)} kB)`);
    chosen[req.name] = wanted;
  }
  const names = Object.keys(chosen).sort();
  if (names.length === 0) return 0;
  out(`Installing collected packages: ${names.join(', ')}`);
  for (const name of names) {
    const previous = installed[name];
    if (previous === undefined) continue;
    out(`  Attempting uninstall: ${name}`);
    out(`    Found existing installation: ${name} ${previous}`);
    out(`    Uninstalling ${name}-${previous}:`);
    out(`      Successfully uninstalled ${name}-${previous}`);
  }
  recordInstalled(controls.stateDir, chosen);
  out(`Successfully installed ${names.map((name) => `${name}-${chosen[name]}`).join(' ')}`);
  return 0;
}

function parseRequirement(spec: string): Requirement {
  const match = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(==|>=|~=|<=|!=|<|>)?\s*(.*)$/.exec(spec);
  const name = (match?.[1] ?? spec).toLowerCase().replaceAll('_', '-');
  const version = match?.[3] === '' ? undefined : match?.[3];
  return { name, spec, pinned: match?.[2] === '==' ? version : undefined, minimum: match?.[2] === '>=' ? version : undefined };
}
