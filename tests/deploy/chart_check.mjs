// Checks on `helm template` output, offline. Usage (node 20+):
//   node chart_check.mjs TOOLS_DIR validate RENDERED.yaml
//       every object parses (no duplicate keys) and validates against the Kubernetes API schemas
//       (npm kubernetes-models; @kubernetes-models/prometheus-operator and /cert-manager for CRDs)
//   node chart_check.mjs TOOLS_DIR security RENDERED.yaml CHART_README [--legacy-sys-admin]
//       the agent pod runs nothing privileged; its agent container drops ALL and adds exactly the
//       capabilities the chart README documents; every init container adds only its documented ones
//   node chart_check.mjs TOOLS_DIR configs RENDERED.yaml REPO_ROOT
//       the rendered agent.yaml and aggregator.yaml use only keys docs/*.example.yaml document,
//       and every metric the alerts and the dashboard use is one the programs export
//   node chart_check.mjs TOOLS_DIR extract RENDERED.yaml OUT_DIR
//       writes what the image test runs the images with, exactly as the chart would: the agent
//       container's added capabilities (agent.caps, one per line), its arguments (agent.args),
//       its seccomp profile type (agent.seccomp), the mount-kernel-fs init container's script
//       and capabilities, the first aggregator container's arguments (aggregator.args),
//       the agent's and the first aggregator's configuration files
import fs from "node:fs";
import path from "node:path";

const [toolsDir, command, rendered, ...rest] = process.argv.slice(2);
const modules = path.join(toolsDir, "node_modules");
const { parseAllDocuments, parse } = await import(path.join(modules, "yaml/dist/index.js"));

const failures = [];
const fail = (message) => failures.push(message);

function documents(file) {
  const docs = [];
  for (const doc of parseAllDocuments(fs.readFileSync(file, "utf8"), { uniqueKeys: true })) {
    if (doc.errors.length) {
      fail(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const value = doc.toJS();
    if (value) docs.push(value);
  }
  return docs;
}

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com")
    return path.join(modules, "@kubernetes-models/prometheus-operator", group, version, `${kind}.js`);
  if (group === "cert-manager.io")
    return path.join(modules, "@kubernetes-models/cert-manager", group, version, `${kind}.js`);
  return path.join(modules, "kubernetes-models", group || "", version, `${kind}.js`);
}

const name = (o) => `${o.kind}/${o.metadata?.name}`;

// The API server drops (or, with strict field validation, refuses) fields it does not know,
// and the packages' validators allow them: a misspelt field in a template would vanish
// silently. So every field is also looked up in the models' TypeScript declarations, which
// list each type's properties and the types they refer to. Types written inline (CRDs) or as
// free maps are not descended into.
const declarationCache = new Map();
function declaration(file) {
  if (declarationCache.has(file)) return declarationCache.get(file);
  let result = null;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8");
    const imports = {};
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) imports[m[1]] = m[2];
    const body = text.match(/^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m);
    if (body) {
      const properties = {};
      // One line per property at this depth; a type spread over lines (an inline object,
      // a free map) keeps only its first line and is not descended into.
      for (const m of body[1].matchAll(/^    "([^"]+)"\??: (.*?);?$/gm)) properties[m[1]] = m[2];
      result = { properties, imports, dir: path.dirname(file) };
    }
  }
  declarationCache.set(file, result);
  return result;
}

function resolveImport(decl, spec) {
  const target = spec.startsWith(".") ? path.join(decl.dir, spec) : path.join(modules, spec);
  return target.replace(/\.js$/, "") + ".d.ts";
}

