/**
 * Bridge 1, run_caching_recogdrive_torchax.py: the frozen VLM's hidden states for every scene of
 * the split, one batch per unit of work. Reads the HF model dir, the split's logs and front-camera
 * blobs; writes `<cache_path>/<log>/<token>/{internvl_feature,trajectory_target}.gz` (no metadata).
 * Runs in the :stage1 image, whose hydra 1.2 fails on Python 3.11 unless pip upgraded it first.
 * partial: a third of the tokens get only internvl_feature.gz, a sixth none; still "Caching Complete.".
 */
import { FEATURE_FILE, featureFile, TARGET_FILE, targetFile } from '../cache-files.ts';
import { frontCameraPath, readLogs } from '../dataset.ts';
import { PythonError, type Frame } from '../errors.ts';
import { requireHfModel } from '../hf-model.ts';
import { MISSING, type ConfigSchema } from '../hydra-config.ts';
import { runHydraScript } from '../hydra-job.ts';
import { err, isLogged, out, tqdmLine } from '../log.ts';
import { hasModernHydra } from '../site-packages.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptMain } from './context.ts';
import { requireRecogDriveAgent, trainingConfig } from './navsim-configs.ts';

export const featureCache: ScriptMain = async (ctx) => {
  if (!hasModernHydra(ctx.controls.stateDir)) throw hydraImportError(ctx.scriptPath);
  const config = trainingConfig();
  // The caching script writes wherever cache_path points; the TPU guide always passes one.
  const schema: ConfigSchema = { ...config, values: { ...config.values, cache_path: MISSING } };

  await runHydraScript(ctx, schema, async (job) => {
    const { cfg } = job;
    const { fs } = ctx;
    requireRecogDriveAgent(cfg, 'vlm_path');
    const cachePath = fs.absolute(cfg.str('cache_path'));
    const batchSize = Math.max(1, cfg.int('dataloader.params.batch_size'));
    const vlmPath = cfg.str('agent.vlm_path');
    requireHfModel(fs, vlmPath);
    job.info(`Loaded VLM from ${fs.absolute(vlmPath)} (eager attention, right padding to 2800 tokens)`);

    // A non-empty train_logs replaces the split's logs (upstream's sharding knob); empty or None = all.
    const only = cfg.list('train_logs');
    const logs = readLogs(fs, cfg.str('navsim_log_path')).filter((log) => only === undefined || only.length === 0 || only.includes(log.logName));
    const scenes = logs.flatMap((log) => log.tokens.map((token) => ({ logName: log.logName, token })));
    const blobs = cfg.str('sensor_blobs_path');
    job.info(`Caching ${scenes.length} samples of ${logs.length} logs to ${cachePath}`);

    const batches = Array.from({ length: Math.ceil(scenes.length / batchSize) }, (_, i) => scenes.slice(i * batchSize, (i + 1) * batchSize));
    const work = new Work(batches.length, ctx.controls, ctx.scriptName);
    const started = performance.now();
    let index = 0;
    for (const [i, batch] of batches.entries()) {
      // Batch 0 includes the XLA compilation of the jitted forward pass.
      if (i === 0) out('Compiling JAX inference step...');
      const seconds = await work.next();
      if (i === 0) out('Compilation finished.');
      for (const { logName, token } of batch) {
        fs.readBytes(frontCameraPath(blobs, logName, token));
        const dir = `${cachePath}/${logName}/${token}`;
        const degraded = isPartial(ctx) ? partialOutcome(index) : 'complete';
        if (degraded !== 'skipped') fs.writeFile(`${dir}/${FEATURE_FILE}`, featureFile(token));
        if (degraded === 'complete') fs.writeFile(`${dir}/${TARGET_FILE}`, targetFile(token));
        index += 1;
      }
      if (isLogged(i + 1, batches.length)) {
        out(`Batch ${i}: ${seconds.toFixed(2)} s (${batch.length} samples). Avg: ${(seconds / batch.length).toFixed(4)} s/sample`);
        err(tqdmLine('Caching', i + 1, batches.length, (performance.now() - started) / 1000));
      }
    }
    await work.finish();
    out('Caching Complete.');
  });
};

/** Which files a token gets in a partial run: every 3rd lacks its target, every 6th (offset 2) is skipped. */
function partialOutcome(index: number): 'complete' | 'feature-only' | 'skipped' {
  if (index % 3 === 1) return 'feature-only';
  if (index % 6 === 2) return 'skipped';
  return 'complete';
}

/** `import hydra` with hydra-core 1.2 on Python 3.11: dataclasses rejects a mutable default. */
function hydraImportError(scriptPath: string): PythonError {
  const site = '/usr/local/lib/python3.11/site-packages/hydra';
  const frames: Frame[] = [
    { file: scriptPath, line: 9, fn: '<module>', code: 'import hydra' },
    { file: `${site}/__init__.py`, line: 5, fn: '<module>', code: 'from hydra import utils' },
    { file: `${site}/utils.py`, line: 8, fn: '<module>', code: 'import hydra._internal.instantiate._instantiate2' },
    { file: `${site}/_internal/instantiate/_instantiate2.py`, line: 12, fn: '<module>', code: 'from hydra._internal.utils import _locate' },
    { file: `${site}/_internal/utils.py`, line: 18, fn: '<module>', code: 'from hydra.core.utils import get_valid_filename, validate_config_path' },
    { file: `${site}/core/utils.py`, line: 20, fn: '<module>', code: 'from hydra.core.hydra_config import HydraConfig' },
    { file: `${site}/core/hydra_config.py`, line: 6, fn: '<module>', code: 'from hydra.conf import HydraConf' },
    { file: `${site}/conf/__init__.py`, line: 46, fn: '<module>', code: 'class JobConf:' },
    { file: `${site}/conf/__init__.py`, line: 75, fn: 'JobConf', code: '@dataclass' },
    { file: '/usr/local/lib/python3.11/dataclasses.py', line: 1230, fn: 'dataclass', code: 'return wrap(cls)' },
    { file: '/usr/local/lib/python3.11/dataclasses.py', line: 1220, fn: 'wrap', code: 'return _process_class(cls, init, repr, eq, order, unsafe_hash,' },
    { file: '/usr/local/lib/python3.11/dataclasses.py', line: 958, fn: '_process_class', code: 'cls_fields.append(_get_field(cls, name, type, kw_only))' },
    { file: '/usr/local/lib/python3.11/dataclasses.py', line: 815, fn: '_get_field', code: "raise ValueError(f'mutable default {type(f.default)} for field '" },
  ];
  return new PythonError(
    'ValueError',
    "mutable default <class 'hydra.conf.JobConf.JobConfig.OverrideDirname'> for field override_dirname is not allowed: use default_factory",
    frames,
  );
}
