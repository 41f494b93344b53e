/**
 * Stage 1, internvl_chat_finetune_torchax.py: the InternVL finetune, one step per optimizer step.
 * Reads the HF model dir, meta.json and its jsonl annotations and images; writes orbax checkpoints
 * `<out>/checkpoint-<S>.pt/checkpoint_<S>/` and, in a `finally:`, `<out>/final_checkpoint.pt/checkpoint_<N>/`.
 * partial: the final checkpoint is left unfinalized (tmp dir, null commit timestamp), exit 0.
 */
import path from 'node:path';
import { readJsonFile } from '../container-fs.ts';
import { lossAt } from '../curves.ts';
import { fileNotFound, PythonError, SimulatorError } from '../errors.ts';
import { HfArgs } from '../hf-args.ts';
import { requireHfModel } from '../hf-model.ts';
import { hfLogger, type HfLogger } from '../hf-logging.ts';
import { jaxDevices } from '../jax.ts';
import { saveCheckpoint, type CheckpointTree } from '../orbax.ts';
import { Work } from '../work.ts';
import { isPartial, type ScriptContext, type ScriptMain } from './context.ts';

/** Torch parameter names of InternVL3-2B, a handful of each part. */
const TRAINABLE = [
  'mlp1.0.weight',
  'mlp1.0.bias',
  'mlp1.1.weight',
  'mlp1.3.weight',
  'language_model.model.embed_tokens.weight',
  'language_model.model.layers.0.self_attn.q_proj.weight',
  'language_model.model.layers.0.mlp.down_proj.weight',
  'language_model.model.norm.weight',
  'language_model.lm_head.weight',
];
const FROZEN = [
  'vision_model.embeddings.class_embedding',
  'vision_model.embeddings.patch_embedding.weight',
  'vision_model.encoder.layers.0.attn.qkv.weight',
];
/** Intermediate checkpoints are thinned to about this many, whatever save_steps says (scaled-down runs). */
const MAX_INTERMEDIATE_CHECKPOINTS = 3;

interface Sample {
  image: string;
}

