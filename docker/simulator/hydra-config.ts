/**
 * Hydra 1.3.2 / OmegaConf 2.3.0 as the navsim scripts meet them, composed from the generated
 * upstream data (upstream/hydra-configs.ts, upstream/log-splits.ts) so the simulator refuses what
 * upstream refuses, with upstream's wording:
 *
 * - the command line: hydra's override grammar (`key=value`, `+key=value` appends, `++key=value`
 *   forces, `~key[=value]` deletes, `group=option` chooses a config group option; values: quoted
 *   strings, `[lists]`, ints, floats, True/False, null, `${...}` interpolations, `\,`-style escapes),
 *   refusing sweeps and malformed overrides like hydra;
 * - the defaults list: the primary's groups (after its `override` entries) and their nested groups
 *   (train_test_split -> scene_filter), checked in hydra's order (defaults lists are walked in
 *   reverse, depth first): `???` groups, unknown options, unused or duplicate group overrides;
 * - the composed config in struct mode: an override of a key no option or primary file has fails
 *   naming the first missing path component (OmegaConf.update), `+` on an existing non-null key
 *   fails, a list merged into a dict fails;
 * - interpolations resolved when read: `${a.b}` (absolute or relative), `${oc.env:NAME[,default]}`,
 *   `${now:...}` (cached per pattern, like hydra's use_cache=True resolver); config.yaml keeps them
 *   as text.
 *
 * Failures before the job starts are HydraFailure (a PythonError) carrying the frames hydra and
 * OmegaConf would print, rendered by hydra-job.ts with or without HYDRA_FULL_ERROR. Reading the
 * composed config (HydraConfig.get & co.) fails like attribute access on a DictConfig.
 *
 * Not simulated (a SimulatorError, never silent acceptance): `hydra.*` / `hydra/...` overrides,
 * `@package` keys, dict values, list-index keys (`train_logs.0=`), grammar functions other than the
 * sweeps, config group option lists, resolvers other than oc.env and now. The ANTLR wording of
 * malformed overrides is exact for the common cases (no `=`, a character no token starts with, `=`
 * or an unclosed `[` in a value, adjacent quoted strings) and approximated otherwise. Key order in
 * config.yaml follows the data (sorted per file), not the yaml files.
 */
import { PythonError, SimulatorError, pyRepr } from './errors.ts';
import { pyFloatRepr } from './log.ts';
import { GROUP_OPTIONS, PRIMARY_CONFIGS, type DefaultValue, type GroupPath, type PrimaryConfig, type PrimaryName } from './upstream/hydra-configs.ts';
import { SCENE_FILTERS, TEST_LOGS, TRAIN_LOGS, VAL_LOGS, type NameList } from './upstream/log-splits.ts';

// ---- public types -------------------------------------------------------------------------

export type HydraValue = string | number | boolean | null | HydraValue[];

/** OmegaConf's `???`: a value that must be given (in ConfigSchema.values). */
export const MISSING = Symbol('???');

/** A `${...}` value as written (config.yaml keeps it unresolved). */
export interface Interpolation {
  text: string;
}

type Entry = HydraValue | typeof MISSING | Interpolation;

export interface ConfigSchema {
  /** The upstream primary config the script's @hydra.main names (upstream/hydra-configs.ts). */
  primary: PrimaryName;
  /** The primary config's name, as hydra's messages cite it (e.g. default_training). */
  name: string;
  /**
   * Simulator deviations set on the composed defaults before the command line is applied (e.g. a
   * key made mandatory with MISSING). Keys may be new. Use sparingly: each one is a difference
   * from upstream.
   */
  values?: Readonly<Record<string, Entry>>;
}

// ---- the config tree ------------------------------------------------------------------------

type Scalar = string | number | boolean | null;

/** An OmegaConf node. `float` marks a Python float (so 1.0 prints as 1.0). */
type CfgNode =
  | { t: 'value'; v: Scalar; float: boolean }
  | { t: 'interp'; text: string }
  | { t: 'missing' }
  | { t: 'list'; items: CfgNode[] }
  /** A list of which only a SAMPLE is known (upstream data): `count` items upstream. */
  | { t: 'long'; count: number; sample: readonly Scalar[]; source: string }
  | { t: 'dict'; map: Map<string, CfgNode> };
type DictNode = Extract<CfgNode, { t: 'dict' }>;

const dict = (): DictNode => ({ t: 'dict', map: new Map() });
const scalar = (v: Scalar, float = false): CfgNode => (typeof v === 'string' && v.includes('${') ? { t: 'interp', text: v } : { t: 'value', v, float });

/** Curated samples (log-splits.ts) by the `source` a LongList names: bigger than the 8 items hydra-configs.ts carries. */
const CURATED_SAMPLES: ReadonlyMap<string, NameList> = new Map(
  [TRAIN_LOGS, VAL_LOGS, TEST_LOGS, ...Object.values(SCENE_FILTERS).flatMap((f) => [f.logNames, f.tokens])]
    .filter((list): list is NameList => list !== null)
    .map((list) => [list.source, list]),
);

function fromDefault(value: DefaultValue, float: boolean): CfgNode {
  if (value === null || typeof value !== 'object') return scalar(value, float && typeof value === 'number');
  if (Array.isArray(value)) return { t: 'list', items: (value as readonly DefaultValue[]).map((item) => fromDefault(item, false)) };
  const special = value as Exclude<DefaultValue, Scalar | readonly unknown[]>;
  switch (special.kind) {
    case 'interpolation':
      return { t: 'interp', text: special.text };
    case 'mandatory':
      return { t: 'missing' };
    case 'empty-dict':
      return dict();
    case 'long-list': {
      const curated = CURATED_SAMPLES.get(special.source);
      return { t: 'long', count: special.count, sample: curated?.sample ?? special.sample, source: special.source };
    }
  }
}

function fromEntry(entry: Entry): CfgNode {
  if (entry === MISSING) return { t: 'missing' };
  if (Array.isArray(entry)) return { t: 'list', items: entry.map(fromEntry) };
  if (typeof entry === 'object' && entry !== null) return { t: 'interp', text: (entry as Interpolation).text };
  return scalar(entry as Scalar, typeof entry === 'number' && !Number.isInteger(entry));
}

function cloneNode(node: CfgNode): CfgNode {
  if (node.t === 'dict') return { t: 'dict', map: new Map([...node.map].map(([k, v]) => [k, cloneNode(v)])) };
  if (node.t === 'list') return { t: 'list', items: node.items.map(cloneNode) };
  return node;
}

/** Sets `path` under `root`, creating (or replacing non-dict nodes by) dicts on the way. */
function setPath(root: DictNode, path: readonly string[], node: CfgNode): void {
  let current = root;
  for (const part of path.slice(0, -1)) {
    const child = current.map.get(part);
    if (child?.t === 'dict') current = child;
    else {
      const created = dict();
      current.map.set(part, created);
      current = created;
    }
  }
  const last = path.at(-1);
  if (last !== undefined) current.map.set(last, node);
}

function lookup(root: CfgNode, path: readonly string[]): CfgNode | undefined {
  let current: CfgNode | undefined = root;
  for (const part of path) {
    if (current?.t !== 'dict') return undefined;
    current = current.map.get(part);
  }
  return current;
}

// ---- Python text -----------------------------------------------------------------------------

/** Python's type() name of a node's value, as attribute errors and ValueErrors print it. */
function pyTypeName(node: CfgNode): string {
  if (node.t === 'dict') return 'DictConfig';
  if (node.t === 'list' || node.t === 'long') return 'ListConfig';
  if (node.t !== 'value') return 'str';
  const { v, float } = node;
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return float || !Number.isInteger(v) ? 'float' : 'int';
  return 'str';
}

function scalarStr(v: Scalar, float: boolean): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return float || !Number.isInteger(v) ? pyFloatRepr(v) : String(v);
  return v;
}

/** str() of a node's value as Python prints it (containers: repr of their content, interpolations unresolved). */
function nodeStr(node: CfgNode): string {
  switch (node.t) {
    case 'value':
      return scalarStr(node.v, node.float);
    case 'interp':
      return node.text;
    case 'missing':
      return '???';
    case 'list':
      return `[${node.items.map(nodeRepr).join(', ')}]`;
    case 'long':
      return `[${node.sample.map((v) => (typeof v === 'string' ? pyRepr(v) : scalarStr(v, false))).join(', ')}, ...]`;
    case 'dict':
      return `{${[...node.map].map(([k, v]) => `${pyRepr(k)}: ${nodeRepr(v)}`).join(', ')}}`;
  }
}

function nodeRepr(node: CfgNode): string {
  if ((node.t === 'value' && typeof node.v === 'string') || node.t === 'interp' || node.t === 'missing') return pyRepr(nodeStr(node));
  return nodeStr(node);
}

/** Python == between a parsed override value and a config value (`~key=value`): 1 == 1.0 == True, '1' != 1. */
function pyEquals(a: CfgNode, b: CfgNode): boolean {
  if (a.t === 'value' && b.t === 'value') {
    if (typeof a.v === 'string' || typeof b.v === 'string' || a.v === null || b.v === null) return a.v === b.v;
    return Number(a.v) === Number(b.v);
  }
  if (a.t === 'list' && b.t === 'list') return a.items.length === b.items.length && a.items.every((item, i) => { const other = b.items[i]; return other !== undefined && pyEquals(item, other); });
  return a.t === b.t && nodeStr(a) === nodeStr(b);
}

// ---- failures and the frames Python prints for them -------------------------------------------

/**
 * Source lines of the hydra-core 1.3.2 / omegaconf 2.3.0 / antlr4 frames the simulated tracebacks
 * show (key: path under site-packages and line; value: function, code, Python 3.11 caret line),
 * copied from tracebacks of the real libraries.
 */
