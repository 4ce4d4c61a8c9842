/**
 * Tools: the functions a script may `await`. The daemon only sees their specs;
 * the handlers stay in this process and are invoked when the daemon sends a
 * `tool/call` request back over the connection.
 */

import { formatIssues, toJsonSchema, validatorFor, type SchemaLike } from "./schema.js";

/** A JSON Schema object (kept loose on purpose: the daemon, not this library, interprets it). */
export type JsonSchema = { [key: string]: unknown };

/** Who may call a tool: the script (`code_execution`, the default) and/or the model directly. */
export type AllowedCaller = "code_execution" | "direct";

/** What a handler gets besides its arguments. */
export interface ToolCallContext {
  /**
   * Aborted when the daemon sends `$/cancelRequest` for this call (the run ended,
   * timed out or was cancelled) or the connection closes; pass it on to `fetch`, etc.
   */
  readonly signal: AbortSignal;
  /** The tool's name as the daemon sent it. */
  readonly name: string;
  /** Daemon-assigned run id. */
  readonly runId: string;
  /** The script's sequence number for this call within its run. */
  readonly callId: number;
  /** Present when the run belongs to a session. */
  readonly sessionId?: string;
}

/** The function behind a tool. Its return value must be JSON-serializable (`undefined` → `null`). */
export type ToolHandler<Args = Record<string, unknown>, Result = unknown> = (
  args: Args,
  context: ToolCallContext,
) => Result | Promise<Result>;

/** A tool the script can call. */
export interface Tool<Args = any, Result = unknown> {
  /** The name the daemon and the model see; in Python invalid characters become `_`. */
  name: string;
  description?: string;
  /** JSON Schema of the arguments object; its `properties` order is the positional order in Python. */
  inputSchema?: JsonSchema;
  /**
   * JSON Schema of the result; only used for the typed stub the model sees (an object
   * schema becomes a `TypedDict`; without one the stub says the shape is unknown).
   */
  outputSchema?: JsonSchema;
  allowedCallers?: AllowedCaller[];
  handler: ToolHandler<Args, Result>;
}

/** The ToolSpec shape on the wire (snake_case, as in the contract). */
export interface WireToolSpec {
  name: string;
  description?: string;
  input_schema?: JsonSchema;
  output_schema?: JsonSchema;
  allowed_callers?: AllowedCaller[];
}

/**
 * Tool definitions as other ecosystems write them, all accepted by {@link tool}:
 * this library's camelCase, the wire/Anthropic `input_schema`, MCP `inputSchema`,
 * OpenAI Chat `{type: "function", function: {name, parameters}}` and the flat
 * OpenAI Responses `{type: "function", name, parameters}`.
 *
 * Schemas may be JSON Schema objects or schema objects of a validation library that
 * implements Standard JSON Schema (zod ≥ 4.2, ArkType, …): they are converted to
 * JSON Schema for the daemon, and an input schema that can validate (Standard Schema)
 * checks the script's arguments before the handler runs.
 */
export interface ToolDefinitionLike<Args = any, Result = any> {
  name?: string;
  description?: string;
  inputSchema?: SchemaLike<Args>;
  input_schema?: SchemaLike<Args>;
  parameters?: SchemaLike<Args>;
  /**
   * The result's shape: the daemon turns an object schema into a `TypedDict` in the
   * stub the model reads, so it can write its filter code without a look first.
   */
  outputSchema?: SchemaLike<Result>;
  output_schema?: SchemaLike<Result>;
  allowedCallers?: AllowedCaller[];
  allowed_callers?: AllowedCaller[];
  type?: string;
  function?: { name: string; description?: string; parameters?: JsonSchema };
  handler?: ToolHandler<any, any>;
}

/**
 * Builds a {@link Tool} from a schema object in any of the common shapes, so
 * an existing MCP or OpenAI definition can be reused as it is:
 *
 * ```ts
 * const getWeather = tool(
 *   { name: "get_weather", inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
 *   async ({ city }) => ({ temp_c: 18, city }),
 * );
 * // or with zod: arguments validated and typed, result shape shown to the model
 * const getWeather = tool(
 *   { name: "get_weather", inputSchema: z.object({ city: z.string() }), outputSchema: z.object({ temp_c: z.number() }) },
 *   async ({ city }) => ({ temp_c: 18 }),
 * );
 * ```
 */
