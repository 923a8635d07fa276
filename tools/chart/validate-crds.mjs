// Validates Strimzi custom resources against the schemas generated from Strimzi's CRDs
// (npm package @kubernetes-models/strimzi-kafka-operator). Reads a JSON array of
// resources on stdin; prints one JSON line per resource: {index, ok, errors}.
// Run by devstack/chart_check.py with STRIMZI_MODELS_DIR set to the npm install prefix.
import { pathToFileURL } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

// The package only exports ES modules: import its files by path from the install prefix.
const packageDir = path.join(process.env.STRIMZI_MODELS_DIR, "node_modules", "@kubernetes-models", "strimzi-kafka-operator");
const resources = JSON.parse(readFileSync(0, "utf8"));

for (const [index, resource] of resources.entries()) {
  const [group, version] = String(resource.apiVersion).split("/");
  const modulePath = path.join(packageDir, group, version, `${resource.kind}.js`);
  if (!existsSync(modulePath)) {
    console.log(JSON.stringify({ index, ok: false, errors: [`no schema for ${resource.apiVersion} ${resource.kind}`] }));
    continue;
  }
  const mod = await import(pathToFileURL(modulePath).href);
  const Model = mod[resource.kind];
  try {
    new Model(resource).validate();
    console.log(JSON.stringify({ index, ok: true, errors: [] }));
  } catch (error) {
    const details = (error.errors || []).map((e) => `${e.instancePath || "/"} ${e.message}`);
    console.log(JSON.stringify({ index, ok: false, errors: details.length ? details : [String(error.message)] }));
  }
}
