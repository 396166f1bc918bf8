// Validates dogwatch's Kubernetes manifests offline (called by kubernetes_test.sh).
//   node kubernetes_test.mjs RENDERED_BASE.yaml RENDERED_OVERLAY.yaml
// 1. Every object against the Kubernetes OpenAPI schema (npm kubernetes-models), the Knative
//    Service of the Cloud Run example by hand plus its containers and volumes as core/v1 objects.
// 2. The least-privilege contract: only system-probe adds capabilities, exactly the ones its
//    systemd unit and SELinux module keep; every other container drops ALL, runs as non-root and
//    has a read-only root filesystem; host mounts are read-only; RBAC is read-only.
// 3. Mutation self-test: breaking each rule in a copy must make the checks fail, so none of them
//    passes vacuously.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const modules = path.join(here, "k8s-validate/node_modules");
const yaml = (await import(pathToFileURL(path.join(modules, "js-yaml/dist/js-yaml.mjs")).href)).default;

let checks = 0;
function ok(what) {
  checks += 1;
  console.log(`ok ${checks} - ${what}`);
}
function die(what) {
  console.error(`kubernetes_test: FAIL: ${what}`);
  process.exit(1);
}

// kubernetes-models/<group>/<version>/<Kind>; the core group is just "v1". Imported by file URL
// because this script lives outside the package folder.
const modelCache = new Map();
async function model(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!modelCache.has(key)) {
    const file = path.join(modules, "kubernetes-models", apiVersion, `${kind}.js`);
    if (!fs.existsSync(file)) throw new Error(`no schema for ${key} in kubernetes-models`);
    const mod = await import(pathToFileURL(file).href);
    modelCache.set(key, mod[kind]);
  }
  return modelCache.get(key);
}

async function schemaErrors(doc, apiVersion = doc.apiVersion, kind = doc.kind) {
  try {
    const Kind = await model(apiVersion, kind);
    new Kind(doc).validate();
    return [];
  } catch (e) {
    return [`${kind} ${doc?.metadata?.name ?? doc?.name ?? ""}: ${e.message.split("\n").slice(0, 4).join("; ")}`];
  }
}

function loadAll(file) {
  return yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d !== null && d !== undefined);
}

const clone = (x) => JSON.parse(JSON.stringify(x));

// ---------------------------------------------------------------------------------------------
// What the other deployment forms keep, read from their sources so the three cannot drift.

function unitCapabilities() {
  const unit = path.join(repo, "deploy/systemd/dogwatch-system-probe.service");
  const text = fs.readFileSync(unit, "utf8");
  const line = text.split("\n").find((l) => l.startsWith("CapabilityBoundingSet="));
  if (!line) die(`${unit} has no CapabilityBoundingSet=`);
  return line.slice("CapabilityBoundingSet=".length).trim().split(/\s+/).map((c) => c.replace(/^CAP_/, "")).sort();
}

function selinuxCapabilities() {
  const te = fs.readFileSync(path.join(repo, "deploy/selinux/dogwatch.te"), "utf8").replace(/#.*$/gm, "");
  const caps = [];
  for (const m of te.matchAll(/allow\s+dogwatch_system_probe_t\s+self:capability2?\s+\{([^}]*)\}/g)) {
    caps.push(...m[1].trim().split(/\s+/).map((c) => c.toUpperCase()));
  }
  return caps.sort();
}

// ---------------------------------------------------------------------------------------------
// Container-level rules.

function unprivilegedErrors(c, where, { uid = 10001 } = {}) {
  const errs = [];
  const sc = c.securityContext ?? {};
  const caps = sc.capabilities ?? {};
  if (!(caps.drop ?? []).includes("ALL")) errs.push(`${where}: does not drop ALL capabilities`);
  if ((caps.add ?? []).length) errs.push(`${where}: adds capabilities ${caps.add.join(",")}`);
  if (sc.runAsNonRoot !== true) errs.push(`${where}: runAsNonRoot is not true`);
  if (uid !== null && sc.runAsUser !== uid) errs.push(`${where}: runAsUser is ${sc.runAsUser}, not ${uid}`);
  if (sc.readOnlyRootFilesystem !== true) errs.push(`${where}: readOnlyRootFilesystem is not true`);
  if (sc.allowPrivilegeEscalation !== false) errs.push(`${where}: allowPrivilegeEscalation is not false`);
  if (sc.privileged) errs.push(`${where}: privileged`);
  return errs;
}

