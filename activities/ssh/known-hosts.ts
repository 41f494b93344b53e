/**
 * Host keys to pin SSH connections to: from an OpenSSH known_hosts file (static hosts) or from
 * the provisioner (TPU guest attributes). Keys are compared as their base64 wire blobs.
 */
export interface HostKeyEntry {
  /** "host" for port 22, "[host]:port" otherwise, as OpenSSH writes it. */
  pattern: string;
  type: string;
  blob: string;
}

export function knownHostsPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Parses known_hosts text; hashed (|1|) and marker (@revoked/@cert-authority) lines are skipped. */
export function parseKnownHosts(text: string): HostKeyEntry[] {
  const entries: HostKeyEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('@') || line.startsWith('|')) continue;
    const [hosts, type, blob] = line.split(/\s+/);
    if (hosts === undefined || type === undefined || blob === undefined) continue;
    for (const pattern of hosts.split(',')) entries.push({ pattern, type, blob });
  }
  return entries;
}

/** The keys pinned for host:port, as "type blob" strings. */
export function keysFor(entries: readonly HostKeyEntry[], host: string, port: number): string[] {
  const pattern = knownHostsPattern(host, port);
  return entries.filter((e) => e.pattern === pattern).map((e) => `${e.type} ${e.blob}`);
}

/** The base64 blob of a "type blob [comment]" key line. */
export function keyBlob(key: string): string {
  return key.trim().split(/\s+/)[1] ?? key.trim();
}