export const vlmFinetune: ScriptMain = async (ctx) => {
  const { fs } = ctx;
  const args = HfArgs.parse(ctx.args, fs, ctx.scriptName, ctx.scriptPath);
  const outputArg = args.required('output_dir').trim().replace(/^["']|["']$/g, '').trim();
  // Upstream writes gs:// output straight to GCS through orbax; the simulator has no GCS.
  if (outputArg.startsWith('gs://')) throw new SimulatorError(`--output_dir ${outputArg}: gs:// output is not simulated`);
  const outputDir = fs.absolute(outputArg);
  const log = hfLogger();
  log.info(`DEBUG: output_dir: '${outputDir}'`);
  const modelPath = args.str('model_name_or_path');
  // The llm_path/vision_path route of the upstream script is not implemented in the torchax port.
  if (modelPath === undefined) throw new PythonError('NotImplementedError', '');
  const metaPath = args.str('meta_path');
  if (metaPath === undefined) throw new PythonError('TypeError', 'expected str, bytes or os.PathLike object, not NoneType');
  const batchSize = args.int('per_device_train_batch_size', 8);
  const accumulation = args.int('gradient_accumulation_steps', 1);
  // `for epoch in range(int(training_args.num_train_epochs))`.
  const epochs = Math.trunc(args.float('num_train_epochs', 3));
  const maxSteps = args.int('max_steps', -1);
  const loggingSteps = Math.max(1, Math.trunc(args.float('logging_steps', 500)));
  const saveSteps = Math.trunc(args.float('save_steps', 500));

  log.info(`Loading Tokenizer: ${modelPath}`);
  requireHfModel(fs, modelPath);
  log.info('Loading InternVLChatModel...');
  log.info(`JAX Devices: ${jaxDevices()}`);
  const samples = loadDatasets(ctx, metaPath, log);
  if (samples.length === 0) {
    throw new PythonError('ValueError', 'num_samples should be a positive integer value, but got num_samples=0');
  }
  const tensorboard = args.str('tensorboard_id');
  if (tensorboard !== undefined && tensorboard !== '') {
    log.info(`Initializing Vertex AI TensorBoard with ID: ${tensorboard}`);
    log.warning("Failed to initialize Vertex AI TensorBoard: 403 Permission 'aiplatform.experiments.get' denied on resource '//aiplatform.googleapis.com/projects/grhuang-02/locations/us-east5/metadataStores/default/contexts/internvl-tpu'");
  }
  log.info('Sharding parameters to TPU...');
  log.info('Initializing optimizer state on TPU...');

  // The loader yields ceil(samples / batch) micro-batches per epoch; every `accumulation` of them is
  // one optimizer step (the micro-step counter runs across epochs).
  const microPerEpoch = Math.ceil(samples.length / batchSize);
  const planned = Math.floor((microPerEpoch * epochs) / accumulation);
  const totalSteps = maxSteps > 0 ? Math.min(maxSteps, planned) : planned;
  // Intermediate checkpoints are thinned on scaled-down runs (see README), but never more often than save_steps.
  const saveEvery = saveSteps > 0 ? Math.max(saveSteps, Math.ceil(totalSteps / MAX_INTERMEDIATE_CHECKPOINTS)) : 0;
  const tree = (step: number): CheckpointTree => ({
    params: TRAINABLE,
    staticParams: FROZEN,
    epoch: Math.min(epochs - 1, Math.floor((Math.max(step, 1) * accumulation - 1) / microPerEpoch)),
    globalStep: step,
  });

  log.info('Starting training loop...');
  const work = new Work(Math.max(totalSteps, 1), ctx.controls, ctx.scriptName);
  let step = 0;
  let failure: PythonError | undefined;
  try {
    while (step < totalSteps) {
      const seconds = await work.next();
      for (let k = 0; k < batchSize * accumulation; k += 1) {
        const sample = samples[(step * batchSize * accumulation + k) % samples.length];
        // Images are opened lazily by the dataset, so a missing one fails mid-training.
        if (sample !== undefined && !fs.isFile(sample.image)) throw fileNotFound(fs.absolute(sample.image));
      }
      if (step % loggingSteps === 0) {
        const epoch = Math.floor((step * accumulation) / microPerEpoch);
        log.info(`Epoch: ${epoch}, Step: ${step}, Loss: ${lossAt((step + 1) / totalSteps).toFixed(7)}, Time: ${seconds.toFixed(4)}s`);
      }
      step += 1;
      if (saveEvery > 0 && step % saveEvery === 0 && step < totalSteps) {
        const dir = `${outputDir}/checkpoint-${step}.pt`;
        saveCheckpoint(fs, dir, tree(step), { commit: true });
        log.info(`Saved checkpoint to ${dir}`);
      }
      if (maxSteps > 0 && step >= maxSteps) log.info(`Reached max_steps ${maxSteps}. Stopping training.`);
    }
    await work.finish();
  } catch (error) {
    if (!(error instanceof PythonError)) throw error;
    log.error(`An error occurred during training: ${error.message}`);
    failure = error;
  }

  // The upstream `finally:` block: the final checkpoint is saved even after an error.
  const finalDir = `${outputDir}/final_checkpoint.pt`;
  saveCheckpoint(fs, finalDir, tree(step), { commit: !isPartial(ctx) });
  log.info(`Saved final checkpoint to ${finalDir}`);
  if (failure !== undefined) throw failure;
};

/** Every dataset of meta.json, repeated or subsampled by repeat_time, as InternVL's build_datasets does. */
function loadDatasets(ctx: ScriptContext, metaPath: string, log: HfLogger): Sample[] {
  const { fs } = ctx;
  const meta = readJsonFile(fs, metaPath) as Record<string, { root?: string; annotation?: string; repeat_time?: number }>;
  const samples: Sample[] = [];
  for (const [name, dataset] of Object.entries(meta)) {
    if (dataset.annotation === undefined || dataset.root === undefined) throw new PythonError('KeyError', `'annotation'`);
    const lines = fs
      .readText(dataset.annotation)
      .split('\n')
      .filter((line) => line.trim() !== '');
    const images = lines.map((line) => {
      try {
        return String((JSON.parse(line) as { image?: unknown }).image ?? '');
      } catch (error) {
        throw new PythonError('json.decoder.JSONDecodeError', (error as Error).message);
      }
    });
    const repeat = dataset.repeat_time ?? 1;
    const used = repeat < 1 ? images.slice(0, Math.floor(images.length * repeat)) : Array.from({ length: repeat }, () => images).flat();
    log.info(`Add dataset: ${name} with length: ${used.length}`);
    for (const image of used) samples.push({ image: path.posix.join(dataset.root, image) });
  }
  return samples;
}


