/** An HF model directory as from_pretrained sees it: it must exist and hold config.json. */
import type { ContainerFs } from './container-fs.ts';
import { PythonError } from './errors.ts';

export function requireHfModel(fs: ContainerFs, modelPath: string): void {
  if (!fs.isDir(modelPath)) {
    throw new PythonError(
      'OSError',
      `Incorrect path_or_model_id: '${modelPath}'. Please provide either the path to a local folder or the repo_id of a model on the Hub.`,
    );
  }
  if (!fs.isFile(`${modelPath}/config.json`)) {
    throw new PythonError(
      'OSError',
      `${modelPath} does not appear to have a file named config.json. Checkout 'https://huggingface.co/${modelPath}/tree/None' for available files.`,
    );
  }
}
