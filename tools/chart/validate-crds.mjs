// Validates custom resources (Strimzi, Prometheus Operator) against the schemas generated
// from their CRDs (npm packages @kubernetes-models/<package>). Reads {packages, resources}
// on stdin: `packages` maps an API group to its package, `resources` is the list to check.
// Prints one JSON line per resource: {index, ok, errors}.
// Run by tools/delivery/chart.py with CRD_MODELS_DIR set to the node_modules npm installed.
import { pathToFileURL } from "node:url";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const { packages, resources } = JSON.parse(readFileSync(0, "utf8"));

for (const [index, resource] of resources.entries()) {
  const [group, version] = String(resource.apiVersion).split("/");
  // The packages only export ES modules: import their files by path from node_modules.
  const packageDir = path.join(process.env.CRD_MODELS_DIR, "@kubernetes-models", String(packages[group]));
  const modulePath = path.join(packageDir, group, version, `${resource.kind}.js`);
  if (!packages[group] || !existsSync(modulePath)) {
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
