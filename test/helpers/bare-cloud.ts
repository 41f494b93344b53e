/**
 * The fake Cloud TPU and Compute Engine APIs over a bare test bed: every new VM lands on a test
 * bed worker that no live VM holds (a VM with GPUs on a worker with GPUs), and that worker is
 * made a brand-new bare VM first (bed.resetWorker) with the service account the create request
 * asked for. One allocator for both APIs, so a TPU node and a Compute Engine VM never share a worker.
 */
import { FakeComputeEngine, type FakeInstance } from '../fakes/compute-engine/server.ts';
import { FakeTpuApi, type FakeNode } from '../fakes/tpu-api/server.ts';
import type { Testbed, VmServiceAccount } from '../testbed/testbed.ts';

export interface BareCloud {
  tpu: FakeTpuApi;
  gce: FakeComputeEngine;
  /** The test bed worker each VM landed on, in creation order ("tpu:<node>" / "gce:<path>"). */
  placements: Array<{ vm: string; worker: number }>;
  stop(): Promise<void>;
}

export async function startBareCloud(bed: Testbed, account: VmServiceAccount, options: { createDelayMs?: number } = {}): Promise<BareCloud> {
  const holder = new Map<number, string>();
  const placements: BareCloud['placements'] = [];
  const resets = new Set<Promise<void>>();
  const failures: unknown[] = [];
  // The fakes call back into the allocator, which asks them which VMs still exist.
  const fakes: { tpu?: FakeTpuApi; gce?: FakeComputeEngine } = {};
  const alive = (vm: string): boolean =>
    vm.startsWith('tpu:')
      ? (fakes.tpu?.allNodes().some((n) => vm.startsWith(`tpu:${n.name}/`)) ?? false)
      : (fakes.gce?.allInstances().some((i) => `gce:${i.project}/${i.zone}/${i.name}#${i.id}` === vm) ?? false);
  const place = (vm: string, gpus: number, requested: string | undefined): number => {
    const free = bed.workers.findIndex((w, index) => (gpus > 0 ? w.gpus >= gpus : w.gpus === 0) && !alive(holder.get(index) ?? ''));
    if (free < 0) throw new Error(`no free test bed worker for ${vm} (${gpus} GPUs)`);
    holder.set(free, vm);
    placements.push({ vm, worker: free });
    // The fakes' hooks are synchronous: the reset runs while the VM "boots" (its sshd refuses meanwhile).
    const reset = bed
      .resetWorker(free)
      .then(() => bed.setServiceAccount(free, requested === undefined || requested === 'default' ? account : { email: requested, token: account.token }))
      .catch((error: unknown) => {
        failures.push(error);
      })
      .finally(() => resets.delete(reset));
    resets.add(reset);
    return free;
  };
  const address = (worker: number) => {
    const w = bed.workers[worker]!;
    return { ipAddress: w.address, port: w.port, hostKeys: [w.hostKey] };
  };
  const tpu = new FakeTpuApi({
    createDelayMs: options.createDelayMs ?? 300,
    // Each worker of a TPU slice is a machine of its own.
    addressFor: (node: FakeNode, worker: number) => address(place(`tpu:${node.name}/${worker}`, 0, node.serviceAccount)),
  });
  const gce = new FakeComputeEngine({
    addressFor: (vm: FakeInstance) => {
      const requested = (vm.serviceAccounts[0] as { email?: string } | undefined)?.email;
      const worker = place(`gce:${vm.project}/${vm.zone}/${vm.name}#${vm.id}`, vm.gpus?.count ?? 0, requested);
      return { ...address(worker), natIP: bed.workers[worker]!.address };
    },
  });
  Object.assign(fakes, { tpu, gce });
  await Promise.all([tpu.start(), gce.start()]);
  return {
    tpu,
    gce,
    placements,
    stop: async () => {
      await Promise.allSettled([...resets]);
      await Promise.all([tpu.stop(), gce.stop()]);
      if (failures.length > 0) throw new Error(`${failures.length} reset(s) of test bed workers for new VMs failed`, { cause: failures[0] });
    },
  };
}
