/**
 * Bridge 1, run_caching_recogdrive_torchax.py: the frozen VLM's hidden states for every scene of
 * the split, one batch per unit of work. Reads the HF model dir, the split's logs and front-camera
 * blobs; writes `<cache_path>/<log>/<token>/{internvl_feature,trajectory_target}.gz` (no metadata).
 * As upstream: `cache_path` has no default it can use (the script writes wherever it points);
 * a non-empty train_logs REPLACES the scene filter's logs (:250-251); every token is computed and
 * written again on every run (cache_path=None dataset: nothing is skipped); the batch size is made
 * a multiple of the device count; num_workers is forced to 0. The public fork crashes on the
 * first batch of real scenes (collate unpacks 3 values, Dataset returns 2: row 8 of the upstream
 * audit) unless the checkout fixes it (checkout.ts `feature-cache-real-scenes`); its
 * `+is_dummy_run=True` path caches 10 dummy samples of log `dummy_log` with zero images.
 * Runs in the :stage1 image, whose hydra 1.2 fails on Python 3.11 unless pip upgraded it first.
 * partial: a third of the tokens get only internvl_feature.gz, a sixth none; still "Caching Complete.".
 */
import { FEATURE_FILE, featureFile, TARGET_FILE, targetFile } from '../cache-files.ts';
import { readCheckout } from '../checkout.ts';
import { frontCameraPath } from '../dataset.ts';
import { PythonError, type Frame } from '../errors.ts';
import { requireHfModel } from '../hf-model.ts';
import { runHydraScript } from '../hydra-job.ts';
import { jaxDevices, TPU_DEVICES } from '../jax.ts';
import { err, tqdmLine } from '../log.ts';
import { loadScenes, sceneFilterOf, type Scene } from '../scene-loader.ts';
import { hasModernHydra } from '../site-packages.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptMain } from './context.ts';
import { requireRecogDriveAgent, trainingConfig } from './navsim-configs.ts';

const DUMMY_SAMPLES = 10;

