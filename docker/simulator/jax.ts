/** What the torchax scripts print of JAX: the devices of a v6e-4 slice (the simulator plays 4 chips). */
export const TPU_DEVICES = 4;

/** `jax.devices()` as the scripts log it. */
export function jaxDevices(count = TPU_DEVICES): string {
  const devices = Array.from({ length: count }, (_, i) => `TpuDevice(id=${i}, process_index=0, coords=(${i % 2},${Math.floor(i / 2)},0), core_on_chip=0)`);
  return `[${devices.join(', ')}]`;
}