function resourcesErrors(c, where) {
  const r = c.resources ?? {};
  const errs = [];
  for (const k of ["cpu", "memory"]) {
    if (!r.requests?.[k]) errs.push(`${where}: no ${k} request`);
    if (!r.limits?.[k]) errs.push(`${where}: no ${k} limit`);
  }
  return errs;
}

function portNumber(c, port) {
  if (typeof port === "number") return port;
  return (c.ports ?? []).find((p) => p.name === port)?.containerPort;
}

// ---------------------------------------------------------------------------------------------
// The rendered base (and overlay): a DaemonSet of four containers plus what it references.

function daemonSetErrors(docs, { unitCaps, seCaps, seccompFile }) {
  const errs = [];
  const find = (kind, pred = () => true) => docs.filter((d) => d.kind === kind && pred(d));
  const [ds] = find("DaemonSet");
  if (!ds) return ["no DaemonSet rendered"];
  const pod = ds.spec.template.spec;
  const byName = Object.fromEntries(pod.containers.map((c) => [c.name, c]));
  const names = pod.containers.map((c) => c.name).sort();
  if (names.join() !== "agent,process-agent,system-probe,trace-agent") errs.push(`containers are ${names}`);
  const firstArg = (c) => (c.args ?? c.command ?? [])[0];
  for (const n of names) if (firstArg(byName[n]) !== n) errs.push(`${n}: runs '${firstArg(byName[n])}'`);
  if (byName.agent && (byName.agent.args ?? []).join(" ") !== "agent run") errs.push("agent: args are not 'agent run'");

  // Privilege.
  for (const c of pod.containers.filter((c) => c.name !== "system-probe")) errs.push(...unprivilegedErrors(c, c.name));
  for (const c of pod.containers) errs.push(...resourcesErrors(c, c.name));
  const sp = byName["system-probe"];
  if (sp) {
    const sc = sp.securityContext ?? {};
    const added = [...(sc.capabilities?.add ?? [])].sort();
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) errs.push("system-probe: does not drop ALL first");
    if (added.join() !== unitCaps.join()) errs.push(`system-probe adds [${added}], its systemd unit keeps [${unitCaps}]`);
    if (added.join() !== seCaps.join()) errs.push(`system-probe adds [${added}], the SELinux module allows [${seCaps}]`);
    if (sc.privileged) errs.push("system-probe: privileged");
    if (sc.allowPrivilegeEscalation !== false) errs.push("system-probe: allowPrivilegeEscalation is not false");
    if (sc.readOnlyRootFilesystem !== true) errs.push("system-probe: readOnlyRootFilesystem is not true");
    if (sc.seccompProfile?.type !== "Localhost") errs.push("system-probe: seccompProfile is not Localhost");
    const profile = sc.seccompProfile?.localhostProfile ?? "";
    // The init container must install the profile exactly where the kubelet will look.
    const setup = (pod.initContainers ?? []).find((c) => c.name === "seccomp-setup");
    if (!setup) errs.push("no seccomp-setup init container");
    else {
      const target = setup.command?.[setup.command.length - 1] ?? "";
      const mount = (setup.volumeMounts ?? []).find((m) => target.startsWith(`${m.mountPath}/`));
      const vol = pod.volumes.find((v) => v.name === mount?.name);
      const installed = vol?.hostPath ? path.posix.join(vol.hostPath.path, target.slice(mount.mountPath.length + 1)) : "";
      if (installed !== path.posix.join("/var/lib/kubelet/seccomp", profile)) {
        errs.push(`seccomp-setup installs '${installed}', system-probe expects /var/lib/kubelet/seccomp/${profile}`);
      }
      const src = setup.command?.[setup.command.length - 2] ?? "";
      const srcMount = (setup.volumeMounts ?? []).find((m) => src.startsWith(`${m.mountPath}/`));
      const srcVol = pod.volumes.find((v) => v.name === srcMount?.name);
      const cm = find("ConfigMap", (d) => d.metadata.name === srcVol?.configMap?.name)[0];
      const key = src.slice((srcMount?.mountPath.length ?? 0) + 1);
      if (!cm || cm.data?.[key] === undefined) errs.push(`seccomp-setup copies ${src}, which no ConfigMap provides`);
      else if (cm.data[key] !== fs.readFileSync(seccompFile, "utf8")) errs.push("seccomp ConfigMap differs from seccomp/system-probe.json");
      const isc = setup.securityContext ?? {};
      if (!(isc.capabilities?.drop ?? []).includes("ALL") || (isc.capabilities?.add ?? []).length) errs.push("seccomp-setup: capabilities not dropped");
      if (isc.readOnlyRootFilesystem !== true || isc.allowPrivilegeEscalation !== false) errs.push("seccomp-setup: writable root or escalation");
    }
  }
  if (pod.hostPID !== true) errs.push("hostPID is not true (process-agent and system-probe need it)");
  if (pod.hostNetwork) errs.push("hostNetwork is set");
  if (!(pod.tolerations ?? []).length) errs.push("no tolerations");

  // Volumes: host paths read-only (except the seccomp directory of the init container), the
  // socket directory an emptyDir shared by all four.
  const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    for (const m of c.volumeMounts ?? []) {
      const v = volumes[m.name];
      if (!v) errs.push(`${c.name}: mounts undeclared volume ${m.name}`);
      else if (v.hostPath && !m.readOnly && !(c.name === "seccomp-setup" && v.hostPath.path.startsWith("/var/lib/kubelet/seccomp"))) {
        errs.push(`${c.name}: hostPath ${v.hostPath.path} mounted read-write`);
      }
    }
  }
  for (const [p, who] of [["/proc", ["agent", "process-agent", "system-probe"]], ["/sys/fs/cgroup", ["agent", "process-agent", "system-probe"]]]) {
    const vol = pod.volumes.find((v) => v.hostPath?.path === p);
    if (!vol) errs.push(`no hostPath volume for ${p}`);
    for (const n of who) if (!(byName[n]?.volumeMounts ?? []).some((m) => m.name === vol?.name && m.readOnly)) errs.push(`${n}: no read-only ${p}`);
  }
  for (const c of pod.containers) {
    const m = (c.volumeMounts ?? []).find((x) => x.mountPath === "/var/run/dogwatch");
    if (!m || !volumes[m.name]?.emptyDir) errs.push(`${c.name}: /var/run/dogwatch is not the shared emptyDir`);
  }

  // Ports: exactly 8125/UDP on the core and 8126/TCP on trace-agent reach the host.
  const hostPorts = pod.containers.flatMap((c) => (c.ports ?? []).filter((p) => p.hostPort).map((p) => `${c.name}:${p.hostPort}/${p.protocol ?? "TCP"}`));
  if (hostPorts.sort().join() !== "agent:8125/UDP,trace-agent:8126/TCP") errs.push(`hostPorts are ${hostPorts}`);

  // Probes on the core's health port.
  const core = byName.agent;
  if (core) {
    for (const [probe, p] of [["livenessProbe", "/live"], ["readinessProbe", "/ready"], ["startupProbe", "/startup"]]) {
      const g = core[probe]?.httpGet;
      if (g?.path !== p || portNumber(core, g?.port) !== 5555) errs.push(`agent: ${probe} is not GET ${p} on 5555`);
    }
  }

  // Secret and ConfigMaps that the pod references exist in the same render.
  for (const c of pod.containers.filter((c) => c.name !== "system-probe")) {
    const ref = (c.env ?? []).find((e) => e.name === "DD_API_KEY")?.valueFrom?.secretKeyRef;
    const secret = ref && find("Secret", (d) => d.metadata.name === ref.name)[0];
    if (!secret || !((secret.data ?? {})[ref.key] ?? (secret.stringData ?? {})[ref.key])) errs.push(`${c.name}: DD_API_KEY secretKeyRef does not resolve`);
    for (const e of c.env ?? []) {
      const cmRef = e.valueFrom?.configMapKeyRef;
      if (cmRef && !find("ConfigMap", (d) => d.metadata.name === cmRef.name && d.data?.[cmRef.key] !== undefined).length) errs.push(`${c.name}: ${e.name} configMapKeyRef does not resolve`);
    }
  }
  const cfg = find("ConfigMap", (d) => d.metadata.name === volumes.config?.configMap?.name)[0];
  if (!cfg?.data?.["dogwatch.yaml"] || !cfg?.data?.["system-probe.yaml"]) errs.push("config ConfigMap lacks dogwatch.yaml or system-probe.yaml");

  // The API token reaches the core only.
  if (pod.automountServiceAccountToken !== false) errs.push("automountServiceAccountToken is not false");
  for (const c of pod.containers) {
    const has = (c.volumeMounts ?? []).some((m) => volumes[m.name]?.projected?.sources?.some((s) => s.serviceAccountToken));
    if (has !== (c.name === "agent")) errs.push(`${c.name}: service account token ${has ? "mounted" : "missing"}`);
  }

  // RBAC: read-only, no wildcard, bound to the pod's ServiceAccount.
  for (const role of find("ClusterRole").concat(find("Role"))) {
    for (const rule of role.rules ?? []) {
      for (const v of rule.verbs) if (!["get", "list", "watch"].includes(v)) errs.push(`${role.metadata.name}: verb ${v}`);
      for (const r of [...(rule.resources ?? []), ...(rule.apiGroups ?? []), ...(rule.verbs ?? [])]) if (r.includes("*")) errs.push(`${role.metadata.name}: wildcard ${r}`);
      for (const r of rule.resources ?? []) if (!["pods", "nodes", "namespaces"].includes(r)) errs.push(`${role.metadata.name}: reads ${r}`);
    }
  }
  const sa = find("ServiceAccount", (d) => d.metadata.name === pod.serviceAccountName && d.metadata.namespace === ds.metadata.namespace);
  if (!sa.length) errs.push(`ServiceAccount ${pod.serviceAccountName} not rendered in ${ds.metadata.namespace}`);
  const bound = find("ClusterRoleBinding").some((b) => b.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === pod.serviceAccountName && s.namespace === ds.metadata.namespace));
  if (!bound) errs.push("no ClusterRoleBinding for the pod's ServiceAccount");
  return errs;
}