export const featureCache: ScriptMain = async (ctx) => {
  if (!hasModernHydra(ctx.controls.stateDir)) throw hydraImportError(ctx.scriptPath);
  const checkout = readCheckout(ctx.fs);
  await runHydraScript(ctx, trainingConfig(), async (job) => {
    const { cfg } = job;
    const { fs } = ctx;
    requireRecogDriveAgent(cfg, 'vlm_path');
    const dummy = cfg.has('is_dummy_run') && cfg.bool('is_dummy_run');
    job.info('Building Agent and Backbone...');
    const vlmPath = cfg.str('agent.vlm_path');
    job.info(`Loading Backbone from ${vlmPath}...`);
    requireHfModel(fs, vlmPath);
    job.info('Forcing Qwen2 _use_sdpa=False for TPU compatibility');
    job.info(`JAX Devices: ${jaxDevices()}`);
    job.info('Sharding model parameters to TPU...');
    job.info('Building Dataset...');

    let scenes: Scene[];
    if (dummy) {
      scenes = Array.from({ length: DUMMY_SAMPLES }, (_, i) => ({ logName: 'dummy_log', token: `token_${i}` }));
    } else {
      const filter = sceneFilterOf(cfg);
      const trainLogs = cfg.list('train_logs');
      // `if cfg.train_logs: scene_filter.log_names = cfg.train_logs` (an empty list keeps the filter's).
      scenes = loadScenes(fs, cfg.str('navsim_log_path'), trainLogs !== undefined && trainLogs.length > 0 ? { ...filter, logNames: trainLogs } : filter);
    }

    let batchSize = cfg.int('dataloader.params.batch_size');
    if (batchSize % TPU_DEVICES !== 0) {
      job.warning(`Batch size ${batchSize} not divisible by ${TPU_DEVICES}. Adjusting...`);
      batchSize = Math.floor(batchSize / TPU_DEVICES) * TPU_DEVICES || TPU_DEVICES;
      job.info(`Adjusted batch size: ${batchSize}`);
    }
    job.info('Forcing num_workers=0 and pin_memory=False for TPU compatibility.');
    job.info(`Starting Inference on ${scenes.length} samples...`);
    const cachePath = fs.absolute(cfg.str('cache_path'));
    fs.mkdirs(cachePath);

    const blobs = cfg.str('sensor_blobs_path');
    const batches = Array.from({ length: Math.ceil(scenes.length / batchSize) }, (_, i) => scenes.slice(i * batchSize, (i + 1) * batchSize));
    const work = new Work(batches.length, ctx.controls, ctx.scriptName);
    const started = performance.now();
    let totalSeconds = 0;
    let count = 0;
    let missingImages = 0;
    let index = 0;
    for (const [i, batch] of batches.entries()) {
      if (!dummy && !checkout.fixes.has('feature-cache-real-scenes')) throw collateUnpackError(ctx.scriptPath);
      // The collate loads each image; a dummy sample (or a missing file) gets zeros, logged for the first 5.
      for (const { logName, token } of batch) {
        const image = dummy ? '' : frontCameraPath(blobs, logName, token);
        if (image === '' || !fs.isFile(image)) {
          missingImages += 1;
          if (missingImages <= 5) job.warning(`Image path not found: ${image === '' ? '' : fs.absolute(image)}, using dummy zeros.`);
        } else fs.readBytes(image);
      }
      if (i === 0) job.info('Compiling JAX inference step... (This may take a few minutes)');
      const seconds = await work.next();
      if (i === 0) job.info('Compilation finished.');
      for (const { logName, token } of batch) {
        const dir = `${cachePath}/${logName}/${token}`;
        const degraded = isPartial(ctx) ? partialOutcome(index) : 'complete';
        if (degraded !== 'skipped') fs.writeFile(`${dir}/${FEATURE_FILE}`, featureFile(token));
        if (degraded === 'complete') fs.writeFile(`${dir}/${TARGET_FILE}`, targetFile(token));
        index += 1;
      }
      totalSeconds += seconds;
      count += batch.length;
      err(tqdmLine('Caching', i + 1, batches.length, (performance.now() - started) / 1000));
      if (i % 10 === 0) {
        job.info(`Batch ${i}: ${seconds.toFixed(2)}s (${batch.length} samples). Avg: ${(totalSeconds / count).toFixed(4)} s/sample`);
      }
    }
    await work.finish();
    job.info('Caching Complete.');
  });
};

/** Which files a token gets in a partial run: every 3rd lacks its target, every 6th (offset 2) is skipped. */
function partialOutcome(index: number): 'complete' | 'feature-only' | 'skipped' {
  if (index % 3 === 1) return 'feature-only';
  if (index % 6 === 2) return 'skipped';
  return 'complete';
}

/** The first batch of real scenes: Dataset.__getitem__ returns (features, targets), the collate unpacks three. */
function collateUnpackError(scriptPath: string): PythonError {
  const torch = '/usr/local/lib/python3.11/site-packages/torch/utils/data';
  const frames: Frame[] = [
    { file: scriptPath, line: 372, fn: '<module>', code: 'main()' },
    { file: scriptPath, line: 309, fn: 'main', code: 'for batch_idx, (model_inputs, meta_data) in enumerate(tqdm(dataloader, desc="Caching")):' },
    { file: `${torch}/dataloader.py`, line: 631, fn: '__next__', code: 'data = self._next_data()' },
    { file: `${torch}/dataloader.py`, line: 675, fn: '_next_data', code: 'data = self._dataset_fetcher.fetch(index)  # may raise StopIteration' },
    { file: `${torch}/_utils/fetch.py`, line: 54, fn: 'fetch', code: 'return self.collate_fn(data)' },
    { file: scriptPath, line: 61, fn: 'collate_fn', code: 'for features, targets, token in batch:' },
  ];
  return new PythonError('ValueError', 'not enough values to unpack (expected 3, got 2)', frames);
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
