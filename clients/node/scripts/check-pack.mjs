// Checks a tarball made by `npm pack`: the files a user needs are in it, nothing else,
// and package.json's entry points name files that exist in it.
import { execFileSync } from "node:child_process";

const tarball = process.argv[2];
if (!tarball) throw new Error("usage: node scripts/check-pack.mjs <ptcd-x.y.z.tgz>");
const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })
  .split("\n")
  .filter(Boolean)
  .map((f) => f.replace(/^package\//, ""));
const pkg = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }));

const problems = [];
for (const must of ["package.json", "README.md", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/ai-sdk.js", "dist/src/ai-sdk.d.ts", "dist/src/openai-agents.js", "dist/src/openai-agents.d.ts"]) {
  if (!files.includes(must)) problems.push(`missing ${must}`);
}
for (const [entry, target] of Object.entries(pkg.exports ?? {})) {
  for (const file of typeof target === "string" ? [target] : Object.values(target)) {
    if (!files.includes(file.replace(/^\.\//, ""))) problems.push(`exports["${entry}"] names ${file}, not in the tarball`);
  }
}
for (const f of files) {
  if (/^(test|dist\/test|node_modules|scripts)\//.test(f) || f.endsWith(".tgz")) problems.push(`should not ship ${f}`);
}
if (Object.keys(pkg.dependencies ?? {}).length > 0) problems.push(`runtime dependencies: ${Object.keys(pkg.dependencies).join(", ")} (the core client has none)`);
for (const peer of Object.keys(pkg.peerDependencies ?? {})) {
  if (!pkg.peerDependenciesMeta?.[peer]?.optional) problems.push(`${peer} must be an optional peer dependency (only its adapter needs it)`);
}
for (const field of ["name", "version", "description", "license", "engines"]) if (!pkg[field]) problems.push(`package.json lacks ${field}`);

if (problems.length > 0) {
  console.error(`${tarball}:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`${tarball.split("/").at(-1)}: ${files.length} files, entry points present, no runtime dependencies`);