// ---------------------------------------------------------------------------------------------
// EKS Fargate example: a Deployment with the app and a dogwatch sidecar, no host access.

function fargateErrors(docs) {
  const errs = [];
  const [dep] = docs.filter((d) => d.kind === "Deployment");
  if (!dep) return ["no Deployment"];
  const pod = dep.spec.template.spec;
  if (pod.shareProcessNamespace !== true) errs.push("shareProcessNamespace is not true");
  if (pod.hostPID || pod.hostNetwork || pod.hostIPC) errs.push("uses a host namespace");
  if ((pod.volumes ?? []).some((v) => v.hostPath)) errs.push("uses a hostPath volume");
  const sidecar = pod.containers.find((c) => c.name === "dogwatch");
  if (!sidecar) errs.push("no dogwatch container");
  else if (!(sidecar.env ?? []).some((e) => e.name === "DD_EKS_FARGATE" && e.value === "true")) errs.push("dogwatch: DD_EKS_FARGATE is not true");
  if (pod.containers.some((c) => c.name === "system-probe" || (c.args ?? [])[0] === "system-probe")) errs.push("runs system-probe");
  for (const c of pod.containers) errs.push(...unprivilegedErrors(c, c.name, { uid: c.name === "dogwatch" ? 10001 : null }));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Cloud Run example: Knative serving.knative.dev/v1 Service (not in kubernetes-models).

async function cloudRunErrors(doc) {
  const errs = [];
  if (doc.apiVersion !== "serving.knative.dev/v1" || doc.kind !== "Service") return [`not a serving.knative.dev/v1 Service`];
  const allowed = (obj, keys, where) => {
    for (const k of Object.keys(obj ?? {})) if (!keys.includes(k)) errs.push(`${where}: unknown field ${k}`);
  };
  allowed(doc, ["apiVersion", "kind", "metadata", "spec"], "Service");
  if (typeof doc.metadata?.name !== "string" || !/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(doc.metadata.name)) errs.push("metadata.name is not a DNS label");
  allowed(doc.spec, ["template", "traffic"], "spec");
  const tpl = doc.spec?.template;
  allowed(tpl, ["metadata", "spec"], "spec.template");
  allowed(tpl?.spec, ["containers", "volumes", "containerConcurrency", "timeoutSeconds", "serviceAccountName"], "spec.template.spec");
  const containers = tpl?.spec?.containers ?? [];
  if (!containers.length) errs.push("no containers");
  const names = containers.map((c) => c.name);
  if (new Set(names).size !== names.length || names.some((n) => !n)) errs.push("container names missing or not unique");
  // Cloud Run: exactly one ingress container (the one with a port).
  if (containers.filter((c) => (c.ports ?? []).length).length !== 1) errs.push("not exactly one container with ports");
  for (const c of containers) errs.push(...(await schemaErrors(c, "v1", "Container")));
  for (const v of tpl?.spec?.volumes ?? []) errs.push(...(await schemaErrors(v, "v1", "Volume")));
  for (const [k, v] of [["containerConcurrency", tpl?.spec?.containerConcurrency], ["timeoutSeconds", tpl?.spec?.timeoutSeconds]]) {
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) errs.push(`${k} is not a non-negative integer`);
  }
  const ann = tpl?.metadata?.annotations ?? {};
  for (const [k, v] of Object.entries(ann)) if (typeof v !== "string") errs.push(`annotation ${k} is not a string`);
  let deps;
  try {
    deps = JSON.parse(ann["run.googleapis.com/container-dependencies"] ?? "");
  } catch {
    errs.push("run.googleapis.com/container-dependencies is missing or not JSON");
  }
  if (deps) {
    for (const [who, on] of Object.entries(deps)) {
      if (!names.includes(who)) errs.push(`container-dependencies names unknown container ${who}`);
      if (!Array.isArray(on)) errs.push(`container-dependencies of ${who} is not a list`);
      for (const d of on ?? []) if (!names.includes(d) || d === who) errs.push(`${who} depends on ${d}`);
    }
    const ingress = containers.find((c) => (c.ports ?? []).length)?.name;
    if (!(deps[ingress] ?? []).includes("dogwatch")) errs.push("the ingress container does not wait for dogwatch");
  }
  const dw = containers.find((c) => c.name === "dogwatch");
  if (!dw) errs.push("no dogwatch sidecar");
  else {
    if (!dw.startupProbe) errs.push("dogwatch: no startupProbe (the dependency waits on it)");
    if ((dw.ports ?? []).length) errs.push("dogwatch sidecar declares a port");
    if (!(dw.env ?? []).some((e) => e.name === "DD_EKS_FARGATE" && e.value === "true")) errs.push("dogwatch: DD_EKS_FARGATE is not true");
  }
  for (const m of containers.flatMap((c) => c.volumeMounts ?? [])) {
    if (!(tpl.spec.volumes ?? []).some((v) => v.name === m.name)) errs.push(`mount of undeclared volume ${m.name}`);
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------

function seccompErrors(profile) {
  const errs = [];
  if (profile.defaultAction !== "SCMP_ACT_ERRNO") errs.push("defaultAction is not SCMP_ACT_ERRNO");
  const allowedNames = profile.syscalls.filter((s) => s.action === "SCMP_ACT_ALLOW").flatMap((s) => s.names);
  for (const need of ["bpf", "perf_event_open"]) if (!allowedNames.includes(need)) errs.push(`${need} not allowed`);
  const never = ["ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "unshare", "setns", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "keyctl", "add_key", "request_key", "open_by_handle_at", "userfaultfd", "settimeofday", "clock_settime", "adjtimex", "setuid", "setgid", "setresuid", "setresgid", "setgroups", "chroot", "kill"];
  for (const n of never) if (allowedNames.includes(n)) errs.push(`${n} is allowed`);
  if (new Set(allowedNames).size !== allowedNames.length) errs.push("duplicate syscall names");
  return errs;
}

async function main() {
  const [baseFile, overlayFile] = process.argv.slice(2);
  if (!baseFile || !overlayFile) die("usage: kubernetes_test.mjs RENDERED_BASE RENDERED_OVERLAY");
  const seccompFile = path.join(repo, "deploy/kubernetes/seccomp/system-probe.json");
  const ctx = { unitCaps: unitCapabilities(), seCaps: selinuxCapabilities(), seccompFile };
  if (ctx.unitCaps.join() !== ctx.seCaps.join()) die(`systemd unit keeps [${ctx.unitCaps}], SELinux allows [${ctx.seCaps}]`);
  ok(`systemd unit and SELinux module agree on system-probe's capabilities [${ctx.unitCaps}]`);

  const fail = (errs, what) => {
    if (errs.length) die(`${what}:\n  ${errs.join("\n  ")}`);
    ok(what);
  };

  const rendered = { base: loadAll(baseFile), "overlays/datadog": loadAll(overlayFile) };
  for (const [name, docs] of Object.entries(rendered)) {
    const errs = [];
    for (const d of docs) errs.push(...(await schemaErrors(d)));
    fail(errs, `${name}: ${docs.length} rendered objects (${[...new Set(docs.map((d) => d.kind))].join(", ")}) match the Kubernetes schema`);
    fail(daemonSetErrors(docs, ctx), `${name}: only system-probe adds capabilities (${ctx.unitCaps}); the other containers drop ALL, run as 10001 with a read-only root; host mounts read-only; RBAC read-only`);
  }
  const site = rendered["overlays/datadog"].find((d) => d.kind === "ConfigMap" && d.data?.DD_SITE)?.data.DD_SITE;
  if (site !== "datadoghq.eu") die(`overlays/datadog renders DD_SITE=${site}`);
  ok("overlays/datadog sets DD_SITE=datadoghq.eu");

  const profile = JSON.parse(fs.readFileSync(seccompFile, "utf8"));
  fail(seccompErrors(profile), "seccomp profile: default EPERM, bpf and perf_event_open allowed, no dangerous syscall");

  const fargateFile = path.join(repo, "deploy/kubernetes/examples/eks-fargate/deployment.yaml");
  const fargate = loadAll(fargateFile);
  const fargateSchema = [];
  for (const d of fargate) fargateSchema.push(...(await schemaErrors(d)));
  fail(fargateSchema, "examples/eks-fargate matches the Kubernetes schema");
  fail(fargateErrors(fargate), "examples/eks-fargate: sidecar with DD_EKS_FARGATE, shared PID namespace, no hostPath, no system-probe, all containers unprivileged");

  const cloudRunFile = path.join(repo, "deploy/kubernetes/examples/cloud-run/service.yaml");
  const [cloudRun, ...rest] = loadAll(cloudRunFile);
  if (rest.length) die("examples/cloud-run holds more than one document");
  fail(await cloudRunErrors(cloudRun), "examples/cloud-run: Knative Service structure, containers and volumes as core/v1, container dependencies resolve");

  // Mutation self-test: each broken copy must be caught.
  const base = rendered.base;
  const podOf = (docs) => docs.find((d) => d.kind === "DaemonSet").spec.template.spec;
  const mutations = [
    ["trace-agent adds NET_RAW", (docs) => { podOf(docs).containers.find((c) => c.name === "trace-agent").securityContext.capabilities.add = ["NET_RAW"]; }],
    ["process-agent with a writable root", (docs) => { delete podOf(docs).containers.find((c) => c.name === "process-agent").securityContext.readOnlyRootFilesystem; }],
    ["agent as root", (docs) => { podOf(docs).containers.find((c) => c.name === "agent").securityContext.runAsUser = 0; }],
    ["system-probe adds SYS_ADMIN", (docs) => { podOf(docs).containers.find((c) => c.name === "system-probe").securityContext.capabilities.add.push("SYS_ADMIN"); }],
    ["/proc mounted read-write", (docs) => { podOf(docs).containers.find((c) => c.name === "process-agent").volumeMounts.find((m) => m.mountPath === "/host/proc").readOnly = false; }],
    ["a ClusterRole that lists secrets", (docs) => { docs.find((d) => d.kind === "ClusterRole").rules.push({ apiGroups: [""], resources: ["secrets"], verbs: ["list"] }); }],
    ["seccomp profile path mismatch", (docs) => { podOf(docs).containers.find((c) => c.name === "system-probe").securityContext.seccompProfile.localhostProfile = "other.json"; }],
  ];
  for (const [what, mutate] of mutations) {
    const copy = clone(base);
    mutate(copy);
    if (!daemonSetErrors(copy, ctx).length) die(`mutation not caught: ${what}`);
  }
  const badSchema = clone(base);
  podOf(badSchema).containers[0].image = 42;
  if (!(await schemaErrors(badSchema.find((d) => d.kind === "DaemonSet"))).length) die("schema validation accepted a numeric image");
  const badRun = clone(cloudRun);
  badRun.spec.template.metadata.annotations["run.googleapis.com/container-dependencies"] = '{"app":["nope"]}';
  if (!(await cloudRunErrors(badRun)).length) die("cloud-run check accepted a dependency on an unknown container");
  const badFargate = clone(fargate);
  badFargate[0].spec.template.spec.volumes.push({ name: "h", hostPath: { path: "/" } });
  if (!fargateErrors(badFargate).length) die("fargate check accepted a hostPath");
  ok(`mutation self-test: ${mutations.length + 3} broken copies were all rejected`);

  console.log(`kubernetes_test: all ${checks} checks passed`);
}

await main();
