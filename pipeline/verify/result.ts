/** What one output check found: problems in words a user can act on, and the counts it saw. */
export interface CheckResult {
  problems: string[];
  summary: Record<string, number | string>;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
