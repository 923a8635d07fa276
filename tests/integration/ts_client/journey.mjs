// A chatbot on the TypeScript SDK: it lists what the server offers, then
// skips a date ahead, moves another, completes the current occurrence and
// reopens it. Prints one JSON object of what it saw; the Python test asserts on it.
// Usage: MCP_CLIENT_DIR=<node_modules of tools/mcp-client> node journey.mjs <mcp url> <bearer token>
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// The SDK is installed in the tool cache (devstack.toolchain.MCP_CLIENT), not next to this script.
const sdk = (path) => import(pathToFileURL(join(process.env.MCP_CLIENT_DIR, "@modelcontextprotocol/sdk/dist/esm", path)).href);
const { Client } = await sdk("client/index.js");
const { StreamableHTTPClientTransport } = await sdk("client/streamableHttp.js");

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "ts-journey", version: "1.0.0" });
await client.connect(transport);

async function call(name, args) {
  const result = await client.callTool({ name, arguments: args });
  if (result.isError) throw new Error(`${name}: ${result.content[0].text}`);
  return result.structuredContent;
}

async function eventually(check, what, seconds = 60) {
  for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; ) {
    const value = await check();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 11) + "14:00:00Z";
const first = await call("add_task", { title: "Feed the cat", due_at: tomorrow, recurrence: { rule: "daily" } });
const coming = (await call("list_occurrences", { series_id: first.series_id, limit: 4 })).occurrences;
await call("skip_occurrence", { task_id: first.id, due_at: coming[1].due_at });
const moved = await call("move_occurrence", {
  series_id: first.series_id,
  due_at: coming[2].due_at,
  to: coming[2].due_at.slice(0, 11) + "18:30:00Z",
});
await call("complete_task", { task_id: first.id });
const pending = async () =>
  (await call("list_tasks", { series_id: first.series_id, status: "pending" })).items[0];
const second = await eventually(pending, "the occurrence after the completed one");
const reopened = await call("reopen_task", { task_id: first.id });
const after = (await call("list_tasks", { series_id: first.series_id, status: "all" })).items;
const series = await client.readResource({ uri: `todo://series/${first.series_id}` });

console.log(
  JSON.stringify({
    server: client.getServerVersion(),
    instructions: client.getInstructions(),
    tools: (await client.listTools()).tools.map((tool) => tool.name),
    templates: (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate),
    prompts: (await client.listPrompts()).prompts.map((prompt) => prompt.name),
    first,
    coming: coming.map((o) => o.due_at),
    moved,
    second,
    reopened,
    after: after.map((task) => task.id),
    series: JSON.parse(series.contents[0].text),
  }),
);
await client.close();
