/** The issues of a refused pipeline input, for the input validation tests. */
import assert from 'node:assert/strict';
import { InvalidPipelineInput, parsePipelineInput } from '../../pipeline/input.ts';

/** The issues parsePipelineInput lists for a refused input; fails the test when the input is accepted. */
export function inputIssues(raw: unknown): readonly string[] {
  try {
    parsePipelineInput(raw);
  } catch (error) {
    assert.ok(error instanceof InvalidPipelineInput, `expected InvalidPipelineInput, got ${String(error)}`);
    return error.issues;
  }
  assert.fail('input was accepted');
}
