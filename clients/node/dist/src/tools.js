/**
 * Tools: the functions a script may `await`. The daemon only sees their specs;
 * the handlers stay in this process and are invoked when the daemon sends a
 * `tool/call` request back over the connection.
 */
import { formatIssues, toJsonSchema, validatorFor } from "./schema.js";
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
export function tool(definition, handler) {
    const fn = definition.function;
    const name = fn?.name ?? definition.name;
    if (typeof name !== "string" || name === "") {
        throw new TypeError("tool(): the definition needs a non-empty `name`");
    }
    let run = handler ?? definition.handler;
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
            if (checked.issues)
                throw new TypeError(`invalid arguments for ${name}: ${formatIssues(checked.issues)}`);
            return inner(checked.value, context);
        };
    }
    const result = { name, handler: run };
    if (description !== undefined)
        result.description = description;
    if (inputSchema !== undefined)
        result.inputSchema = toJsonSchema(inputSchema, "input", `tool ${name}: inputSchema`);
    if (outputSchema !== undefined)
        result.outputSchema = toJsonSchema(outputSchema, "output", `tool ${name}: outputSchema`);
    if (allowedCallers !== undefined)
        result.allowedCallers = allowedCallers;
    return result;
}
/** The spec sent to the daemon for a tool (handlers never leave this process). */
export function toWireSpec(t) {
    const spec = { name: t.name };
    if (t.description !== undefined)
        spec.description = t.description;
    if (t.inputSchema !== undefined)
        spec.input_schema = t.inputSchema;
    if (t.outputSchema !== undefined)
        spec.output_schema = t.outputSchema;
    if (t.allowedCallers !== undefined)
        spec.allowed_callers = t.allowedCallers;
    return spec;
}
/**
 * The Python identifier the daemon makes of a tool name (invalid characters →
 * `_`, keywords get a trailing `_`). Used only as a fallback when matching an
 * incoming `tool/call` whose `name` is the Python form rather than the original.
 */
export function pythonName(name) {
    let id = name.replace(/[^A-Za-z0-9_]/g, "_");
    if (id === "" || /^[0-9]/.test(id))
        id = "_" + id;
    if (PYTHON_KEYWORDS.has(id))
        id += "_";
    return id;
}
const PYTHON_KEYWORDS = new Set([
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
    "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
]);
/** Indexes tools by name (and Python name), rejecting duplicates early rather than at call time. */
export function indexTools(tools) {
    const byName = new Map();
    for (const t of tools ?? []) {
        if (typeof t?.name !== "string" || typeof t.handler !== "function") {
            throw new TypeError("each tool needs a `name` and a `handler` (use tool() to build one)");
        }
        if (byName.has(t.name))
            throw new TypeError(`duplicate tool name: ${t.name}`);
        byName.set(t.name, t);
    }
    return byName;
}
/** Finds the tool a `tool/call` names: exact name first, then by Python identifier. */
export function lookupTool(tools, name) {
    const exact = tools.get(name);
    if (exact)
        return exact;
    for (const t of tools.values())
        if (pythonName(t.name) === name)
            return t;
    return undefined;
}
//# sourceMappingURL=tools.js.map