/**
 * Schemas given as objects of a validation library (zod ≥ 4.2, ArkType, Valibot with
 * its JSON Schema adapter, …) through the vendor-neutral Standard Schema and Standard
 * JSON Schema interfaces (standardschema.dev), so this library needs none of them.
 */
import type { JsonSchema } from "./tools.js";

/** The parts of Standard Schema v1 this library uses (validation). */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** The parts of Standard JSON Schema v1 this library uses (conversion to JSON Schema). */
export interface StandardJSONSchemaV1<Input = unknown, Output = Input> {
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
    readonly jsonSchema: {
      readonly input: (options: { target: string }) => Record<string, unknown>;
      readonly output: (options: { target: string }) => Record<string, unknown>;
    };
  };
}

export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined }> };

/** A schema as a tool definition may give it: plain JSON Schema, or a library's schema object. */
export type SchemaLike<T = unknown> = JsonSchema | StandardJSONSchemaV1<unknown, T>;

/** The output type of a Standard Schema (e.g. `z.infer<typeof schema>` for zod). */
export type InferSchemaOutput<S> = S extends { readonly "~standard": { readonly types?: { readonly output: infer O } | undefined } } ? O : unknown;

/** True for objects that carry a Standard Schema `~standard` property. */
export function isStandardSchema(schema: unknown): schema is { "~standard": Record<string, unknown> } {
  return (
    (typeof schema === "object" || typeof schema === "function") &&
    schema !== null &&
    typeof (schema as { "~standard"?: unknown })["~standard"] === "object"
  );
}

/**
 * The JSON Schema of `schema`: returned as is when it is already JSON Schema, converted
 * through Standard JSON Schema when it is a library's schema object (`which` picks the
 * input side, for arguments, or the output side, for results).
 */
export function toJsonSchema(schema: SchemaLike, which: "input" | "output", what: string): JsonSchema {
  if (!isStandardSchema(schema)) return schema as JsonSchema;
  const std = schema["~standard"] as { vendor?: unknown; jsonSchema?: { input?: unknown; output?: unknown } };
  const convert = std.jsonSchema?.[which];
  if (typeof convert !== "function") {
    throw new TypeError(
      `${what}: this ${String(std.vendor ?? "schema library")} schema cannot give a JSON Schema ` +
        "(it lacks Standard JSON Schema support: zod needs version 4.2 or later); pass a JSON Schema object instead",
    );
  }
  const json = { ...(convert.call(std.jsonSchema, { target: "draft-2020-12" }) as JsonSchema) };
  delete json.$schema; // the daemon and the models read the schema itself; the dialect URI is noise
  return json;
}

/** A validator for `schema` when it can validate (Standard Schema), else `undefined`. */
export function validatorFor(schema: unknown): ((value: unknown) => Promise<StandardResult<unknown>>) | undefined {
  if (!isStandardSchema(schema)) return undefined;
  const std = schema["~standard"] as { validate?: unknown };
  if (typeof std.validate !== "function") return undefined;
  const validate = std.validate as (value: unknown) => StandardResult<unknown> | Promise<StandardResult<unknown>>;
  return async (value) => validate.call(std, value);
}

/** One line per issue: `path.to.field: message`. */
export function formatIssues(issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined }>): string {
  return issues
    .map((issue) => {
      const path = (issue.path ?? []).map((p) => String(typeof p === "object" && p !== null ? p.key : p)).join(".");
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join("; ");
}