function unknownFields(value, decl, where) {
  if (!decl || !value || typeof value !== "object" || Array.isArray(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const type = decl.properties[key];
    if (type === undefined) {
      fail(`${where}.${key}: unknown field (known: ${Object.keys(decl.properties).join(", ")})`);
      continue;
    }
    const ref = type.match(/^(?:Array<)?(I\w+)>?$/);
    if (!ref || !decl.imports[ref[1]]) continue;
    const childDecl = declaration(resolveImport(decl, decl.imports[ref[1]]));
    if (Array.isArray(child)) child.forEach((item, i) => unknownFields(item, childDecl, `${where}.${key}[${i}]`));
    else unknownFields(child, childDecl, `${where}.${key}`);
  }
}

async function validate(docs) {
  const counts = {};
  for (const o of docs) {
    if (!o.apiVersion || !o.kind) {
      fail(`object without apiVersion/kind: ${JSON.stringify(o).slice(0, 120)}`);
      continue;
    }
    const file = modelPath(o.apiVersion, o.kind);
    if (!fs.existsSync(file)) {
      fail(`${name(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    const Model = Object.values(await import(file)).find((v) => typeof v === "function" && v.prototype?.validate);
    try {
      new Model(o).validate();
    } catch (e) {
      fail(`${name(o)}: ${e.message}`);
    }
    unknownFields(o, declaration(file.replace(/\.js$/, ".d.ts")), name(o));
    counts[o.kind] = (counts[o.kind] || 0) + 1;
  }
  console.log(`validated ${docs.length} objects: ${Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ")}`);
}

// The chart README's capability table: rows "| `CAP` | container | why |".
function documentedCapabilities(readme) {
  const byContainer = {};
  for (const m of fs.readFileSync(readme, "utf8").matchAll(/^\| `([A-Z_]+)` \| `([a-z-]+)`(?: \(([^)]+)\))? \|/gm)) {
    const [, cap, container, condition] = m;
    (byContainer[container] ||= []).push({ cap, condition });
  }
  return byContainer;
}

function security(docs, readme, legacy) {
  const ds = docs.find((o) => o.kind === "DaemonSet");
  if (!ds) return fail("no agent DaemonSet");
  const spec = ds.spec.template.spec;
  const documented = documentedCapabilities(readme);
  if (!documented.agent) fail(`${readme}: no capability table rows for the agent container`);
  // The conditions the README's rows name, each read from the rendered pod.
  const agentPorts = (spec.containers.find((c) => c.name === "agent")?.ports || []).map((p) => p.containerPort);
  const conditions = {
    "agent.legacySysAdmin": () => legacy,
    "a port below 1024": () => agentPorts.some((p) => p < 1024),
  };
  const holds = (row) => {
    if (!row.condition) return true;
    if (!conditions[row.condition]) {
      fail(`${readme}: capability row ${row.cap} has a condition the test does not know: ${row.condition}`);
      return false;
    }
    return conditions[row.condition]();
  };
  const expected = (container) => (documented[container] || []).filter(holds).map((r) => r.cap).sort();

  if (spec.hostNetwork !== true) fail("agent: hostNetwork is not true");
  if (spec.dnsPolicy !== "ClusterFirstWithHostNet") fail(`agent: dnsPolicy ${spec.dnsPolicy}`);
  if (spec.hostPID || spec.hostIPC) fail("agent: hostPID/hostIPC set");
  if (spec.priorityClassName !== "system-node-critical") fail(`agent: priorityClassName ${spec.priorityClassName}`);
  if (!(spec.tolerations || []).some((t) => t.operator === "Exists" && !t.key && !t.effect))
    fail("agent: does not tolerate every taint");
  for (const c of [...(spec.initContainers || []), ...spec.containers]) {
    const sc = c.securityContext || {};
    if (sc.privileged !== false) fail(`${c.name}: privileged is ${sc.privileged} (must be false, explicitly)`);
    const drop = sc.capabilities?.drop || [];
    if (drop.length !== 1 || drop[0] !== "ALL") fail(`${c.name}: drops ${JSON.stringify(drop)}, not exactly ALL`);
    const add = [...(sc.capabilities?.add || [])].sort();
    const want = expected(c.name);
    if (JSON.stringify(add) !== JSON.stringify(want))
      fail(`${c.name}: adds ${JSON.stringify(add)}, the chart README documents ${JSON.stringify(want)}`);
  }
  const agent = spec.containers.find((c) => c.name === "agent");
  if (!agent) return fail("no agent container");
  const env = Object.fromEntries((agent.env || []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath || e.value]));
  if (env.NODE_NAME !== "spec.nodeName") fail(`agent: NODE_NAME from ${env.NODE_NAME}`);
  if (env.HOST_IP !== "status.hostIP") fail(`agent: HOST_IP from ${env.HOST_IP}`);
  if (agent.livenessProbe?.httpGet?.path !== "/healthz") fail("agent: liveness is not /healthz");
  if (agent.readinessProbe?.httpGet?.path !== "/readyz") fail("agent: readiness is not /readyz");
  if (!agent.resources?.requests || !agent.resources?.limits) fail("agent: no resource requests and limits");
  const mounts = Object.fromEntries(spec.volumes.filter((v) => v.hostPath).map((v) => [v.name, v.hostPath.path]));
  for (const v of ["bpffs", "tracefs", "cgroup2"]) if (!mounts[v]) fail(`agent: no hostPath volume ${v}`);
  if (ds.spec.updateStrategy?.rollingUpdate?.maxUnavailable === undefined) fail("agent: no rolling update maxUnavailable");
  console.log(`agent pod: nothing privileged; ${spec.containers.length + (spec.initContainers || []).length} containers drop ALL; agent adds ${expected("agent").join(", ")}`);
}

// Every key path of a YAML value: a.b, a.c[] (list items' keys under the list's path).
function keyPaths(value, prefix = "", out = new Set()) {
  if (Array.isArray(value)) {
    for (const item of value) keyPaths(item, `${prefix}[]`, out);
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.add(p);
      keyPaths(v, p, out);
    }
  }
  return out;
}

function configs(docs, root) {
  // Keys the aggregator on main does not know yet (issue 16); rendered only when set.
  const pending = new Set(["standby_regions", "max_data_loss", "prefer_availability"]);
  for (const [file, example] of [["agent.yaml", "docs/agent.example.yaml"], ["aggregator.yaml", "docs/aggregator.example.yaml"]]) {
    const known = keyPaths(parse(fs.readFileSync(path.join(root, example), "utf8")));
    // The example shows tls commented out; its keys are documented in the comment.
    if (file === "aggregator.yaml") for (const k of ["tls", "tls.cert_file", "tls.key_file", "tls.client_ca_file", "tls.require_node_identity", "tls.read_client_ca_file"]) known.add(k);
    const maps = docs.filter((o) => o.kind === "ConfigMap" && o.data?.[file]);
    if (!maps.length) fail(`no ConfigMap with ${file}`);
    for (const cm of maps) {
      for (const key of keyPaths(parse(cm.data[file]))) {
        if (!known.has(key) && !pending.has(key.split(".")[0])) fail(`${name(cm)} ${file}: key ${key} is not in ${example}`);
      }
    }
  }
  const exported = new Set();
  for (const dir of ["agent", "aggregator"]) {
    for (const f of fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith(".cc"))) {
      for (const m of fs.readFileSync(path.join(root, dir, f), "utf8").matchAll(/\.Name\("([a-z_]+)"\)/g)) exported.add(m[1]);
    }
  }
  const used = new Set();
  const texts = docs.filter((o) => o.kind === "PrometheusRule").map((o) => JSON.stringify(o.spec));
  for (const o of docs.filter((o) => o.kind === "ConfigMap")) for (const v of Object.values(o.data || {})) if (v.startsWith("{")) texts.push(v);
  for (const t of texts) for (const m of t.matchAll(/\b(regionpulse_[a-z_]+)/g)) used.add(m[1].replace(/_(bucket|sum|count)$/, ""));
  for (const metric of used) if (!exported.has(metric)) fail(`metric ${metric} is used by the alerts or dashboard but no program exports it`);
  console.log(`configs use documented keys only; ${used.size} metrics used, all exported`);
}

function extract(docs, out) {
  const ds = docs.find((o) => o.kind === "DaemonSet");
  const agent = ds?.spec.template.spec.containers.find((c) => c.name === "agent");
  if (!agent) return fail("no agent container");
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, "agent.caps"), (agent.securityContext.capabilities.add || []).join("\n") + "\n");
  fs.writeFileSync(path.join(out, "agent.args"), (agent.args || []).join("\n") + "\n");
  fs.writeFileSync(path.join(out, "agent.seccomp"), `${agent.securityContext.seccompProfile?.type || "RuntimeDefault"}\n`);
  const init = ds.spec.template.spec.initContainers?.find((c) => c.name === "mount-kernel-fs");
  if (init) fs.writeFileSync(path.join(out, "mount-kernel-fs.caps"), init.securityContext.capabilities.add.join("\n") + "\n");
  // The first aggregator container's arguments (aggregator.args), e.g. --plaintext without TLS.
  const sts = docs.find((o) => o.kind === "StatefulSet");
  const aggregator = sts?.spec.template.spec.containers.find((c) => c.name === "aggregator");
  if (aggregator) fs.writeFileSync(path.join(out, "aggregator.args"), (aggregator.args || []).join("\n") + "\n");
  for (const file of ["agent.yaml", "aggregator.yaml", "mount-kernel-fs.sh"]) {
    const cm = docs.find((o) => o.kind === "ConfigMap" && o.data?.[file]);
    if (cm) fs.writeFileSync(path.join(out, file), cm.data[file]);
  }
}

const docs = documents(rendered);
if (command === "validate") await validate(docs);
else if (command === "security") security(docs, rest[0], rest.includes("--legacy-sys-admin"));
else if (command === "configs") configs(docs, rest[0]);
else if (command === "extract") extract(docs, rest[0]);
else fail(`unknown command ${command}`);

if (failures.length) {
  console.error(failures.map((f) => `FAIL ${f}`).join("\n"));
  process.exit(1);
}