export const LIBRARY_FRAMES: Readonly<Record<string, readonly [fn: string, code: string, carets?: string]>> = {
  "antlr4/tree/Tree.py:34": ["visit", "return tree.accept(self)", "       ^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/config_loader_impl.py:142": ["load_configuration", "return self._load_configuration_impl(", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/config_loader_impl.py:228": ["_parse_overrides_and_create_caching_repo", "parsed_overrides = parser.parse_overrides(overrides=overrides)", "                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/config_loader_impl.py:244": ["_load_configuration_impl", "parsed_overrides, caching_repo = self._parse_overrides_and_create_caching_repo(", "                                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/config_loader_impl.py:249": ["_load_configuration_impl", "self.validate_sweep_overrides_legal("],
  "hydra/_internal/config_loader_impl.py:253": ["_load_configuration_impl", "defaults_list = create_defaults_list(", "                ^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/config_loader_impl.py:276": ["_load_configuration_impl", "ConfigLoaderImpl._apply_overrides_to_config(config_overrides, cfg)"],
  "hydra/_internal/config_loader_impl.py:349": ["_apply_overrides_to_config", "config_val = OmegaConf.select(cfg, key, throw_on_missing=False)", "             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/config_loader_impl.py:351": ["_apply_overrides_to_config", "raise ConfigCompositionException("],
  "hydra/_internal/config_loader_impl.py:356": ["_apply_overrides_to_config", "raise ConfigCompositionException("],
  "hydra/_internal/config_loader_impl.py:371": ["_apply_overrides_to_config", "if OmegaConf.select(", "   ^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/config_loader_impl.py:377": ["_apply_overrides_to_config", "raise ConfigCompositionException("],
  "hydra/_internal/config_loader_impl.py:390": ["_apply_overrides_to_config", "OmegaConf.update(cfg, key, value, merge=True)"],
  "hydra/_internal/config_loader_impl.py:392": ["_apply_overrides_to_config", "raise ConfigCompositionException("],
  "hydra/_internal/config_loader_impl.py:397": ["_apply_overrides_to_config", "raise ConfigCompositionException("],
  "hydra/_internal/config_loader_impl.py:79": ["validate_sweep_overrides_legal", "raise ConfigCompositionException(msg)"],
  "hydra/_internal/config_loader_impl.py:81": ["validate_sweep_overrides_legal", "raise ConfigCompositionException("],
  "hydra/_internal/defaults_list.py:168": ["ensure_overrides_used", "raise ConfigCompositionException(msg)"],
  "hydra/_internal/defaults_list.py:175": ["ensure_deletions_used", "raise ConfigCompositionException(msg)"],
  "hydra/_internal/defaults_list.py:185": ["set_known_choice", "raise ConfigCompositionException("],
  "hydra/_internal/defaults_list.py:280": ["_expand_virtual_root", "subtree = _create_defaults_tree_impl(", "          ^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:322": ["_check_not_missing", "raise ConfigCompositionException(msg + opt_list)"],
  "hydra/_internal/defaults_list.py:356": ["_create_defaults_tree", "ret = _create_defaults_tree_impl(", "      ^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:457": ["_create_defaults_tree_impl", "return _expand_virtual_root(repo, root, overrides, skip_missing)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:472": ["_create_defaults_tree_impl", "overrides.set_known_choice(parent)"],
  "hydra/_internal/defaults_list.py:477": ["_create_defaults_tree_impl", "if _check_not_missing(repo=repo, default=parent, skip_missing=skip_missing):", "   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:488": ["_create_defaults_tree_impl", "config_not_found_error(repo=repo, tree=root)"],
  "hydra/_internal/defaults_list.py:520": ["add_child", "subtree_ = _create_defaults_tree_impl(", "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:573": ["_create_defaults_tree_impl", "add_child(children, new_root)"],
  "hydra/_internal/defaults_list.py:715": ["_create_defaults_list", "defaults_tree = _create_defaults_tree(", "                ^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:744": ["create_defaults_list", "overrides = Overrides(repo=repo, overrides_list=overrides_list)", "            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:745": ["create_defaults_list", "defaults, tree = _create_defaults_list(", "                 ^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/defaults_list.py:752": ["create_defaults_list", "overrides.ensure_overrides_used()"],
  "hydra/_internal/defaults_list.py:753": ["create_defaults_list", "overrides.ensure_deletions_used()"],
  "hydra/_internal/defaults_list.py:799": ["config_not_found_error", "raise MissingConfigException("],
  "hydra/_internal/defaults_list.py:81": ["__init__", "raise ConfigCompositionException("],
  "hydra/_internal/defaults_list.py:95": ["__init__", "raise ValueError("],
  "hydra/_internal/hydra.py:105": ["run", "cfg = self.compose_config(", "      ^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/hydra.py:119": ["run", "ret = run_job(", "      ^^^^^^^^"],
  "hydra/_internal/hydra.py:132": ["run", "_ = ret.return_value", "    ^^^^^^^^^^^^^^^^"],
  "hydra/_internal/hydra.py:594": ["compose_config", "cfg = self.config_loader.load_configuration(", "      ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/_internal/utils.py:220": ["run_and_report", "return func()", "       ^^^^^^"],
  "hydra/_internal/utils.py:223": ["run_and_report", "raise ex"],
  "hydra/_internal/utils.py:302": ["run_and_report", "raise ex"],
  "hydra/_internal/utils.py:394": ["_run_hydra", "_run_app("],
  "hydra/_internal/utils.py:457": ["_run_app", "run_and_report("],
  "hydra/_internal/utils.py:458": ["<lambda>", "lambda: hydra.run(", "        ^^^^^^^^^^"],
  "hydra/core/override_parser/overrides_parser.py:96": ["parse_overrides", "raise OverrideParseException("],
  "hydra/core/utils.py:116": ["run_job", "output_dir = str(OmegaConf.select(config, job_dir_key))", "                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/core/utils.py:186": ["run_job", "ret.return_value = task_function(task_cfg)", "                   ^^^^^^^^^^^^^^^^^^^^^^^"],
  "hydra/core/utils.py:260": ["return_value", "raise self._return_value"],
  "hydra/main.py:94": ["decorated_main", "_run_hydra("],
  "omegaconf/_impl.py:58": ["select_value", "node = select_node(", "       ^^^^^^^^^^^^"],
  "omegaconf/_impl.py:93": ["select_node", "_root, _last_key, node = cfg._select_impl(", "                         ^^^^^^^^^^^^^^^^^"],
  "omegaconf/_utils.py:797": ["_raise", "raise ex.with_traceback(sys.exc_info()[2])  # set env var OC_CAUSE=1 for full trace", "^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/_utils.py:819": ["format_and_raise", "_raise(ex, cause)"],
  "omegaconf/_utils.py:899": ["format_and_raise", "_raise(ex, cause)"],
  "omegaconf/base.py:231": ["_format_and_raise", "format_and_raise("],
  "omegaconf/base.py:514": ["_select_impl", "value, _ = _select_one(", "           ^^^^^^^^^^^^"],
  "omegaconf/base.py:531": ["_select_impl", "value = root._maybe_resolve_interpolation(", "        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/base.py:584": ["_resolve_interpolation_from_parse_tree", "resolved = self.resolve_parse_tree(", "           ^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/base.py:664": ["_resolve_node_interpolation", "parent, last_key, value = root_node._select_impl(", "                          ^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/base.py:671": ["_resolve_node_interpolation", "raise InterpolationToMissingValueError("],
  "omegaconf/base.py:676": ["_resolve_node_interpolation", "raise InterpolationKeyError(f\"Interpolation key '{inter_key}' not found\")"],
  "omegaconf/base.py:694": ["_evaluate_custom_resolver", "return resolver(", "       ^^^^^^^^^"],
  "omegaconf/base.py:719": ["_maybe_resolve_interpolation", "return self._resolve_interpolation_from_parse_tree(", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/base.py:745": ["node_interpolation_callback", "return self._resolve_node_interpolation(inter_key=inter_key, memo=memo)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/base.py:750": ["resolver_interpolation_callback", "return self._evaluate_custom_resolver(", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/base.py:764": ["resolve_parse_tree", "return visitor.visit(parse_tree)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/base.py:769": ["resolve_parse_tree", "raise InterpolationResolutionError("],
  "omegaconf/basecontainer.py:490": ["merge_with", "self._merge_with(*others)"],
  "omegaconf/basecontainer.py:492": ["merge_with", "self._format_and_raise(key=None, value=None, cause=e)"],
  "omegaconf/basecontainer.py:518": ["_merge_with", "raise TypeError(\"Cannot merge DictConfig with ListConfig\")"],
  "omegaconf/basecontainer.py:549": ["_set_item_impl", "self._validate_set(key, value)"],
  "omegaconf/dictconfig.py:164": ["_validate_get", "self._format_and_raise("],
  "omegaconf/dictconfig.py:180": ["_validate_set", "target = self._get_node(key) if key is not None else self", "         ^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/dictconfig.py:308": ["__setitem__", "self.__set_impl(key=key, value=value)"],
  "omegaconf/dictconfig.py:310": ["__setitem__", "self._format_and_raise("],
  "omegaconf/dictconfig.py:318": ["__set_impl", "self._set_item_impl(key, value)"],
  "omegaconf/dictconfig.py:334": ["__setattr__", "self.__set_impl(key, value)"],
  "omegaconf/dictconfig.py:337": ["__setattr__", "raise e"],
  "omegaconf/dictconfig.py:475": ["_get_node", "self._validate_get(key)"],
  "omegaconf/grammar/gen/OmegaConfGrammarParser.py:1041": ["accept", "return visitor.visitInterpolationResolver(self)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar/gen/OmegaConfGrammarParser.py:206": ["accept", "return visitor.visitConfigValue(self)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar/gen/OmegaConfGrammarParser.py:342": ["accept", "return visitor.visitText(self)", "       ^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar/gen/OmegaConfGrammarParser.py:921": ["accept", "return visitor.visitInterpolationNode(self)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar_visitor.py:101": ["visitConfigValue", "return self.visit(ctx.getChild(0))", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar_visitor.py:125": ["visitInterpolation", "return self.visit(ctx.getChild(0))", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar_visitor.py:158": ["visitInterpolationNode", "return self.node_interpolation_callback(inter_key, self.memo)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar_visitor.py:179": ["visitInterpolationResolver", "return self.resolver_interpolation_callback(", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar_visitor.py:298": ["visitText", "return self.visitInterpolation(c)", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar_visitor.py:301": ["visitText", "return self._unescape(list(ctx.getChildren()))", "       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/grammar_visitor.py:389": ["_unescape", "text = str(self.visitInterpolation(node))", "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/omegaconf.py:1150": ["_select_one", "raise MissingMandatoryValue("],
  "omegaconf/omegaconf.py:445": ["resolver_wrapper", "ret = resolver(*args, **kwargs)", "      ^^^^^^^^^^^^^^^^^^^^^^^^^"],
  "omegaconf/omegaconf.py:674": ["select", "return select_value(", "       ^^^^^^^^^^^^^"],
  "omegaconf/omegaconf.py:682": ["select", "format_and_raise(node=cfg, key=key, value=None, cause=e, msg=str(e))"],
  "omegaconf/omegaconf.py:716": ["update", "root[key_] = {}", "~~~~^^^^^^"],
  "omegaconf/omegaconf.py:736": ["update", "node.merge_with(value)"],
  "omegaconf/omegaconf.py:741": ["update", "root.__setattr__(last_key, value)"],
  "omegaconf/resolvers/oc/__init__.py:38": ["env", "raise KeyError(f\"Environment variable '{key}' not found\")"],
};

/** A Python exception with its traceback frames (LIBRARY_FRAMES keys). */
export interface PyTrace {
  type: string;
  message: string;
  frames: readonly string[];
}

/**
 * Hydra failing before the task runs. `kind` decides how hydra's run_and_report prints it:
 * - compact: a CompactHydraException: `str(ex)` (and `str(ex.__cause__)` for an OmegaConf cause),
 *   then the HYDRA_FULL_ERROR hint; with HYDRA_FULL_ERROR=1 the chained traceback;
 * - plain: any other exception before run_job: traceback.print_exc() from run_and_report, exit 1;
 * - run-dir: resolving hydra.run.dir in run_job failed: hydra's own formatting trips
 *   ("An error occurred during Hydra's exception formatting: AssertionError()") and re-raises.
 * `hydraFrames` follow hydra's `<lambda>` frame (utils.py:458).
 */
export class HydraFailure extends PythonError {
  readonly kind: 'compact' | 'plain' | 'run-dir';
  readonly hydraFrames: readonly string[];
  /** The exception this one was raised `from` (Python's __cause__). */
  readonly chained: PyTrace | undefined;

  constructor(kind: HydraFailure['kind'], type: string, message: string, hydraFrames: readonly string[], chained?: PyTrace) {
    super(type, message);
    this.kind = kind;
    this.hydraFrames = hydraFrames;
    this.chained = chained;
  }
}

/**
 * An OmegaConf error while resolving `fullKey` through interpolations: the chain of levels it went
 * through (each level: whether the text was one interpolation, `${x}`, or text around them).
 */
class ResolutionError extends PythonError {
  readonly levels: readonly { single: boolean }[];
  readonly end: 'missing' | 'key' | 'env';
  /** The LIBRARY_FRAMES key of the hydra line that called OmegaConf.select(), if any. */
  readonly callerFrame: string | undefined;

  constructor(type: string, message: string, fullKey: string, levels: readonly { single: boolean }[], end: ResolutionError['end'], callerFrame?: string) {
    super(type, `${message}\n    full_key: ${fullKey}\n    object_type=dict`);
    this.levels = levels;
    this.end = end;
    this.callerFrame = callerFrame !== undefined && callerFrame in LIBRARY_FRAMES ? callerFrame : undefined;
  }

  /** The caller's frame, OmegaConf.select()'s, then the interpolation levels'. */
  get selectFrames(): string[] {
    return [...(this.callerFrame === undefined ? [] : [this.callerFrame]), ...SELECT_FRAMES, ...this.libraryFrames()];
  }

  /** The frames below OmegaConf.select(), one block per interpolation level (omegaconf base.py / grammar_visitor.py). */
  libraryFrames(): string[] {
    const frames: string[] = [];
    this.levels.forEach((level, i) => {
      const innermost = i === this.levels.length - 1;
      frames.push('omegaconf/base.py:531', 'omegaconf/base.py:719', 'omegaconf/base.py:584');
      if (innermost && this.end === 'env') frames.push('omegaconf/base.py:769');
      frames.push('omegaconf/base.py:764', 'antlr4/tree/Tree.py:34', 'omegaconf/grammar/gen/OmegaConfGrammarParser.py:206', 'omegaconf/grammar_visitor.py:101');
      frames.push('antlr4/tree/Tree.py:34', 'omegaconf/grammar/gen/OmegaConfGrammarParser.py:342');
      frames.push(...(level.single ? ['omegaconf/grammar_visitor.py:298'] : ['omegaconf/grammar_visitor.py:301', 'omegaconf/grammar_visitor.py:389']));
      frames.push('omegaconf/grammar_visitor.py:125', 'antlr4/tree/Tree.py:34');
      if (innermost && this.end === 'env') {
        frames.push('omegaconf/grammar/gen/OmegaConfGrammarParser.py:1041', 'omegaconf/grammar_visitor.py:179', 'omegaconf/base.py:750');
        frames.push('omegaconf/base.py:694', 'omegaconf/omegaconf.py:445', 'omegaconf/resolvers/oc/__init__.py:38');
        return;
      }
      frames.push('omegaconf/grammar/gen/OmegaConfGrammarParser.py:921', 'omegaconf/grammar_visitor.py:158', 'omegaconf/base.py:745');
      if (!innermost) frames.push('omegaconf/base.py:664');
      else if (this.end === 'missing') frames.push('omegaconf/base.py:671', 'omegaconf/base.py:664', 'omegaconf/base.py:514', 'omegaconf/omegaconf.py:1150');
      else frames.push('omegaconf/base.py:676');
    });
    return frames;
  }
}

/** OmegaConf.select(cfg, key): the frames down to the first interpolation level (omegaconf.py, _impl.py). */
const SELECT_FRAMES = ['omegaconf/omegaconf.py:682', 'omegaconf/_utils.py:899', 'omegaconf/_utils.py:797', 'omegaconf/omegaconf.py:674', 'omegaconf/_impl.py:58', 'omegaconf/_impl.py:93'];
const LOAD = ['hydra/_internal/hydra.py:105', 'hydra/_internal/hydra.py:594', 'hydra/_internal/config_loader_impl.py:142'];
const PARSE = [...LOAD, 'hydra/_internal/config_loader_impl.py:244', 'hydra/_internal/config_loader_impl.py:228', 'hydra/core/override_parser/overrides_parser.py:96'];
const SWEEP = [...LOAD, 'hydra/_internal/config_loader_impl.py:249'];
const OVERRIDES_INIT = [...LOAD, 'hydra/_internal/config_loader_impl.py:253', 'hydra/_internal/defaults_list.py:744'];
const APPLY = [...LOAD, 'hydra/_internal/config_loader_impl.py:276'];
/** defaults_list.py down to the config `depth` levels below the primary (primary = 1). */
const treeFrames = (depth: number): string[] => [
  ...LOAD,
  'hydra/_internal/config_loader_impl.py:253',
  'hydra/_internal/defaults_list.py:745',
  'hydra/_internal/defaults_list.py:715',
  'hydra/_internal/defaults_list.py:356',
  'hydra/_internal/defaults_list.py:457',
  'hydra/_internal/defaults_list.py:280',
  ...Array.from({ length: depth }, () => ['hydra/_internal/defaults_list.py:573', 'hydra/_internal/defaults_list.py:520']).flat(),
];
/** The omegaconf frames of OmegaConf.update failing on a missing intermediate key (root[key_] = {}) or the last one (__setattr__). */
const UPDATE_INTERMEDIATE = [
  'hydra/_internal/config_loader_impl.py:390', 'omegaconf/omegaconf.py:716', 'omegaconf/dictconfig.py:310', 'omegaconf/base.py:231',
  'omegaconf/_utils.py:819', 'omegaconf/_utils.py:797', 'omegaconf/dictconfig.py:308', 'omegaconf/dictconfig.py:318',
  'omegaconf/basecontainer.py:549', 'omegaconf/dictconfig.py:180', 'omegaconf/dictconfig.py:475', 'omegaconf/dictconfig.py:164',
  'omegaconf/base.py:231', 'omegaconf/_utils.py:899', 'omegaconf/_utils.py:797',
];
const UPDATE_LAST = [
  'hydra/_internal/config_loader_impl.py:390', 'omegaconf/omegaconf.py:741', 'omegaconf/dictconfig.py:337', 'omegaconf/dictconfig.py:334',
  'omegaconf/dictconfig.py:318', 'omegaconf/basecontainer.py:549', 'omegaconf/dictconfig.py:180', 'omegaconf/dictconfig.py:475',
  'omegaconf/dictconfig.py:164', 'omegaconf/base.py:231', 'omegaconf/_utils.py:899', 'omegaconf/_utils.py:797',
];
const MERGE_LIST_INTO_DICT = [
  'hydra/_internal/config_loader_impl.py:390', 'omegaconf/omegaconf.py:736', 'omegaconf/basecontainer.py:492', 'omegaconf/base.py:231',
  'omegaconf/_utils.py:899', 'omegaconf/_utils.py:797', 'omegaconf/basecontainer.py:490', 'omegaconf/basecontainer.py:518',
];

const compact = (type: string, message: string, frames: readonly string[], cause?: PyTrace) =>
  new HydraFailure('compact', `hydra.errors.${type}`, message, frames, cause);
const OVERRIDE_GRAMMAR_HELP = 'See https://hydra.cc/docs/1.2/advanced/override_grammar/basic for details';

// ---- the override grammar (hydra/grammar/OverrideLexer.g4, OverrideParser.g4) ------------------

/** A parsed override value (hydra's Override.value()). */
type OValue = Extract<CfgNode, { t: 'value' } | { t: 'interp' }> | { t: 'list'; items: OValue[] };

interface Override {
  /** As given on the command line (hydra's input_line). */
  input: string;
  op: 'set' | 'append' | 'force' | 'delete';
  /** key_or_group: dotted key or group path (`train_test_split/scene_filter`). */
  key: string;
  /** Undefined for `~key` without a value. */
  value: OValue | undefined;
  /** `a,b` (choice sweep) or choice()/range()/interval()/glob(). */
  sweep?: 'simple' | 'function';
}

const KEY_CHAR = /[A-Za-z0-9_\-./@]/;
const VALUE_CHAR = /[A-Za-z0-9_/\-\\+.$%*@?|: \t,[\]{}()='"]/;
const SWEEP_FUNCTIONS = new Set(['choice', 'range', 'interval', 'glob']);
const INT = /^[+-]?(0|[1-9](_?[0-9])*)$/;
const DIGITS = '[0-9](_?[0-9])*';
const FLOAT = new RegExp(`^[+-]?((${DIGITS})?\\.${DIGITS}|${DIGITS}\\.|((${DIGITS})?\\.${DIGITS}|${DIGITS}\\.|${DIGITS})[eE][+-]?${DIGITS}|[Ii][Nn][Ff]|[Nn][Aa][Nn])$`);

function parseFailure(input: string, message: string, prefixed = false): HydraFailure {
  return compact('OverrideParseException', `${prefixed ? `Error parsing override '${input}'\n` : ''}${message}\n${OVERRIDE_GRAMMAR_HELP}`, PARSE);
}

/** The lexer found no token at `index` (hydra prints the override with a caret under it). */
function lexerFailure(input: string, index: number): HydraFailure {
  const prefix = 'LexerNoViableAltException: ';
  return parseFailure(input, `${prefix}${input}\n${'^'.padStart(prefix.length + index + 1)}`);
}

/** Hydra's override parser, for the subset described at the top of this file. */
function parseOverrideLine(input: string): Override {
  let start = 0;
  let op: Override['op'] = 'set';
  if (input.startsWith('~')) [op, start] = ['delete', 1];
  else if (input.startsWith('++')) [op, start] = ['force', 2];
  else if (input.startsWith('+')) [op, start] = ['append', 1];
  const eq = input.indexOf('=', start);
  const keyEnd = eq < 0 ? input.length : eq;
  for (let i = start; i < keyEnd; i += 1) if (!KEY_CHAR.test(input[i] ?? '')) throw lexerFailure(input, i);
  const key = input.slice(start, keyEnd);
  if (key === '' && eq >= 0) throw new SimulatorError(`hydra override ${input}: an empty key is not simulated`);
  if (eq < 0 && op !== 'delete') throw parseFailure(input, key === '' ? "mismatched input '<EOF>' expecting {EQUAL, '~', '+', '@', ':', '/', ID, DOT_PATH}" : "missing EQUAL at '<EOF>'", true);
  const dotted = /^([A-Za-z_][\w-]*|[0-9]+)(\.([A-Za-z_][\w-]*|[0-9]+))*$/;
  const group = /^[A-Za-z_][\w-]*(\/[A-Za-z_][\w-]*)+$/;
  const [path = '', pkg] = key.split('@', 2);
  if (!(dotted.test(path) || group.test(path)) || key.split('@').length > 2) {
    throw parseFailure(input, `no viable alternative at input '${input.slice(0, keyEnd)}'`);
  }
  if (pkg !== undefined) throw new SimulatorError(`hydra override ${input}: @package keys are not simulated`);
  if (eq < 0) return { input, op, key, value: undefined };
  const parser = new ValueParser(input, eq + 1);
  return { input, op, key, ...parser.parseTop() };
}

class ValueParser {
  readonly #input: string;
  #pos: number;

  constructor(input: string, start: number) {
    this.#input = input;
    this.#pos = start;
    this.#lex(start);
  }

  /** The lexer pass: characters no VALUE_MODE token starts with (outside quotes and `${...}`). */
  #lex(start: number): void {
    const text = this.#input;
    for (let i = start; i < text.length; i += 1) {
      const c = text[i] ?? '';
      if (c === "'" || c === '"') {
        const close = this.#closingQuote(i);
        if (close < 0) throw lexerFailure(text, i);
        i = close;
      } else if (c === '$' && text[i + 1] === '{') {
        const close = closingBrace(text, i + 1);
        if (close < 0) throw lexerFailure(text, i);
        i = close;
      } else if (c === '\\') i += 1;
      else if (!VALUE_CHAR.test(c)) throw lexerFailure(text, i);
    }
  }

  #closingQuote(open: number): number {
    const quote = this.#input[open];
    for (let i = open + 1; i < this.#input.length; i += 1) {
      if (this.#input[i] === '\\') i += 1;
      else if (this.#input[i] === quote) return i;
    }
    return -1;
  }

  parseTop(): { value: OValue; sweep?: 'simple' | 'function' } {
    const first = this.#element(true);
    const elements = [first.value];
    let sweep: 'simple' | 'function' | undefined = first.sweep;
    while (this.#peek() === ',') {
      this.#pos += 1;
      elements.push(this.#element(true).value);
      sweep = 'simple';
    }
    if (this.#pos < this.#input.length) this.#unexpected();
    return sweep === undefined ? { value: first.value } : { value: first.value, sweep };
  }

  #peek(): string | undefined {
    while (this.#input[this.#pos] === ' ' || this.#input[this.#pos] === '\t') this.#pos += 1;
    return this.#input[this.#pos];
  }

  #unexpected(): never {
    const c = this.#input[this.#pos] ?? '<EOF>';
    throw parseFailure(this.#input, `mismatched input '${c}' expecting <EOF>`);
  }

  #element(top: boolean): { value: OValue; sweep?: 'function' } {
    const c = this.#peek();
    if (c === '[') return { value: this.#list() };
    if (c === '{') throw new SimulatorError(`hydra override ${this.#input}: dict values are not simulated`);
    if (c === "'" || c === '"') {
      const close = this.#closingQuote(this.#pos);
      const body = this.#input.slice(this.#pos + 1, close).replaceAll(`\\${c}`, c);
      this.#pos = close + 1;
      const next = this.#peek();
      if (next === "'" || next === '"') {
        const token = this.#input.slice(this.#pos, this.#closingQuote(this.#pos) + 1);
        throw parseFailure(this.#input, `extraneous input '${token}' expecting <EOF>`, true);
      }
      if (next !== undefined && next !== ',' && next !== ']') this.#unexpected();
      return { value: scalar(body) as OValue };
    }
    const fn = /^([A-Za-z_][\w-]*)[ \t]*\(/.exec(this.#input.slice(this.#pos));
    if (fn !== null) {
      const name = fn[1] ?? '';
      if (!SWEEP_FUNCTIONS.has(name)) throw new SimulatorError(`hydra override ${this.#input}: the grammar function ${name}() is not simulated`);
      let depth = 0;
      for (; this.#pos < this.#input.length; this.#pos += 1) {
        const ch = this.#input[this.#pos];
        if (ch === '(') depth += 1;
        else if (ch === ')' && --depth === 0) break;
      }
      if (depth !== 0) throw parseFailure(this.#input, `no viable alternative at input '${this.#input.slice(this.#input.indexOf('=') + 1)}'`);
      this.#pos += 1;
      return { value: scalar(name) as OValue, sweep: 'function' };
    }
    return { value: this.#primitive(top) };
  }

  #list(): OValue {
    const open = this.#pos;
    this.#pos += 1;
    const items: OValue[] = [];
    if (this.#peek() === ']') {
      this.#pos += 1;
      return { t: 'list', items };
    }
    for (;;) {
      items.push(this.#element(false).value);
      const c = this.#peek();
      if (c === ',') this.#pos += 1;
      else if (c === ']') {
        this.#pos += 1;
        return { t: 'list', items };
      } else throw parseFailure(this.#input, `no viable alternative at input '${this.#input.slice(open)}'`);
    }
  }

  /** ID | NULL | INT | FLOAT | BOOL | UNQUOTED_CHAR | COLON | ESC | WS | interpolation, one or more. */
  #primitive(top: boolean): OValue {
    const text = this.#input;
    let raw = '';
    while (this.#pos < text.length) {
      const c = text[this.#pos] ?? '';
      if (c === '\\' && /[()[\]{}:=, \t\\]/.test(text[this.#pos + 1] ?? '')) {
        raw += `\\${text[this.#pos + 1]}`;
        this.#pos += 2;
      } else if (c === '$' && text[this.#pos + 1] === '{') {
        const close = closingBrace(text, this.#pos + 1);
        raw += text.slice(this.#pos, close + 1);
        this.#pos = close + 1;
      } else if (',[]{}()='.includes(c)) {
        if (c === '=' || c === '[' || c === '{' || c === '(' || c === ')' || (c === ']' && top) || (c === '}' && top)) this.#unexpected();
        break;
      } else if (c === "'" || c === '"') this.#unexpected();
      else {
        raw += c;
        this.#pos += 1;
      }
    }
    const trimmed = raw.replace(/^[ \t]+/, '').replace(/(?<!\\)[ \t]+$/, '');
    if (trimmed === '' && !top) throw parseFailure(text, `no viable alternative at input '${text.slice(text.indexOf('=') + 1)}'`);
    if (INT.test(trimmed)) return { t: 'value', v: Number(trimmed.replaceAll('_', '')), float: false };
    if (FLOAT.test(trimmed)) return { t: 'value', v: Number(trimmed.replaceAll('_', '').replace(/inf/i, 'Infinity').replace(/^([+-]?)nan$/i, 'NaN')), float: true };
    if (/^(true|false)$/i.test(trimmed)) return { t: 'value', v: trimmed.toLowerCase() === 'true', float: false };
    if (/^null$/i.test(trimmed)) return { t: 'value', v: null, float: false };
    const unescaped = trimmed.replace(/\\([()[\]{}:=, \t\\])/g, '$1');
    return scalar(unescaped) as OValue;
  }
}

/** Index of the `}` closing the `{` at `open`, counting nested `${`/`{`; -1 when unclosed. */
function closingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function toHydraValue(value: OValue | CfgNode): HydraValue {
  if (value.t === 'list') return value.items.map(toHydraValue);
  if (value.t === 'value') return value.v;
  if (value.t === 'interp') return value.text;
  throw new SimulatorError(`not a plain value: ${value.t}`);
}

/**
 * One command-line override, in the shape older callers know (`text`: the override without its
 * `+`/`++`/`~` prefix). Throws the OverrideParseException hydra raises for malformed overrides.
 */
export function parseOverride(text: string): { op: Override['op']; key: string; value: HydraValue; text: string } {
  const parsed = parseOverrideLine(text);
  const prefix = parsed.op === 'delete' || parsed.op === 'append' ? 1 : parsed.op === 'force' ? 2 : 0;
  return { op: parsed.op, key: parsed.key, value: parsed.value === undefined ? null : toHydraValue(parsed.value), text: text.slice(prefix) };
}

/** An override value as hydra parses it (quoted strings, lists, True/False, null, ints, floats, trimmed strings). */
export function parseValue(raw: string): HydraValue {
  const parsed = parseOverrideLine(`x=${raw}`);
  return parsed.value === undefined ? null : toHydraValue(parsed.value);
}

// ---- interpolations (omegaconf/grammar/OmegaConfGrammarParser.g4, reduced) ---------------------

type TextPart = { lit: string } | { node: string } | { resolver: string; args: string[] };

/** Splits `a/${b.c}/${oc.env:X,d}` into literal text and interpolations (`\${` is a literal `${`). */
function parseInterpolationText(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '\\' && text[i + 1] === '$' && text[i + 2] === '{') {
      literal += '${';
      i += 2;
    } else if (text[i] === '$' && text[i + 1] === '{') {
      const close = closingBrace(text, i + 1);
      if (close < 0) throw new PythonError('omegaconf.errors.GrammarParseError', `mismatched input '<EOF>' expecting BRACE_CLOSE`);
      if (literal !== '') parts.push({ lit: literal });
      literal = '';
      parts.push(parseInterpolation(text.slice(i + 2, close)));
      i = close;
    } else literal += text[i];
  }
  if (literal !== '') parts.push({ lit: literal });
  return parts;
}

function parseInterpolation(body: string): TextPart {
  const colon = topLevelIndex(body, ':');
  if (colon < 0) return { node: body.trim() };
  const args: string[] = [];
  let rest = body.slice(colon + 1);
  while (rest !== '') {
    const comma = topLevelIndex(rest, ',');
    args.push((comma < 0 ? rest : rest.slice(0, comma)).trim());
    rest = comma < 0 ? '' : rest.slice(comma + 1);
  }
  return { resolver: body.slice(0, colon).trim(), args };
}

/** Index of `char` outside `${...}`, brackets and quotes. */
function topLevelIndex(text: string, char: string): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '{' || c === '[') depth += 1;
    else if (c === '}' || c === ']') depth -= 1;
    else if (c === char && depth === 0) return i;
  }
  return -1;
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** datetime.now().strftime(pattern), local time, for the directives hydra run dirs use. */
export function strftime(pattern: string, now: Date): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const start = new Date(now.getFullYear(), 0, 1);
  const directives: Record<string, () => string> = {
    Y: () => String(now.getFullYear()),
    y: () => pad(now.getFullYear() % 100),
    m: () => pad(now.getMonth() + 1),
    d: () => pad(now.getDate()),
    H: () => pad(now.getHours()),
    I: () => pad(now.getHours() % 12 === 0 ? 12 : now.getHours() % 12),
    p: () => (now.getHours() < 12 ? 'AM' : 'PM'),
    M: () => pad(now.getMinutes()),
    S: () => pad(now.getSeconds()),
    f: () => pad(now.getMilliseconds() * 1000, 6),
    j: () => pad(Math.floor((now.getTime() - start.getTime()) / 86_400_000) + 1, 3),
    a: () => (WEEKDAYS[now.getDay()] ?? '').slice(0, 3),
    A: () => WEEKDAYS[now.getDay()] ?? '',
    b: () => (MONTHS[now.getMonth()] ?? '').slice(0, 3),
    B: () => MONTHS[now.getMonth()] ?? '',
    '%': () => '%',
  };
  return pattern.replace(/%(.)/g, (_, d: string) => {
    const directive = directives[d];
    if (directive === undefined) throw new SimulatorError(`strftime directive %${d} is not simulated (in \${now:${pattern}})`);
    return directive();
  });
}

// ---- composition --------------------------------------------------------------------------------

const GROUP_PATHS = Object.keys(GROUP_OPTIONS) as GroupPath[];
const isGroupPath = (key: string): key is GroupPath => (GROUP_PATHS as string[]).includes(key);

interface ConfigSlot {
  kind: 'config';
  /** Config path as hydra's messages cite it (`default_common`, `train_test_split/navtest`). */
  name: string;
  children: Slot[];
}
interface GroupSlot {
  kind: 'group';
  group: GroupPath;
  value: string;
  appended: boolean;
}
type Slot = ConfigSlot | GroupSlot;
type MergeItem = { group: GroupPath; option: string } | { config: string };

const baseName = (file: string): string => (file.split('/').at(-1) ?? file).replace(/\.yaml$/, '');
const groupDefault = (value: string | { kind: 'mandatory' } | null): string => (typeof value === 'string' ? value : '???');

/**
 * The primary's defaults tree with each group at its default, rebuilt from the data: non-group
 * configs and groups in merge order; groups at `???` (absent from this primary's merge order) are
 * placed by any primary whose merge order has both groups of the same declaring file.
 */
function defaultsTree(primary: PrimaryConfig): ConfigSlot {
  const order = primary.defaultComposition.mergeOrder;
  const indexIn = (list: readonly string[], group: string) => list.findIndex((entry) => entry.startsWith(`${group}/`));
  const compareGroups = (a: string, b: string): number => {
    for (const p of [primary, ...Object.values(PRIMARY_CONFIGS)]) {
      const [ia, ib] = [indexIn(p.defaultComposition.mergeOrder, a), indexIn(p.defaultComposition.mergeOrder, b)];
      if (ia >= 0 && ib >= 0) return ia - ib;
    }
    return a.localeCompare(b);
  };
  const configs = order.filter((entry) => !entry.includes('/') && entry !== '<primary>');
  const top = Object.entries(primary.groups).filter(([group]) => !group.includes('/'));
  const slot = (group: string, use: (typeof top)[number][1]): GroupSlot => ({ kind: 'group', group: group as GroupPath, value: groupDefault(use.default), appended: false });
  for (const [group, use] of top) {
    const declaring = use.declaredIn === null ? undefined : baseName(use.declaredIn);
    if (declaring !== primary.configName && !configs.includes(declaring ?? '')) {
      throw new SimulatorError(`hydra-configs.ts: group ${group} of ${primary.configName} is declared in ${use.declaredIn}, which its defaults list lacks`);
    }
  }
  const children: { slot: Slot; at: number }[] = configs.map((name) => ({
    slot: {
      kind: 'config',
      name,
      children: top
        .filter(([, use]) => use.declaredIn !== null && baseName(use.declaredIn) === name)
        .sort(([a], [b]) => compareGroups(a, b))
        .map(([group, use]) => slot(group, use)),
    },
    at: order.indexOf(name),
  }));
  for (const [group, use] of top) {
    if (use.declaredIn !== null && baseName(use.declaredIn) === primary.configName) {
      const at = indexIn(order, group);
      children.push({ slot: slot(group, use), at: at < 0 ? Number.MAX_SAFE_INTEGER : at });
    }
  }
  return { kind: 'config', name: primary.configName, children: children.sort((a, b) => a.at - b.at).map((c) => c.slot) };
}

/** hydra's "Config search path" lines; the main provider's path is the script's config dir. */
function searchPathText(primary: PrimaryConfig, scriptPath: string | undefined): string {
  const scriptDir = scriptPath === undefined ? undefined : scriptPath.slice(0, scriptPath.lastIndexOf('/'));
  return primary.searchPath
    .map(({ provider, path }) => `\tprovider=${provider}, path=${provider === 'main' && scriptDir !== undefined ? `file://${scriptDir}/${primary.configPath}` : path}`)
    .join('\n');
}

/**
 * hydra's defaults-list stage (hydra/_internal/defaults_list.py): classifies the group overrides,
 * walks the tree (children in reverse, depth first, like _create_defaults_tree_impl), then checks
 * that every group override and deletion was used. Returns the chosen options and the merge order.
 */
function composeDefaults(primary: PrimaryConfig, overrides: readonly Override[], scriptPath: string | undefined): { choices: Map<string, string>; merge: MergeItem[] } {
  const overrideChoices = new Map<string, string>();
  const used = new Set<string>();
  const deletions = new Map<string, string | undefined>();
  const usedDeletions = new Set<string>();
  const appended: GroupSlot[] = [];
  for (const o of overrides) {
    if (!isGroupPath(o.key)) continue;
    if (o.op === 'force') {
      throw compact('ConfigCompositionException', `force-add of config groups is not supported: '${o.input}'`, [...OVERRIDES_INIT, 'hydra/_internal/defaults_list.py:81']);
    }
    const value = o.value;
    if (o.op === 'delete') {
      if (value !== undefined && !(value.t === 'value' && typeof value.v === 'string')) throw new SimulatorError(`hydra override ${o.input}: a non-string group deletion value is not simulated`);
      deletions.set(o.key, value?.v as string | undefined);
      continue;
    }
    if (value === undefined) continue;
    if (value.t === 'list') throw new SimulatorError(`hydra override ${o.input}: a list of config group options is not simulated`);
    if (value.t === 'interp') throw new SimulatorError(`hydra override ${o.input}: an interpolated config group option is not simulated`);
    if (typeof value.v !== 'string') {
      throw new HydraFailure('plain', 'ValueError', `Config group override must be a string or a list. Got ${pyTypeName(value)}`, [...OVERRIDES_INIT, 'hydra/_internal/defaults_list.py:95']);
    }
    if (o.op === 'append') appended.push({ kind: 'group', group: o.key, value: value.v, appended: true });
    else {
      overrideChoices.delete(o.key);
      overrideChoices.set(o.key, value.v);
    }
  }

  const tree = defaultsTree(primary);
  tree.children.push(...appended);
  const known = new Map<string, string>();
  const choices = new Map<string, string>();

  const visitGroup = (slot: GroupSlot, container: string, depth: number, out: MergeItem[]): void => {
    const group = slot.group;
    let value = slot.value;
    const chosen = overrideChoices.get(group);
    if (!slot.appended && chosen !== undefined) {
      value = chosen;
      used.add(group);
    }
    if (deletions.has(group)) {
      const name = deletions.get(group);
      if (name === undefined || name === value) {
        usedDeletions.add(group);
        return;
      }
    }
    const previous = known.get(group);
    if (previous !== undefined && previous !== value) {
      throw compact(
        'ConfigCompositionException',
        `Multiple values for ${group}. To override a value use 'override ${group}: ${previous}'`,
        [...treeFrames(depth), 'hydra/_internal/defaults_list.py:472', 'hydra/_internal/defaults_list.py:185'],
      );
    }
    known.set(group, value);
    const options = Object.keys(GROUP_OPTIONS[group].options);
    const listed = options.map((o) => `\t${o}`).join('\n');
    if (value === '???') {
      throw compact(
        'ConfigCompositionException',
        `You must specify '${group}', e.g, ${group}=<OPTION>\nAvailable options:\n${listed}`,
        [...treeFrames(depth), 'hydra/_internal/defaults_list.py:477', 'hydra/_internal/defaults_list.py:322'],
      );
    }
    const option = GROUP_OPTIONS[group].options[value];
    if (option === undefined) {
      throw new HydraFailure(
        'compact',
        'hydra.errors.MissingConfigException',
        `In '${container}': Could not find '${group}/${value}'\n\nAvailable options in '${group}':\n${listed}\nConfig search path:\n${searchPathText(primary, scriptPath)}`,
        [...treeFrames(depth), 'hydra/_internal/defaults_list.py:488', 'hydra/_internal/defaults_list.py:799'],
      );
    }
    const nested: ConfigSlot = {
      kind: 'config',
      name: `${group}/${value}`,
      children: Object.entries(option.defaults).map(([sub, def]) => ({ kind: 'group', group: `${group}/${sub}` as GroupPath, value: groupDefault(def), appended: false })),
    };
    visitConfig(nested, depth + 1, out);
    out.push({ group, option: value });
    choices.set(group, value);
  };

  function visitConfig(node: ConfigSlot, depth: number, out: MergeItem[]): void {
    const parts: MergeItem[][] = node.children.map(() => []);
    for (let i = node.children.length - 1; i >= 0; i -= 1) {
      const child = node.children[i];
      const items = parts[i] ?? [];
      if (child === undefined) continue;
      if (child.kind === 'config') {
        visitConfig(child, depth + 1, items);
        items.push({ config: child.name });
      } else visitGroup(child, node.name, depth, items);
    }
    out.push(...parts.flat());
  }

  const merge: MergeItem[] = [];
  visitConfig(tree, 1, merge);
  merge.push({ config: tree.name });

  for (const [group, value] of overrideChoices) {
    if (used.has(group)) continue;
    throw compact(
      'ConfigCompositionException',
      `Could not override '${group}'. No match in the defaults list.\nTo append to your default list use +${group}=${value}`,
      [...LOAD, 'hydra/_internal/config_loader_impl.py:253', 'hydra/_internal/defaults_list.py:752', 'hydra/_internal/defaults_list.py:168'],
    );
  }
  for (const [group, name] of deletions) {
    if (usedDeletions.has(group)) continue;
    throw compact(
      'ConfigCompositionException',
      `Could not delete '${name === undefined ? group : `${group}=${name}`}'. No match in the defaults list`,
      [...LOAD, 'hydra/_internal/config_loader_impl.py:253', 'hydra/_internal/defaults_list.py:753', 'hydra/_internal/defaults_list.py:175'],
    );
  }
  return { choices, merge };
}

/** The composed tree: group options under their packages, the primary's own keys (hydra.* included). */
function composeTree(primary: PrimaryConfig, merge: readonly MergeItem[]): DictNode {
  const root = dict();
  let primaryMerged = false;
  for (const item of merge) {
    if ('group' in item) {
      const data = GROUP_OPTIONS[item.group];
      const option = data.options[item.option];
      if (option === undefined) continue;
      const base = data.package.split('.');
      if (lookup(root, base)?.t !== 'dict') setPath(root, base, dict());
      for (const node of option.nodes) if (lookup(root, [...base, ...node.split('.')])?.t !== 'dict') setPath(root, [...base, ...node.split('.')], dict());
      for (const [key, value] of Object.entries(option.keys)) setPath(root, [...base, ...key.split('.')], fromDefault(value, option.floatKeys.includes(key)));
    } else if (!primaryMerged) {
      primaryMerged = true;
      for (const [key, value] of Object.entries(primary.keys)) setPath(root, key.split('.'), fromDefault(value, primary.floatKeys.includes(key)));
    }
  }
  return root;
}

/** Python's int(): ints, floats truncated, bools, decimal strings (whitespace and `_` allowed). */
function pyInt(node: CfgNode): number {
  if (node.t === 'value') {
    const { v } = node;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new PythonError(Number.isNaN(v) ? 'ValueError' : 'OverflowError', Number.isNaN(v) ? 'cannot convert float NaN to integer' : 'cannot convert float infinity to integer');
      return Math.trunc(v);
    }
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'string') {
      const text = v.trim();
      if (!/^[+-]?[0-9](_?[0-9])*$/.test(text)) throw new PythonError('ValueError', `invalid literal for int() with base 10: ${pyRepr(v)}`);
      return Number(text.replaceAll('_', ''));
    }
  }
  throw new PythonError('TypeError', `int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(node)}'`);
}

/** Python's float(). */
function pyFloat(node: CfgNode): number {
  if (node.t === 'value') {
    const { v } = node;
    if (typeof v === 'number') return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'string') {
      const text = v.trim().replaceAll('_', '');
      if (FLOAT.test(text) || INT.test(text) || /^[+-]?[0-9]+$/.test(text) || /^[+-]?(infinity|inf|nan)$/i.test(text)) {
        return Number(text.replace(/^([+-]?)(infinity|inf)$/i, '$1Infinity').replace(/^[+-]?nan$/i, 'NaN'));
      }
      throw new PythonError('ValueError', `could not convert string to float: ${pyRepr(v)}`);
    }
  }
  throw new PythonError('TypeError', `float() argument must be a string or a real number, not '${pyTypeName(node)}'`);
}

function truthy(node: CfgNode): boolean {
  switch (node.t) {
    case 'value':
      return node.v !== null && node.v !== false && node.v !== 0 && node.v !== '';
    case 'list':
      return node.items.length > 0;
    case 'long':
      return node.count > 0;
    case 'dict':
      return node.map.size > 0;
    default:
      return true;
  }
}

const attributeError = (part: string, fullKey: string) =>
  new PythonError('omegaconf.errors.ConfigAttributeError', `Key ${pyRepr(part)} is not in struct\n    full_key: ${fullKey}\n    object_type=dict`);
const missingValue = (key: string) =>
  new PythonError('omegaconf.errors.MissingMandatoryValue', `Missing mandatory value: ${key}\n    full_key: ${key}\n    object_type=dict`);

export interface ComposeOptions {
  /** Absolute container path of the script: hydra's main config search path is `<its dir>/<config_path>`. */
  scriptPath?: string;
  /** The run's start (`${now:...}`); default: the first time a `now` interpolation is read. */
  now?: Date;
}

/** The hydra config groups hydra.yaml lists besides the navsim ones (hydra-core 1.3.2 defaults). */
export const HYDRA_GROUP_CHOICES: Readonly<Record<string, string | null>> = {
  'hydra/env': 'default',
  'hydra/callbacks': null,
  'hydra/job_logging': 'default',
  'hydra/hydra_logging': 'default',
  'hydra/hydra_help': 'default',
  'hydra/help': 'default',
  'hydra/sweeper': 'basic',
  'hydra/launcher': 'basic',
  'hydra/output': 'default',
};

export class HydraConfig {
  /** The overrides as given on the command line (overrides.yaml, "Error executing job with overrides"). */
  readonly overrides: readonly string[];
  /** The primary config's name. */
  readonly name: string;
  readonly #root: DictNode;
  readonly #choices: Map<string, string>;
  readonly #env: NodeJS.ProcessEnv;
  #now: Date | undefined;
  readonly #nowCache = new Map<string, string>();

  private constructor(name: string, overrides: readonly string[], root: DictNode, choices: Map<string, string>, env: NodeJS.ProcessEnv, now: Date | undefined) {
    this.name = name;
    this.overrides = overrides;
    this.#root = root;
    this.#choices = choices;
    this.#env = env;
    this.#now = now;
  }

  /**
   * hydra's config loading for `python <script> <args>`: parse the overrides, check sweeps, build the
   * defaults list, merge, apply the config overrides. Throws HydraFailure as hydra would fail.
   */
  static compose(schema: ConfigSchema, args: readonly string[], env: NodeJS.ProcessEnv, options: ComposeOptions = {}): HydraConfig {
    const primary = PRIMARY_CONFIGS[schema.primary];
    const overrides = args.map(parseOverrideLine);
    for (const o of overrides) {
      if (o.sweep === 'simple') {
        throw compact(
          'ConfigCompositionException',
          `Ambiguous value for argument '${o.input}'\n1. To use it as a list, use key=[value1,value2]\n2. To use it as string, quote the value: key=\\'value1,value2\\'\n3. To sweep over it, add --multirun to your command line`,
          [...SWEEP, 'hydra/_internal/config_loader_impl.py:79'],
        );
      }
      if (o.sweep === 'function') throw compact('ConfigCompositionException', `Sweep parameters '${o.input}' requires --multirun`, [...SWEEP, 'hydra/_internal/config_loader_impl.py:81']);
    }
    for (const o of overrides) {
      if (o.key === 'hydra' || o.key.startsWith('hydra.') || o.key.startsWith('hydra/')) {
        throw new SimulatorError(`hydra override ${o.input}: overriding hydra's own configuration is not simulated`);
      }
    }
    const { choices, merge } = composeDefaults(primary, overrides, options.scriptPath);
    const root = composeTree(primary, merge);
    for (const [key, entry] of Object.entries(schema.values ?? {})) setPath(root, key.split('.'), fromEntry(entry));
    const cfg = new HydraConfig(primary.configName, args, root, choices, env, options.now);
    for (const o of overrides) if (!isGroupPath(o.key)) cfg.#applyOverride(o);
    return cfg;
  }

  // ---- config overrides (hydra/_internal/config_loader_impl.py _apply_overrides_to_config) ----

  #applyOverride(o: Override): void {
    const parts = o.key.split('.');
    if (parts.some((part) => /^[0-9]+$/.test(part))) throw new SimulatorError(`hydra override ${o.input}: list-index keys are not simulated`);
    try {
      if (o.op === 'delete') {
        const current = this.#select(parts, 'hydra/_internal/config_loader_impl.py:349');
        if (current === undefined) {
          throw compact('ConfigCompositionException', `Could not delete from config. '${o.key}' does not exist.`, [...APPLY, 'hydra/_internal/config_loader_impl.py:351']);
        }
        if (o.value !== undefined && !pyEquals(o.value, current)) {
          throw compact(
            'ConfigCompositionException',
            `Could not delete from config. The value of '${o.key}' is ${nodeStr(current)} and not ${nodeStr(o.value)}.`,
            [...APPLY, 'hydra/_internal/config_loader_impl.py:356'],
          );
        }
        const parent = lookup(this.#root, parts.slice(0, -1));
        if (parent?.t === 'dict') parent.map.delete(parts.at(-1) ?? '');
        return;
      }
      const value: OValue = o.value ?? { t: 'value', v: null, float: false };
      if (o.op === 'append') {
        if (this.#select(parts, 'hydra/_internal/config_loader_impl.py:371') !== undefined && value.t !== 'list') {
          throw compact(
            'ConfigCompositionException',
            `Could not append to config. An item is already at '${o.key}'.\nEither remove + prefix: '${o.input.slice(1)}'\nOr add a second + to add or override '${o.key}': '+${o.input}'\n`,
            [...APPLY, 'hydra/_internal/config_loader_impl.py:377'],
          );
        }
      }
      this.#update(parts, value, o);
    } catch (error) {
      if (error instanceof ResolutionError) {
        throw compact('ConfigCompositionException', `Error merging override ${o.input}`, [...APPLY, 'hydra/_internal/config_loader_impl.py:397', ...error.selectFrames], {
          type: error.type,
          message: error.message,
          frames: error.selectFrames,
        });
      }
      throw error;
    }
  }

  /** OmegaConf.update(cfg, key, value, merge=True[, force_add]): struct mode refuses new keys unless forced. */
  #update(parts: readonly string[], value: OValue, o: Override): void {
    const force = o.op !== 'set';
    const notInStruct = (type: 'ConfigKeyError' | 'ConfigAttributeError', part: string, fullKey: string, frames: string[]) =>
      compact('ConfigCompositionException', `Could not override '${o.key}'.\nTo append to your config use +${o.input}`, [...APPLY, 'hydra/_internal/config_loader_impl.py:392'], {
        type: `omegaconf.errors.${type}`,
        message: `Key ${pyRepr(part)} is not in struct\n    full_key: ${fullKey}\n    object_type=dict`,
        frames,
      });
    let node = this.#root;
    for (const [i, part] of parts.slice(0, -1).entries()) {
      const child = node.map.get(part);
      if (child?.t === 'dict') {
        node = child;
        continue;
      }
      if (child?.t === 'list' || child?.t === 'long') throw new SimulatorError(`hydra override ${o.input}: keys below a list are not simulated`);
      if (child === undefined && !force) throw notInStruct('ConfigKeyError', part, parts.slice(0, i + 1).join('.'), UPDATE_INTERMEDIATE);
      const created = dict();
      node.map.set(part, created);
      node = created;
    }
    const last = parts.at(-1) ?? '';
    const existing = node.map.get(last);
    if (value.t === 'list' && existing?.t === 'dict') {
      throw compact('ConfigCompositionException', `Error merging override ${o.input}`, [...APPLY, 'hydra/_internal/config_loader_impl.py:397', ...MERGE_LIST_INTO_DICT], {
        type: 'omegaconf.errors.ConfigTypeError',
        message: `Cannot merge DictConfig with ListConfig\n    full_key: ${parts.join('.')}\n    object_type=dict`,
        frames: MERGE_LIST_INTO_DICT,
      });
    }
    if (existing === undefined && !force) throw notInStruct('ConfigAttributeError', last, parts.join('.'), UPDATE_LAST);
    node.map.set(last, cloneNode(value));
  }

  /**
   * OmegaConf.select(cfg, key, throw_on_missing=False): undefined for a missing key, `???` or None
   * (what hydra's `is None` tests see); interpolations are resolved (errors carry their frames).
   */
  #select(parts: readonly string[], callerFrame: string): CfgNode | undefined {
    let node: CfgNode | undefined = this.#root;
    const path: string[] = [];
    for (const part of parts) {
      if (node?.t === 'interp') node = this.#resolve(node, path, parts.join('.'), callerFrame);
      if (node?.t !== 'dict') return undefined;
      node = node.map.get(part);
      path.push(part);
    }
    if (node?.t === 'interp') node = this.#resolve(node, path, parts.join('.'), callerFrame);
    if (node === undefined || node.t === 'missing' || (node.t === 'value' && node.v === null)) return undefined;
    return node;
  }

  // ---- interpolation -------------------------------------------------------------------------

  /** Resolves an interpolation node found at `path` while reading `fullKey`; other nodes are returned as they are. */
  #resolve(node: CfgNode, path: readonly string[], fullKey: string, callerFrame?: string, levels: { single: boolean }[] = []): CfgNode {
    if (node.t !== 'interp') return node;
    if (levels.length > 64) throw new SimulatorError(`interpolation of ${fullKey} nests more than 64 levels (a cycle?)`);
    const parts = parseInterpolationText(node.text);
    const [first] = parts;
    const single = parts.length === 1 && first !== undefined && !('lit' in first);
    levels.push({ single });
    try {
      if (single) return this.#evalPart(first, path, fullKey, callerFrame, levels);
      const text = parts.map((part) => ('lit' in part ? part.lit : nodeStr(this.#evalPart(part, path, fullKey, callerFrame, levels)))).join('');
      return { t: 'value', v: text, float: false };
    } finally {
      levels.pop();
    }
  }

  #evalPart(part: TextPart, path: readonly string[], fullKey: string, callerFrame: string | undefined, levels: { single: boolean }[]): CfgNode {
    const fail = (type: string, message: string, end: ResolutionError['end']) => new ResolutionError(type, message, fullKey, [...levels], end, callerFrame);
    if ('lit' in part) return scalar(part.lit);
    if ('node' in part) {
      const target = relativeKey(part.node, path);
      let tnode: CfgNode | undefined = this.#root;
      for (const [i, segment] of target.entries()) {
        if (tnode?.t === 'interp') tnode = this.#resolve(tnode, target.slice(0, i), fullKey, callerFrame, levels);
        tnode = tnode?.t === 'dict' ? tnode.map.get(segment) : undefined;
      }
      if (tnode === undefined) throw fail('omegaconf.errors.InterpolationKeyError', `Interpolation key '${part.node}' not found`, 'key');
      if (tnode.t === 'missing') {
        throw fail('omegaconf.errors.InterpolationToMissingValueError', `MissingMandatoryValue while resolving interpolation: Missing mandatory value: ${target.join('.')}`, 'missing');
      }
      return this.#resolve(tnode, target, fullKey, callerFrame, levels);
    }
    const args = part.args.map((arg) => this.#evalArg(arg, path, fullKey, callerFrame, levels));
    switch (part.resolver) {
      case 'oc.env': {
        const [name, ...rest] = args;
        if (name === undefined || name === null) throw new SimulatorError(`\${oc.env:...} without a variable name in ${fullKey}`);
        const value = this.#env[name];
        if (value !== undefined) return { t: 'value', v: value, float: false };
        if (rest.length > 0) return { t: 'value', v: rest[0] ?? null, float: false };
        throw fail('omegaconf.errors.InterpolationResolutionError', `KeyError raised while resolving interpolation: "Environment variable '${name}' not found"`, 'env');
      }
      case 'now': {
        const pattern = args[0] ?? '';
        if (pattern === null) throw new SimulatorError(`\${now:null} in ${fullKey} is not simulated`);
        const cached = this.#nowCache.get(pattern);
        if (cached !== undefined) return { t: 'value', v: cached, float: false };
        this.#now ??= new Date();
        const text = strftime(pattern, this.#now);
        this.#nowCache.set(pattern, text);
        return { t: 'value', v: text, float: false };
      }
      case 'hydra':
      case 'python_version':
      case 'oc.create':
      case 'oc.decode':
      case 'oc.deprecated':
      case 'oc.select':
      case 'oc.dict.keys':
      case 'oc.dict.values':
        throw new SimulatorError(`the \${${part.resolver}:...} resolver (in ${fullKey}) is not simulated`);
      default:
        throw new PythonError('omegaconf.errors.UnsupportedInterpolationType', `Unsupported interpolation type ${part.resolver}\n    full_key: ${fullKey}\n    object_type=dict`);
    }
  }

  /** A resolver argument: quoted string, `null`, or text with interpolations (as a string). */
  #evalArg(arg: string, path: readonly string[], fullKey: string, callerFrame: string | undefined, levels: { single: boolean }[]): string | null {
    const quote = arg[0];
    if ((quote === "'" || quote === '"') && arg.endsWith(quote) && arg.length >= 2) return arg.slice(1, -1);
    if (/^null$/i.test(arg)) return null;
    return parseInterpolationText(arg)
      .map((part) => ('lit' in part ? part.lit : nodeStr(this.#evalPart(part, path, fullKey, callerFrame, levels))))
      .join('');
  }

  // ---- reading the task's config (hydra passes the config without its `hydra` node) ----------

  /** The node at `key`, walked like attribute access on the DictConfig (errors as OmegaConf raises them). */
  #locate(key: string): { node: CfgNode; path: string[] } {
    const parts = key.split('.');
    let node: CfgNode = this.#root;
    const path: string[] = [];
    for (const part of parts) {
      if (node.t === 'interp') node = this.#resolve(node, path, path.join('.'));
      path.push(part);
      const fullKey = path.join('.');
      if (node.t === 'dict') {
        const child = node.map.get(part);
        if (child === undefined || (path.length === 1 && part === 'hydra')) throw attributeError(part, fullKey);
        node = child;
      } else if (node.t === 'missing') throw missingValue(path.slice(0, -1).join('.'));
      else if (node.t === 'list' || node.t === 'long') throw new SimulatorError(`reading ${key}: indexing a list is not simulated`);
      else throw new PythonError('AttributeError', `'${pyTypeName(node)}' object has no attribute ${pyRepr(part)}`);
    }
    return { node, path };
  }

  /** The value at `key`, interpolations resolved (`???` raises MissingMandatoryValue). */
  #value(key: string): CfgNode {
    const { node, path } = this.#locate(key);
    const resolved = this.#resolve(node, path, key);
    if (resolved.t === 'missing') throw missingValue(key);
    return resolved;
  }

  #plain(node: CfgNode, path: readonly string[], key: string): HydraValue {
    const resolved = this.#resolve(node, path, key);
    switch (resolved.t) {
      case 'value':
        return resolved.v;
      case 'missing':
        throw missingValue(key);
      case 'list':
        return resolved.items.map((item, i) => this.#plain(item, [...path, String(i)], `${key}[${i}]`));
      case 'long':
        return [...resolved.sample];
      case 'dict':
        throw new SimulatorError(`${key} is a config node (a dict): read its keys instead`);
      case 'interp':
        throw new SimulatorError(`unresolved interpolation at ${key}`);
    }
  }

  /** Whether `key` exists in the task's config (no interpolation of the key itself is resolved). */
  has(key: string): boolean {
    try {
      this.#locate(key);
      return true;
    } catch (error) {
      if (error instanceof PythonError) return false;
      throw error;
    }
  }

  /** Whether `key` holds `???` (OmegaConf.is_missing). */
  isMissing(key: string): boolean {
    return this.#locate(key).node.t === 'missing';
  }

  /** The keys of the dict node at `key` ('' for the top level, without `hydra`). */
  keys(key = ''): string[] {
    const node = key === '' ? this.#root : this.#value(key);
    if (node.t !== 'dict') throw new SimulatorError(`${key} is not a config node (a dict)`);
    return [...node.map.keys()].filter((k) => key !== '' || k !== 'hydra');
  }

  /**
   * A value as the script reads it (`cfg.a.b`): interpolations resolved, lists as arrays (a long
   * list as its SAMPLE, see list()). A missing key fails like OmegaConf's struct mode.
   */
  get(key: string): HydraValue {
    const { node, path } = this.#locate(key);
    return this.#plain(node, path, key);
  }

  /** A string value, as `str(cfg.key)` / an f-string prints it; None fails like os.path calls do on None. */
  str(key: string): string {
    const value = this.#value(key);
    if (value.t === 'value' && value.v === null) throw new PythonError('TypeError', 'expected str, bytes or os.PathLike object, not NoneType');
    return nodeStr(value);
  }

  /** Python truthiness, which is how the scripts test flags (`if cfg.agent.grpo:`). */
  bool(key: string): boolean {
    return truthy(this.#value(key));
  }

  /** Python's int(cfg.key). */
  int(key: string): number {
    return pyInt(this.#value(key));
  }

  /** Python's float(cfg.key). */
  float(key: string): number {
    return pyFloat(this.#value(key));
  }

  /**
   * A list value as strings; undefined for None. For a list of which the upstream data holds only a
   * sample (train_logs, scene_filter.log_names/tokens: upstream/log-splits.ts), this is that SAMPLE,
   * a subset: a script that filters by it is stricter than upstream, never looser. listCount() has
   * the true size for messages. A scalar is treated as a one-item list.
   */
  list(key: string): string[] | undefined {
    const value = this.#value(key);
    if (value.t === 'value' && value.v === null) return undefined;
    if (value.t === 'long') return value.sample.map((v) => scalarStr(v, false));
    if (value.t === 'list') return (this.#plain(value, key.split('.'), key) as HydraValue[]).map((v) => (Array.isArray(v) ? String(v) : scalarStr(v, false)));
    if (value.t === 'dict') throw new SimulatorError(`${key} is a config node (a dict), not a list`);
    return [nodeStr(value)];
  }

  /** The true number of items of a list (a long list's upstream count); undefined for None. */
  listCount(key: string): number | undefined {
    const value = this.#value(key);
    if (value.t === 'value' && value.v === null) return undefined;
    if (value.t === 'long') return value.count;
    if (value.t === 'list') return value.items.length;
    return 1;
  }

  /** Whether list() of `key` is a sample of a longer upstream list. */
  isSampled(key: string): boolean {
    return this.#value(key).t === 'long';
  }

  /** `${oc.env:NAME}` read directly. */
  env(name: string): string {
    const value = this.#env[name];
    if (value === undefined) {
      throw new PythonError('omegaconf.errors.InterpolationResolutionError', `KeyError raised while resolving interpolation: "Environment variable '${name}' not found"`);
    }
    return value;
  }

  /** The option chosen for a config group (hydra's runtime.choices); a group not composed fails like `cfg.<group>`. */
  group(name: string): string {
    const option = this.#choices.get(name);
    if (option === undefined) throw attributeError(name.split('/').at(-1) ?? name, name.replaceAll('/', '.'));
    return option;
  }

  /** The chosen option of every navsim config group, nested ones as `train_test_split/scene_filter`. */
  choices(): Record<string, string> {
    return Object.fromEntries(this.#choices);
  }

  /** A value of the `hydra` node (hydra.run.dir, hydra.output_subdir...), resolved. */
  hydra(key: string): HydraValue {
    const path = ['hydra', ...key.split('.')];
    const node = lookup(this.#root, path);
    if (node === undefined) throw attributeError(key.split('.').at(-1) ?? key, `hydra.${key}`);
    return this.#plain(node, path, `hydra.${key}`);
  }

  /**
   * hydra's run_job: `str(OmegaConf.select(config, "hydra.run.dir"))`. A failing interpolation is a
   * HydraFailure of kind run-dir (hydra's own error formatting trips over it).
   */
  runDir(): string {
    const path = ['hydra', 'run', 'dir'];
    try {
      const node = lookup(this.#root, path);
      return node === undefined ? 'None' : nodeStr(this.#resolve(node, path, 'hydra.run.dir', 'select'));
    } catch (error) {
      if (!(error instanceof ResolutionError)) throw error;
      throw new HydraFailure('run-dir', error.type, error.message, ['hydra/_internal/hydra.py:119', 'hydra/core/utils.py:116', ...SELECT_FRAMES, ...error.libraryFrames()]);
    }
  }

  /** hydra.yaml: the `hydra` node as composed (interpolations unresolved) plus what hydra adds at run time (job, runtime...). */
  hydraYaml(extra: Record<string, unknown>): string {
    const node = lookup(this.#root, ['hydra']);
    const hydraNode: DictNode = node?.t === 'dict' ? (cloneNode(node) as DictNode) : dict();
    mergePlain(hydraNode, extra);
    return dumpNode({ t: 'dict', map: new Map([['hydra', hydraNode]]) }, 0);
  }

  /** config.yaml as hydra saves it: the task's config (no `hydra` node), interpolations unresolved. */
  toYaml(): string {
    const task: DictNode = { t: 'dict', map: new Map([...this.#root.map].filter(([key]) => key !== 'hydra')) };
    return dumpNode(task, 0);
  }
}

/** `.a` / `..a` relative to the node at `path` (its parent, grandparent...), else absolute. */
function relativeKey(key: string, path: readonly string[]): string[] {
  const dots = /^\.*/.exec(key)?.[0].length ?? 0;
  if (dots === 0) return key.split('.');
  return [...path.slice(0, Math.max(0, path.length - dots)), ...key.slice(dots).split('.')];
}

// ---- YAML (what OmegaConf.to_yaml / PyYAML's safe dumper write) --------------------------------

/** PyYAML's bool resolver, widened like OmegaConf's dumper (yaml_is_bool: any case, and y/n). */
const YAML_BOOL = /^(y|yes|n|no|true|false|on|off)$/i;
const YAML_INT = /^([-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+)$/;
const YAML_FLOAT = /^([-+]?([0-9][0-9_]*)\.[0-9_]*([eE][-+][0-9]+)?|\.[0-9_]+([eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$/;
const YAML_NULL = /^(~|null|Null|NULL|)$/;
const YAML_TIMESTAMP = /^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)$/;

/** A str as PyYAML writes it in block context: plain when it reads back as the same str, else single-quoted. */
function yamlString(text: string): string {
  const looksTyped = YAML_BOOL.test(text) || YAML_INT.test(text) || YAML_FLOAT.test(text) || YAML_NULL.test(text) || YAML_TIMESTAMP.test(text) || text === '=' || text === '<<';
  const codes = [...text].map((c) => c.codePointAt(0) ?? 0);
  const control = codes.some((c) => (c < 0x20 && c !== 0x09) || c === 0x7f);
  const special = /^[\s]|[\s]$/.test(text) || /^[-?:,[\]{}#&*!|>'"%@`]/.test(text) || /: |:$| #/.test(text) || text.includes('\t');
  if (control) return JSON.stringify(text);
  if (!looksTyped && !special) return text;
  return `'${text.replaceAll("'", "''")}'`;
}

function yamlScalar(node: CfgNode): string {
  if (node.t === 'interp') return yamlString(node.text);
  if (node.t === 'missing') return "'???'";
  if (node.t !== 'value') return '';
  const { v, float } = node;
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!(float || !Number.isInteger(v))) return String(v);
    if (Number.isNaN(v)) return '.nan';
    if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
    const text = pyFloatRepr(v);
    return text.includes('.') || !text.includes('e') ? text : text.replace('e', '.0e');
  }
  return yamlString(v);
}

/** Block-style YAML of a dict node (lists as `- item` sequences, `{}`/`[]` when empty). */
function dumpNode(node: DictNode, indent: number): string {
  const pad = ' '.repeat(indent);
  let out = '';
  for (const [key, child] of node.map) {
    const name = yamlString(key);
    if (child.t === 'dict') out += child.map.size === 0 ? `${pad}${name}: {}\n` : `${pad}${name}:\n${dumpNode(child, indent + 2)}`;
    else if (child.t === 'list') out += child.items.length === 0 ? `${pad}${name}: []\n` : `${pad}${name}:\n${dumpItems(child.items, indent)}`;
    else if (child.t === 'long') {
      const items = child.sample.map((v) => scalar(v));
      out += `${pad}${name}:\n${dumpItems(items, indent)}${pad}# recogdrive-sim: ${child.count - child.sample.length} more of ${child.count} (${child.source})\n`;
    } else out += `${pad}${name}: ${yamlScalar(child)}\n`;
  }
  return out;
}

function dumpItems(items: readonly CfgNode[], indent: number): string {
  const pad = ' '.repeat(indent);
  return items
    .map((item) => {
      if (item.t === 'dict') return item.map.size === 0 ? `${pad}- {}\n` : `${pad}- ${dumpNode(item, indent + 2).trimStart()}`;
      if (item.t === 'list') return item.items.length === 0 ? `${pad}- []\n` : `${pad}- ${dumpItems(item.items, indent + 2).trimStart()}`;
      return `${pad}- ${yamlScalar(item)}\n`;
    })
    .join('');
}

function plainToNode(value: unknown): CfgNode {
  if (Array.isArray(value)) return { t: 'list', items: value.map(plainToNode) };
  if (typeof value === 'object' && value !== null) return { t: 'dict', map: new Map(Object.entries(value).map(([k, v]) => [k, plainToNode(v)])) };
  return { t: 'value', v: value === undefined ? null : (value as Scalar), float: false };
}

/** Merges plain data into a dict node (nested objects into existing dicts). */
function mergePlain(target: DictNode, value: Record<string, unknown>): void {
  for (const [key, v] of Object.entries(value)) {
    const existing = target.map.get(key);
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && existing?.t === 'dict') mergePlain(existing, v as Record<string, unknown>);
    else target.map.set(key, plainToNode(v));
  }
}

/** Plain data as PyYAML's block-style dump writes it (hydra.yaml, overrides.yaml). */
export function yaml(node: unknown, indent = 0): string {
  const root = plainToNode(node);
  if (root.t === 'dict') return dumpNode(root, indent);
  if (root.t === 'list') return dumpItems(root.items, indent);
  return `${yamlScalar(root)}\n`;
}
