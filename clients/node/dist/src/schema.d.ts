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
        readonly types?: {
            readonly input: Input;
            readonly output: Output;
        } | undefined;
    };
}
/** The parts of Standard JSON Schema v1 this library uses (conversion to JSON Schema). */
export interface StandardJSONSchemaV1<Input = unknown, Output = Input> {
    readonly "~standard": {
        readonly version: 1;
        readonly vendor: string;
        readonly types?: {
            readonly input: Input;
            readonly output: Output;
        } | undefined;
        readonly jsonSchema: {
            readonly input: (options: {
                target: string;
            }) => Record<string, unknown>;
            readonly output: (options: {
                target: string;
            }) => Record<string, unknown>;
        };
    };
}
export type StandardResult<Output> = {
    readonly value: Output;
    readonly issues?: undefined;
} | {
    readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | {
            readonly key: PropertyKey;
        }> | undefined;
    }>;
};
/** A schema as a tool definition may give it: plain JSON Schema, or a library's schema object. */
export type SchemaLike<T = unknown> = JsonSchema | StandardJSONSchemaV1<unknown, T>;
/** The output type of a Standard Schema (e.g. `z.infer<typeof schema>` for zod). */
export type InferSchemaOutput<S> = S extends {
    readonly "~standard": {
        readonly types?: {
            readonly output: infer O;
        } | undefined;
    };
} ? O : unknown;
/** True for objects that carry a Standard Schema `~standard` property. */
export declare function isStandardSchema(schema: unknown): schema is {
    "~standard": Record<string, unknown>;
};
/**
 * The JSON Schema of `schema`: returned as is when it is already JSON Schema, converted
 * through Standard JSON Schema when it is a library's schema object (`which` picks the
 * input side, for arguments, or the output side, for results).
 */
export declare function toJsonSchema(schema: SchemaLike, which: "input" | "output", what: string): JsonSchema;
/** A validator for `schema` when it can validate (Standard Schema), else `undefined`. */
export declare function validatorFor(schema: unknown): ((value: unknown) => Promise<StandardResult<unknown>>) | undefined;
/** One line per issue: `path.to.field: message`. */
export declare function formatIssues(issues: ReadonlyArray<{
    message: string;
    path?: ReadonlyArray<PropertyKey | {
        key: PropertyKey;
    }> | undefined;
}>): string;
//# sourceMappingURL=schema.d.ts.map