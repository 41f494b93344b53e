/** The identity a cloud VM runs as: its bring-up reads the registry and the buckets with it, never with the worker's keys. */
export interface VmServiceAccount {
  /** An email, or "default" (the project's Compute Engine default service account). */
  email: string;
  scopes: string[];
}

/** Broad scope: what the account may do is decided by its IAM roles (Google's recommendation). */
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

export const DEFAULT_VM_SERVICE_ACCOUNT: VmServiceAccount = { email: 'default', scopes: [CLOUD_PLATFORM_SCOPE] };
