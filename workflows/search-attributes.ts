/**
 * Search attributes of a run, so runs are findable by experiment and status in the Web UI,
 * `temporal workflow list --query` and the HTTP API. A Temporal namespace must have them
 * registered: the dev server gets them at start (infra/local/dev-server.ts); a cluster with
 * `temporal operator search-attribute create --name <name> --type Keyword` for each of SEARCH_ATTRIBUTES.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const EXPERIMENT_ATTRIBUTE = defineSearchAttributeKey('RecogdriveExperiment', SearchAttributeType.KEYWORD);
/** running | succeeded | failed | cancelled */
export const STATUS_ATTRIBUTE = defineSearchAttributeKey('RecogdriveStatus', SearchAttributeType.KEYWORD);
/** The run a partial rerun reruns. */
export const RERUN_OF_ATTRIBUTE = defineSearchAttributeKey('RecogdriveRerunOf', SearchAttributeType.KEYWORD);

/** Name and type of each, as `temporal server start-dev --search-attribute Name=Type` and `operator search-attribute create` take them. */
export const SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; type: 'Keyword' }> = [
  { name: EXPERIMENT_ATTRIBUTE.name, type: 'Keyword' },
  { name: STATUS_ATTRIBUTE.name, type: 'Keyword' },
  { name: RERUN_OF_ATTRIBUTE.name, type: 'Keyword' },
];