export function tool<Args = Record<string, unknown>, Result = unknown>(
  definition: ToolDefinitionLike<Args, Result>,
  handler?: ToolHandler<Args, Result>,
): Tool<Args, Result> {
  const fn = definition.function;
  const name = fn?.name ?? definition.name;
  if (typeof name !== "string" || name === "") {
    throw new TypeError("tool(): the definition needs a non-empty `name`");
  }
  let run = handler ?? (definition.handler as ToolHandler<Args, Result> | undefined);
  if (typeof run !== "function") {
    throw new TypeError(`tool(): \`${name}\` needs a handler function`);
  }
  const inputSchema = definition.inputSchema ?? definition.input_schema ?? definition.parameters ?? fn?.parameters;
  const outputSchema = definition.outputSchema ?? definition.output_schema;
  const description = definition.description ?? fn?.description;
  const allowedCallers = definition.allowedCallers ?? definition.allowed_callers;
  const validate = validatorFor(inputSchema);
  if (validate) {
    const inner = run;
    run = async (args, context) => {
      const checked = await validate(args);
      if (checked.issues) throw new TypeError(`invalid arguments for ${name}: ${formatIssues(checked.issues)}`);
      return inner(checked.value as Args, context);
    };
  }
  const result: Tool<Args, Result> = { name, handler: run };
  if (description !== undefined) result.description = description;
  if (inputSchema !== undefined) result.inputSchema = toJsonSchema(inputSchema, "input", `tool ${name}: inputSchema`);
  if (outputSchema !== undefined) result.outputSchema = toJsonSchema(outputSchema, "output", `tool ${name}: outputSchema`);
  if (allowedCallers !== undefined) result.allowedCallers = allowedCallers;
  return result;
}

/** A tool without its handler: what the daemon and the model see of it. */
export type ToolSpec = Omit<Tool, "handler">;

/** The spec sent to the daemon for a tool (handlers never leave this process). */
export function toWireSpec(t: ToolSpec): WireToolSpec {
  const spec: WireToolSpec = { name: t.name };
  if (t.description !== undefined) spec.description = t.description;
  if (t.inputSchema !== undefined) spec.input_schema = t.inputSchema;
  if (t.outputSchema !== undefined) spec.output_schema = t.outputSchema;
  if (t.allowedCallers !== undefined) spec.allowed_callers = t.allowedCallers;
  return spec;
}

/**
 * The Python identifier the daemon makes of a tool name (invalid characters →
 * `_`, keywords get a trailing `_`). Used only as a fallback when matching an
 * incoming `tool/call` whose `name` is the Python form rather than the original.
 */
export function pythonName(name: string): string {
  let id = name.replace(/[^A-Za-z0-9_]/g, "_");
  if (id === "" || /^[0-9]/.test(id)) id = "_" + id;
  if (PYTHON_KEYWORDS.has(id)) id += "_";
  return id;
}

const PYTHON_KEYWORDS = new Set([
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
  "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
  "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
]);

/** Indexes tools by name (and Python name), rejecting duplicates early rather than at call time. */
export function indexTools(tools: readonly Tool[] | undefined): Map<string, Tool> {
  const byName = new Map<string, Tool>();
  for (const t of tools ?? []) {
    if (typeof t?.name !== "string" || typeof t.handler !== "function") {
      throw new TypeError("each tool needs a `name` and a `handler` (use tool() to build one)");
    }
    if (byName.has(t.name)) throw new TypeError(`duplicate tool name: ${t.name}`);
    byName.set(t.name, t);
  }
  return byName;
}

/** Finds the tool a `tool/call` names: exact name first, then by Python identifier. */
export function lookupTool(tools: ReadonlyMap<string, Tool>, name: string): Tool | undefined {
  const exact = tools.get(name);
  if (exact) return exact;
  for (const t of tools.values()) if (pythonName(t.name) === name) return t;
  return undefined;
}
