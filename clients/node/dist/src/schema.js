/** True for objects that carry a Standard Schema `~standard` property. */
export function isStandardSchema(schema) {
    return ((typeof schema === "object" || typeof schema === "function") &&
        schema !== null &&
        typeof schema["~standard"] === "object");
}
/**
 * The JSON Schema of `schema`: returned as is when it is already JSON Schema, converted
 * through Standard JSON Schema when it is a library's schema object (`which` picks the
 * input side, for arguments, or the output side, for results).
 */
export function toJsonSchema(schema, which, what) {
    if (!isStandardSchema(schema))
        return schema;
    const std = schema["~standard"];
    const convert = std.jsonSchema?.[which];
    if (typeof convert !== "function") {
        throw new TypeError(`${what}: this ${String(std.vendor ?? "schema library")} schema cannot give a JSON Schema ` +
            "(it lacks Standard JSON Schema support: zod needs version 4.2 or later); pass a JSON Schema object instead");
    }
    const json = { ...convert.call(std.jsonSchema, { target: "draft-2020-12" }) };
    delete json.$schema; // the daemon and the models read the schema itself; the dialect URI is noise
    return json;
}
/** A validator for `schema` when it can validate (Standard Schema), else `undefined`. */
export function validatorFor(schema) {
    if (!isStandardSchema(schema))
        return undefined;
    const std = schema["~standard"];
    if (typeof std.validate !== "function")
        return undefined;
    const validate = std.validate;
    return async (value) => validate.call(std, value);
}
/** One line per issue: `path.to.field: message`. */
export function formatIssues(issues) {
    return issues
        .map((issue) => {
        const path = (issue.path ?? []).map((p) => String(typeof p === "object" && p !== null ? p.key : p)).join(".");
        return path ? `${path}: ${issue.message}` : issue.message;
    })
        .join("; ");
}
//# sourceMappingURL=schema.js.map