// `podmesh import`: a normalised compose project (compose config's JSON) to the text of a stack file,
// with every part podmesh cannot express listed. Pure: no disk, no processes.
import { PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import { DNS_LABEL, ENV_NAME, IMAGE_REF, INTERFACE_NAME, isDnsName, suggestLabel } from '../../constructs/core/names.ts';
import { formatCidr, overlaps, parseCidr, parseIp, type Cidr } from '../../constructs/core/ip.ts';
import { composeProject, type ComposeMount, type ComposeNetwork, type ComposePort, type ComposeProject, type ComposeService } from './compose-model.ts';
import { Obj, Ref, identifier, print, quote, type Expr } from './source.ts';

/** What the import was asked for. */
export interface ImportOptions {
  /** Stack id (`--stack`): the file is `stacks/<stack>.ts`. */
  readonly stack: string;
  /** Compose file as the user named it, for the header and messages. */
  readonly file: string;
  /** Compose project name to use (`--project`). @default - compose's project name */
  readonly project?: string;
  /** DNS domain of the networks (`--domain`). @default - `<project>.local` */
  readonly domain?: string;
  /** Services that depend on each other call each other over mTLS (`--mtls`). */
  readonly mtls: boolean;
  /**
   * Services compose left out because none of their profiles is active, with those profiles
   * (from a second `config` run with every profile on).
   * @default - none
   */
  readonly inactive?: Readonly<Record<string, readonly string[]>>;
}

/** One thing of the compose project the generated stack does not carry as it was. */
export interface ImportNote {
  /** `services.web`, `networks.back`, `volumes.data` or `(project)`. */
  readonly where: string;
  /** What was not imported, or how it changed, and what to do. */
  readonly message: string;
}

/** The generated stack file and what it leaves out. */
export interface ImportResult {
  readonly source: string;
  /** What is not imported, or imported differently. */
  readonly notes: readonly ImportNote[];
  /** Suggestions that change nothing by themselves (a preset that could replace a service). */
  readonly hints: readonly ImportNote[];
}

/** podmesh's infrastructure presets, by the repository name of the official image. */
const PRESETS: Readonly<Record<string, string>> = { postgres: 'Postgres', redis: 'Redis', minio: 'Minio' };

/** `docker.io/library/postgres:16-alpine` → `postgres`. */
function repositoryName(image: string): string {
  const path = image.split('@')[0]!.replace(/:[\w][\w.-]*$/, '');
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Characters no unit-file line can carry (the Quadlet writer refuses them): TAB is fine. */
const UNIT_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/u;

/** Whether every word can go into a Quadlet unit. */
const carriable = (words: readonly string[]): boolean => words.every((w) => !UNIT_CONTROL.test(w));

/** Environment variable names whose values are likely credentials. */
const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)/i;

/** The engines' health check defaults (Docker and Podman agree): written out, since podmesh's own differ. */
const HEALTH_DEFAULTS = { interval: '30s', timeout: '30s', retries: 3, startPeriod: '0s' } as const;

/** Code-point order: the same on every machine, whatever its locale. */
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Short value text for a note. */
function show(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 79)}…` : s;
}

/** Go's duration text (`1m0s`, `1.5s`) in podmesh's form (`1m`, `1500ms`), or undefined. */
export function duration(go: string): string | undefined {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  if (!/^((\d+(\.\d+)?)(h|m|s|ms|us|µs|ns))+$/.test(go) && go !== '0') return undefined;
  let ms = 0;
  for (const m of go.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(m[1]) * units[m[2]!]!;
  if (!Number.isInteger(ms)) return undefined;
  if (ms === 0) return '0s';
  // A fraction of a second reads best in milliseconds alone (1.5s is 1500ms, not 1s500ms).
  if (ms % 1000 !== 0) return `${ms}ms`;
  const parts: string[] = [];
  for (const [u, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(ms / size);
    if (n > 0) parts.push(`${n}${u}`);
    ms -= n * size;
  }
  return parts.join('');
}

/** Bytes as podmesh writes sizes (`1073741824` → `1g`), in the largest unit that divides them. */
function size(bytes: string | number): string | undefined {
  const n = Number(bytes);
  if (!Number.isSafeInteger(n) || n <= 0) return undefined;
  for (const [u, f] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) if (n % f === 0) return `${n / f}${u}`;
  return `${n}b`;
}

/** The keys of a loose object that the schema does not name. */
function extraKeys(value: Record<string, unknown>, known: readonly string[]): string[] {
  return Object.keys(value).filter((k) => !known.includes(k)).sort();
}

const SERVICE_KEYS = [
  'image', 'command', 'entrypoint', 'environment', 'ports', 'expose', 'volumes', 'tmpfs', 'networks', 'depends_on', 'healthcheck',
  'restart', 'container_name', 'user', 'profiles', 'mem_limit', 'pids_limit', 'cpus', 'hostname', 'read_only', 'cap_drop',
] as const;

/** A service on its way to a construct. */
interface ServicePlan {
  readonly id: string;
  readonly compose: ComposeService;
  readonly mtls: boolean;
  readonly deps: ReadonlyArray<{ readonly target: string; readonly condition: 'healthy' | 'started' }>;
}

/**
 * The stack file for a compose project (`docker compose config --format json` output).
 * @throws PodmeshError when the JSON is not compose config's or a service cannot become a construct
 */
export function importCompose(json: unknown, options: ImportOptions): ImportResult {
  const parsed = composeProject.safeParse(unescapeDollars(json));
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw PodmeshError.at(options.file, `is not what \`docker compose config --format json\` prints: ${first.path.join('.') || '(top)'}: ${first.message}. Is the compose binary Docker Compose v2?`);
  }
  const c: ComposeProject = parsed.data;
  const notes: ImportNote[] = [];
  const hints: ImportNote[] = [];
  const problems: Issue[] = [];
  const note = (where: string, message: string) => notes.push({ where, message });
  const project = options.project ?? c.name;
  if (!DNS_LABEL.test(project)) problems.push({ path: options.file, message: `project name ${JSON.stringify(project)} is not a lower-case DNS label. Give one with --project, e.g. --project ${suggestLabel(project)}.` });
  const domain = options.domain ?? `${project}.local`;
  if (!isDnsName(domain)) problems.push({ path: options.file, message: `domain ${JSON.stringify(domain)} is not a DNS name. Give one with --domain, e.g. --domain ${suggestLabel(project)}.local.` });

  for (const k of extraKeys(c, ['name', 'services', 'networks', 'volumes'])) note(`(project)`, `top-level ${k} ${show(c[k])} is not expressible in podmesh: not imported`);
  for (const [name, profiles] of Object.entries(options.inactive ?? {}).sort(([a], [b]) => byName(a, b))) {
    note(`services.${name}`, `not imported: none of its profiles (${profiles.join(', ')}) is active. Run with COMPOSE_PROFILES=${profiles[0] ?? ''} to import it`);
  }

  const taken = new Set<string>();
  const services = c.services ?? {};
  const serviceNames = Object.keys(services).sort();

  // Service ids: compose names that are not DNS labels get one (they become DNS names in podmesh).
  const ids = new Map<string, string>();
  const used = new Set(serviceNames.filter((n) => DNS_LABEL.test(n)));
  for (const name of serviceNames) {
    if (DNS_LABEL.test(name)) {
      ids.set(name, name);
      continue;
    }
    let id = suggestLabel(name);
    for (let n = 2; used.has(id); n++) id = `${suggestLabel(name)}-${n}`;
    used.add(id);
    ids.set(name, id);
    note(`services.${name}`, `renamed to ${id}: podmesh service names are DNS labels (lower-case letters, digits, inner hyphens)${isDnsName(name) ? `; ${name} stays an alias` : ''}`);
  }

  // Networks, with a subnet for those compose leaves to the engine.
  // A project whose services all leave compose's networks (network_mode) still needs one in podmesh.
  const networks = c.networks && Object.keys(c.networks).length > 0 ? c.networks : { default: { name: `${c.name}_default` } };
  const networkNames = Object.keys(networks).sort();
  const givenSubnets: Cidr[] = [];
  const subnetOf = new Map<string, { subnet?: string; gateway?: string }>();
  for (const name of networkNames) {
    const n = networks[name]!;
    const configs = n.ipam?.config ?? [];
    const v4 = configs.find((cfg) => cfg.subnet !== undefined && parseCidr(cfg.subnet).ok);
    if (v4?.subnet) {
      const r = parseCidr(v4.subnet);
      if (r.ok) givenSubnets.push(r.cidr);
    }
    subnetOf.set(name, { subnet: v4?.subnet, gateway: v4?.gateway });
  }
  const allocated: Cidr[] = [...givenSubnets];
  const networkVars = new Map<string, string>();
  const networkStatements: string[] = [];
  const multiNet = networkNames.length > 1;
  // Bridges podmesh names after their network, taken before any shortened name is chosen.
  const bridges = new Set<string>(networkNames.map((n) => networks[n]!.driver_opts?.['com.docker.network.bridge.name'] ?? networks[n]!.name ?? `${c.name}_${n}`).filter((b) => INTERFACE_NAME.test(b)));
  for (const name of networkNames) {
    const n = networks[name]!;
    const where = `networks.${name}`;
    let { subnet, gateway } = subnetOf.get(name)!;
    if (subnet === undefined) {
      for (let i = 0; i < 256; i++) {
        const candidate = parseCidr(`10.89.${i}.0/24`);
        if (candidate.ok && !allocated.some((a) => overlaps(a, candidate.cidr))) {
          subnet = formatCidr(candidate.cidr);
          allocated.push(candidate.cidr);
          break;
        }
      }
      if (subnet === undefined) {
        problems.push({ path: `${options.file} ${where}`, message: 'has no IPv4 subnet and none of 10.89.0.0/24-10.89.255.0/24 is free. Give it one under ipam.config.' });
        continue;
      }
      note(where, `subnet ${subnet} chosen: compose leaves it to the engine, podmesh needs one (change it in the stack if it clashes)`);
    }
    handleNetworkExtras(n, where, note);
    const props: [string, Expr][] = [['name', n.name ?? `${c.name}_${name}`], ['subnet', subnet]];
    if (gateway !== undefined) props.push(['gateway', gateway]);
    const networkName = n.name ?? `${c.name}_${name}`;
    let bridge = n.driver_opts?.['com.docker.network.bridge.name'];
    if (bridge === undefined && !INTERFACE_NAME.test(networkName)) {
      // podmesh names the bridge after the network; a Linux interface name has at most 15 characters.
      const base = networkName.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 15) || 'podmesh';
      bridge = base;
      for (let i = 2; bridges.has(bridge); i++) bridge = `${base.slice(0, 15 - String(i).length)}${i}`;
      note(where, `bridge interface named ${bridge}: compose leaves the name to the engine, podmesh names it and "${networkName}" is longer than a Linux interface name may be`);
    }
    if (bridge !== undefined) {
      bridges.add(bridge);
      props.push(['bridgeName', bridge]);
    }
    props.push(['domain', domain]);
    if (n.internal) props.push(['internal', true]);
    const variable = identifier(name, 'Net', taken);
    networkVars.set(name, variable);
    const call = `new Network(stack, ${quote(name)}, ${print(new Obj(props), 2, 40)});`;
    networkStatements.push(multiNet ? `  const ${variable} = ${call}` : `  ${call}`);
  }

  // Volumes.
  const volumes = c.volumes ?? {};
  const volumeVars = new Map<string, string>();
  const volumeStatements: string[] = [];
  for (const name of Object.keys(volumes).sort()) {
    const v = volumes[name]!;
    for (const k of extraKeys(v, ['name'])) note(`volumes.${name}`, `${k} ${show(v[k])} is not expressible in podmesh (it creates local volumes): not imported`);
    const variable = identifier(name, 'Volume', taken);
    volumeVars.set(name, variable);
    volumeStatements.push(`  const ${variable} = new Volume(stack, ${quote(name)}, { name: ${quote(v.name ?? `${c.name}_${name}`)} });`);
  }

  // Which services are mTLS Services: with --mtls, both ends of every depends_on edge.
  const mtlsServices = new Set<string>();
  if (options.mtls) {
    for (const name of serviceNames) {
      for (const target of Object.keys(services[name]!.depends_on ?? {})) {
        if (services[target]) mtlsServices.add(name).add(target);
      }
    }
  }

  const plans = new Map<string, ServicePlan>();
  const joined = new Set<string>();
  for (const name of serviceNames) {
    const s = services[name]!;
    const deps: { target: string; condition: 'healthy' | 'started' }[] = [];
    for (const [target, d] of Object.entries(s.depends_on ?? {}).sort(([a], [b]) => byName(a, b))) {
      const where = `services.${name}`;
      if (!services[target]) {
        note(where, `depends_on ${target}: not a service of the imported project (inactive profile?): dropped`);
        continue;
      }
      let condition: 'healthy' | 'started' = 'started';
      if (d.condition === 'service_healthy') condition = 'healthy';
      else if (d.condition === 'service_completed_successfully') note(where, `depends_on ${target}: condition service_completed_successfully is not expressible in podmesh: waits for ${target} to start instead`);
      else if (d.condition !== 'service_started') note(where, `depends_on ${target}: condition ${d.condition} is not expressible in podmesh: waits for ${target} to start instead`);
      if (d.required === false) note(where, `depends_on ${target}: required: false is not expressible in podmesh: the dependency is required`);
      if (d.restart === true) note(where, `depends_on ${target}: restart: true is not expressible in podmesh: not imported`);
      for (const k of extraKeys(d, ['condition', 'required', 'restart'])) note(where, `depends_on ${target}: ${k} ${show(d[k])} is not expressible in podmesh: not imported`);
      deps.push({ target, condition });
    }
    plans.set(name, { id: ids.get(name)!, compose: s, mtls: mtlsServices.has(name), deps });
  }

  // Dependencies first, then by name: the constructs they reference exist when used.
  const order: string[] = [];
  const placed = new Set<string>();
  while (order.length < serviceNames.length) {
    const next = serviceNames.find((n) => !placed.has(n) && plans.get(n)!.deps.every((d) => placed.has(d.target)));
    if (next === undefined) {
      problems.push({ path: options.file, message: `depends_on forms a cycle among ${serviceNames.filter((n) => !placed.has(n)).join(', ')}. Break it in the compose file.` });
      break;
    }
    order.push(next);
    placed.add(next);
  }
  const referenced = new Set(serviceNames.flatMap((n) => plans.get(n)!.deps.map((d) => d.target)));
  const serviceVars = new Map<string, string>();
  for (const name of order) if (referenced.has(name)) serviceVars.set(name, identifier(name, '', taken));

  const classes = new Set<'InfraService' | 'Service'>();
  const entrypointClasses = new Set<'InfraService' | 'Service'>();
  const serviceStatements: string[] = [];
  for (const name of order) {
    const plan = plans.get(name)!;
    const s = plan.compose;
    const where = `services.${name}`;
    const props: [string, Expr][] = [];
    const say = (message: string) => note(where, message);

    if (s.image === undefined) {
      problems.push({ path: `${options.file} ${where}`, message: 'has no image (only build). podmesh runs images: build and push it, then set image: in the compose file.' });
      continue;
    }
    if (!IMAGE_REF.test(s.image)) {
      problems.push({ path: `${options.file} ${where}`, message: `image ${JSON.stringify(s.image)} is not an image reference podmesh accepts (lower-case repository path, e.g. "docker.io/library/nginx:1.27"). Fix it in the compose file.` });
      continue;
    }
    props.push(['image', s.image]);
    const preset = PRESETS[repositoryName(s.image)];
    if (preset) {
      hints.push({
        where,
        message: `image ${s.image} is imported as a plain ${plan.mtls ? 'Service' : 'InfraService'}, not as podmesh's ${preset} preset: the preset generates credentials (a password file, one user per client) that this project's clients do not read. Switch to ${preset} once they do`,
      });
    }
    const aliases: string[] = [];
    if (multiNet || s.networks !== undefined) {
      const chosen = chooseNetwork(s, networks, networkNames);
      if (chosen !== undefined) joined.add(chosen);
      if (chosen !== undefined) {
        const attachment = s.networks?.[chosen] ?? null;
        if (multiNet) props.push(['network', new Ref(networkVars.get(chosen)!)]);
        const others = Object.keys(s.networks ?? {}).filter((n) => n !== chosen).sort();
        if (others.length > 0) say(`networks ${others.join(', ')}: a podmesh workload joins one network; joins ${chosen} only`);
        if (attachment) {
          if (attachment.ipv4_address !== undefined) props.push(['ip', attachment.ipv4_address]);
          for (const a of attachment.aliases ?? []) {
            if (isDnsName(a)) aliases.push(a);
            else say(`networks.${chosen}.aliases ${show(a)} is not a DNS name: not imported`);
          }
          for (const k of extraKeys(attachment, ['aliases', 'ipv4_address'])) say(`networks.${chosen}.${k} ${show(attachment[k])} is not expressible in podmesh: not imported`);
        }
      }
    }
    // A renamed service keeps answering to its compose name where that is a DNS name (`api.v1`).
    if (plan.id !== name && isDnsName(name) && !aliases.includes(name)) aliases.push(name);
    if (aliases.length > 0) props.push(['aliases', aliases]);
    if (s.container_name !== undefined) {
      if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(s.container_name)) props.push(['containerName', s.container_name]);
      else say(`container_name ${show(s.container_name)} is not a name podmesh accepts: not imported`);
    }
    if (s.hostname !== undefined && s.hostname !== plan.id) say(`hostname ${show(s.hostname)}: podmesh sets the hostname to the service name (${plan.id}): not imported`);
    if (s.user !== undefined) {
      if (/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(s.user)) props.push(['user', s.user]);
      else say(`user ${show(s.user)} is not "uid[:gid]" or a name: not imported`);
    }
    const ports = portProps(s, say);
    if (ports.length > 0) props.push(['ports', new Obj(ports)]);
    const env = environmentProps(s, say);
    if (env.length > 0) props.push(['environment', new Obj(env)]);
    if (s.command) {
      if (carriable(s.command)) props.push(['command', s.command]);
      else say(`command ${show(s.command)} holds a line break or another control character, which podmesh's Quadlet units cannot carry: not imported (put the script in a mounted file)`);
    }
    const { mounts, tmpfs } = mountProps(s, volumeVars, say);
    if (mounts.length > 0) props.push(['mounts', mounts]);
    if (tmpfs.length > 0) props.push(['tmpfs', tmpfs]);

    // Dependencies: with --mtls, each on another mTLS service is a call.
    const depends: Expr[] = [];
    const calls: Expr[] = [];
    for (const d of plan.deps) {
      const ref = new Ref(serviceVars.get(d.target)!);
      if (plan.mtls && mtlsServices.has(d.target)) {
        calls.push(ref);
        const hasCheck = healthcheckOf(services[d.target]!) !== undefined;
        const implied = hasCheck ? 'healthy' : 'started';
        if (implied !== d.condition) say(`depends_on ${d.target}: condition service_${d.condition} becomes a call, which waits for ${d.target} to be ${implied}`);
      } else {
        depends.push(d.condition === 'started' ? new Obj([['service', ref], ['condition', 'started']]) : new Obj([['service', ref], ['condition', 'healthy']]));
      }
    }
    if (depends.length > 0) props.push(['dependsOn', depends]);
    if (calls.length > 0) props.push(['calls', calls]);

    const health = healthcheckProps(s, say);
    if (health !== undefined) props.push(['healthcheck', health]);
    else if (plan.mtls) props.push(['healthcheck', false]);
    props.push(['restart', restartOf(s, say)]);
    const resources: [string, Expr][] = [];
    if (s.mem_limit !== undefined) {
      const m = size(s.mem_limit);
      if (m) resources.push(['memory', m]);
      else say(`mem_limit ${show(s.mem_limit)} is not a size podmesh accepts: not imported`);
    }
    if (s.cpus !== undefined && Number(s.cpus) > 0) resources.push(['cpus', Number(s.cpus)]);
    if (s.pids_limit !== undefined && s.pids_limit > 0) resources.push(['pids', s.pids_limit]);
    if (resources.length > 0) props.push(['resources', new Obj(resources)]);
    if (s.profiles && s.profiles.length > 0) say(`profiles ${show(s.profiles)}: podmesh has no profiles: the service is always part of the stack`);
    if (s.read_only === false) say('read_only false: podmesh mounts the root filesystem read-only unless security.writableRootFilesystem says why not: not imported');
    if (s.cap_drop !== undefined && !(s.cap_drop as unknown[]).every((cap) => cap === 'ALL')) say(`cap_drop ${show(s.cap_drop)}: podmesh drops every capability: kept stricter`);
    for (const k of extraKeys(s, SERVICE_KEYS)) say(`${k} ${show(s[k])} is not expressible in podmesh: not imported`);
    if (plan.mtls) props.push(['hyperf', false]);

    const kind = plan.mtls ? 'Service' : 'InfraService';
    let entry = s.entrypoint ?? undefined;
    if (entry && !carriable(entry)) {
      say(`entrypoint ${show(entry)} holds a line break or another control character, which podmesh's Quadlet units cannot carry: not imported (put the script in a mounted file)`);
      entry = undefined;
    }
    if (plan.mtls) {
      // The mTLS listener needs a port of its own.
      const usedPorts = new Set(ports.map(([, v]) => (typeof v === 'number' ? v : Number((v as Obj).entries.find(([k]) => k === 'port')?.[1]))));
      let mtlsPort = 8443;
      while (usedPorts.has(mtlsPort)) mtlsPort += 1000;
      if (mtlsPort !== 8443) {
        props.push(['mtls', new Obj([['port', mtlsPort]])]);
        say(`mTLS listener on container port ${mtlsPort}: the service already uses 8443, podmesh's default`);
      }
    }
    const ctor = entry ? `new ${kind === 'Service' ? 'ServiceWithEntrypoint' : 'InfraWithEntrypoint'}(stack, ${quote(plan.id)}, ${print(entry, 2)}, ` : `new ${kind}(stack, ${quote(plan.id)}, `;
    classes.add(kind);
    if (entry) entrypointClasses.add(kind);
    const variable = serviceVars.get(name);
    const head = variable ? `  const ${variable} = ${ctor}` : `  ${ctor}`;
    serviceStatements.push(`${head}${print(new Obj(props), 2, head.length)});`);
  }

  for (const n of networkNames) {
    if (!joined.has(n) && (multiNet || serviceNames.length === 0)) note(`networks.${n}`, 'no service joins it in podmesh (each service joins one network): podmesh leaves it out of the output');
  }
  if (problems.length > 0) throw new PodmeshError(problems);
  const source = emit(options, project, { networks: networkStatements, volumes: volumeStatements, services: serviceStatements }, classes, entrypointClasses, notes, hints, volumeVars.size > 0);
  return { source, notes, hints };
}

/**
 * compose config prints values ready to be read again, with a literal `$` written `$$`; podmesh's
 * renderer escapes `$` itself, so the import holds the values as the container sees them.
 */
function unescapeDollars(v: unknown): unknown {
  if (typeof v === 'string') return v.replaceAll('$$', '$');
  if (Array.isArray(v)) return v.map(unescapeDollars);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unescapeDollars(x)]));
  return v;
}

/**
 * The network a service joins: one where it has a static address, preferring one that is not
 * internal (published ports need a way out), else its first by name.
 */
function chooseNetwork(s: ComposeService, networks: Readonly<Record<string, ComposeNetwork>>, networkNames: readonly string[]): string | undefined {
  const attached = Object.keys(s.networks ?? {}).sort();
  if (attached.length === 0) return networkNames.includes('default') ? 'default' : networkNames[0];
  const rank = (n: string) => (s.networks?.[n]?.ipv4_address !== undefined ? 0 : 2) + (networks[n]?.internal ? 1 : 0);
  return [...attached].sort((a, b) => rank(a) - rank(b) || byName(a, b))[0];
}

/** What of a network's settings podmesh cannot carry. */
function handleNetworkExtras(n: ComposeNetwork, where: string, note: (where: string, message: string) => void): void {
  if (n.driver !== undefined && n.driver !== 'bridge') note(where, `driver ${show(n.driver)}: podmesh networks are bridges: not imported`);
  for (const [k, v] of Object.entries(n.driver_opts ?? {}).sort(([a], [b]) => byName(a, b))) {
    if (k !== 'com.docker.network.bridge.name') note(where, `driver_opts ${k}=${show(v)} is not expressible in podmesh: not imported`);
  }
  const configs = n.ipam?.config ?? [];
  const v4 = configs.findIndex((cfg) => cfg.subnet !== undefined && parseCidr(cfg.subnet).ok);
  configs.forEach((cfg, i) => {
    if (i !== v4) note(where, `ipam.config ${show(cfg)}: podmesh networks have one IPv4 subnet: not imported`);
    else for (const k of extraKeys(cfg, ['subnet', 'gateway'])) note(where, `ipam.config.${k} ${show(cfg[k])} is not expressible in podmesh: not imported`);
  });
  for (const k of extraKeys(n.ipam ?? {}, ['config'])) note(where, `ipam.${k} ${show(n.ipam?.[k])} is not expressible in podmesh: not imported`);
  for (const k of extraKeys(n, ['name', 'driver', 'driver_opts', 'internal', 'ipam'])) note(where, `${k} ${show(n[k])} is not expressible in podmesh: not imported`);
}

/** `ports` and `expose` as podmesh named ports. */
function portProps(s: ComposeService, say: (m: string) => void): [string, Expr][] {
  const out: [string, Expr][] = [];
  const names = new Set<string>();
  const nameFor = (p: { target: number; protocol: string; name?: string }): string => {
    let base = p.name !== undefined && /^[a-z][a-z0-9-]*$/.test(p.name) ? p.name : `${p.protocol}-${p.target}`;
    let n = base;
    for (let i = 2; names.has(n); i++) n = `${base}-${i}`;
    names.add(n);
    return n;
  };
  const seen = new Set<string>();
  for (const p of s.ports ?? []) {
    const protocol = p.protocol ?? 'tcp';
    const label = `ports ${p.published ?? ''}${p.published ? ':' : ''}${p.target}/${protocol}`;
    if (protocol !== 'tcp' && protocol !== 'udp') {
      say(`${label}: protocol ${protocol} is not expressible in podmesh (tcp, udp): not imported`);
      continue;
    }
    for (const k of extraKeys(p, ['target', 'published', 'protocol', 'host_ip', 'name', 'mode'])) say(`${label}: ${k} ${show(p[k as keyof ComposePort])} is not expressible in podmesh: not imported`);
    if (p.mode !== undefined && p.mode !== 'ingress') say(`${label}: mode ${p.mode} is not expressible in podmesh: not imported`);
    const fields: [string, Expr][] = [['port', p.target]];
    if (protocol === 'udp') fields.push(['protocol', 'udp']);
    if (p.published === undefined || p.published === '') {
      say(`${label}: published on a random host port, podmesh publishes fixed ports only: kept as a container port`);
    } else if (!/^\d+$/.test(p.published)) {
      say(`${label}: a range of host ports (${p.published}) for one container port is not expressible in podmesh: kept as a container port`);
    } else {
      const published = Number(p.published);
      fields.push(['publish', published === p.target ? true : published]);
      if (p.host_ip !== undefined) {
        if (parseIp(p.host_ip) !== undefined) fields.push(['hostIp', p.host_ip]);
        else say(`${label}: host_ip ${show(p.host_ip)} is not an IPv4 address: binds every address instead`);
      }
    }
    if (p.name !== undefined && !/^[a-z][a-z0-9-]*$/.test(p.name)) say(`${label}: name ${show(p.name)} is not a podmesh port name: named ${protocol}-${p.target}`);
    seen.add(`${p.target}/${protocol}`);
    out.push([nameFor({ target: p.target, protocol, name: p.name }), fields.length === 1 ? p.target : new Obj(fields)]);
  }
  for (const e of s.expose ?? []) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(String(e));
    if (!m) {
      say(`expose ${show(e)} is not a port podmesh understands: not imported`);
      continue;
    }
    const protocol = m[3] ?? 'tcp';
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    for (let target = first; target <= last && target - first < 1000; target++) {
      if (seen.has(`${target}/${protocol}`)) continue;
      seen.add(`${target}/${protocol}`);
      out.push([nameFor({ target, protocol }), protocol === 'udp' ? new Obj([['port', target], ['protocol', 'udp']]) : target]);
    }
  }
  return out;
}

/** `environment` (env files already merged in by compose config). */
function environmentProps(s: ComposeService, say: (m: string) => void): [string, Expr][] {
  const out: [string, Expr][] = [];
  for (const [name, value] of Object.entries(s.environment ?? {}).sort(([a], [b]) => byName(a, b))) {
    if (!ENV_NAME.test(name)) {
      say(`environment ${name}: not a variable name podmesh accepts (letters, digits, "_"): not imported`);
      continue;
    }
    if (value === null) {
      say(`environment ${name}: no value (compose passes the value from its own environment): not imported, give it a value in the stack`);
      continue;
    }
    if (UNIT_CONTROL.test(value)) {
      say(`environment ${name}: the value holds a line break or another control character, which podmesh's Quadlet units cannot carry: not imported (use a mounted file)`);
      continue;
    }
    if (SECRET_NAME.test(name)) say(`environment ${name} looks like a secret: kept as a plain value, as in the compose project (it is written to out/); podmesh generates secrets only for Postgres, Redis and Minio`);
    out.push([name, value]);
  }
  return out;
}

/** `volumes` and `tmpfs` as podmesh mounts and tmpfs entries. */
function mountProps(s: ComposeService, volumeVars: ReadonlyMap<string, string>, say: (m: string) => void): { mounts: Expr[]; tmpfs: Expr[] } {
  const mounts: Expr[] = [];
  const tmpfs: Expr[] = [];
  const badPath = (p: string) => /[:,\x00-\x1f\x7f]/.test(p);
  for (const m of s.volumes ?? []) {
    const label = `volumes ${m.source ?? '(anonymous)'}:${m.target}`;
    const extras = (keys: readonly string[], sub?: Record<string, unknown>, prefix = '') => {
      for (const k of extraKeys(sub ?? {}, keys)) say(`${label}: ${prefix}${k} ${show(sub![k])} is not expressible in podmesh: not imported`);
    };
    extras(['type', 'source', 'target', 'read_only', 'bind', 'volume', 'tmpfs'], m);
    const readOnly: [string, Expr][] = m.read_only ? [['readOnly', true]] : [];
    if (badPath(m.target) || !m.target.startsWith('/')) {
      say(`${label}: target must be an absolute path without ":" or ",": not imported`);
      continue;
    }
    if (m.type === 'bind' && m.source !== undefined) {
      extras(['create_host_path'], m.bind, 'bind.');
      if (badPath(m.source)) {
        say(`${label}: host paths with ":" or "," are not expressible in podmesh: not imported`);
        continue;
      }
      mounts.push(new Obj([['hostPath', m.source], ['target', m.target], ...readOnly]));
    } else if (m.type === 'volume' && m.source !== undefined && volumeVars.has(m.source)) {
      extras([], m.volume, 'volume.');
      mounts.push(new Obj([['volume', new Ref(volumeVars.get(m.source)!)], ['target', m.target], ...readOnly]));
    } else if (m.type === 'volume' && m.source === undefined) {
      say(`${label}: anonymous volumes are not expressible in podmesh: not imported (name it under volumes:)`);
    } else if (m.type === 'tmpfs') {
      const fields: [string, Expr][] = [['path', m.target]];
      const sz = m.tmpfs?.size !== undefined ? size(m.tmpfs.size) : undefined;
      if (sz) fields.push(['size', sz]);
      if (m.tmpfs?.mode !== undefined) fields.push(['mode', m.tmpfs.mode.toString(8)]);
      extras(['size', 'mode'], m.tmpfs, 'tmpfs.');
      tmpfs.push(fields.length === 1 ? m.target : new Obj(fields));
    } else {
      say(`${label}: mounts of type ${m.type} are not expressible in podmesh: not imported`);
    }
  }
  const list = s.tmpfs === undefined ? [] : typeof s.tmpfs === 'string' ? [s.tmpfs] : s.tmpfs;
  for (const t of list) {
    const [path, opts] = t.split(/:(.*)/s) as [string, string | undefined];
    if (opts) say(`tmpfs ${t}: options ${opts} are not expressible as given: mounted without them`);
    tmpfs.push(path);
  }
  return { mounts, tmpfs };
}

/** The health check test of a service, when it has one podmesh can run. */
function healthcheckOf(s: ComposeService): readonly string[] | undefined {
  const h = s.healthcheck;
  if (!h || h.disable || !h.test || h.test[0] === 'NONE') return undefined;
  return h.test;
}

/** `healthcheck` as podmesh's, with the engine's defaults written out. */
function healthcheckProps(s: ComposeService, say: (m: string) => void): Expr | undefined {
  const h = s.healthcheck;
  if (!h) return undefined;
  if (h.disable || h.test?.[0] === 'NONE') {
    say('healthcheck disabled: podmesh writes no health check, so a HEALTHCHECK of the image itself still applies');
    return false;
  }
  for (const k of extraKeys(h, ['test', 'interval', 'timeout', 'retries', 'start_period', 'disable'])) say(`healthcheck.${k} ${show(h[k])} is not expressible in podmesh: not imported`);
  const test = h.test;
  if (!test || test.length < 2 || (test[0] !== 'CMD' && test[0] !== 'CMD-SHELL')) {
    say(`healthcheck ${show(h)}: without its own test (the image's) it is not expressible in podmesh: not imported`);
    return undefined;
  }
  if (!carriable(test)) {
    say(`healthcheck test ${show(test)} holds a line break or another control character, which podmesh's Quadlet units cannot carry: not imported`);
    return undefined;
  }
  const command: Expr = test[0] === 'CMD-SHELL' ? test.slice(1).join(' ') : test.slice(1);
  const time = (field: string, v: string | undefined, fallback: string): string => {
    if (v === undefined) return fallback;
    const d = duration(v);
    if (d !== undefined && d !== '0s') return d;
    say(`healthcheck.${field} ${show(v)} is not a duration podmesh accepts: ${fallback} instead`);
    return fallback;
  };
  return new Obj([
    ['command', command],
    ['interval', time('interval', h.interval, HEALTH_DEFAULTS.interval)],
    ['timeout', time('timeout', h.timeout, HEALTH_DEFAULTS.timeout)],
    ['retries', h.retries !== undefined && h.retries >= 1 ? h.retries : HEALTH_DEFAULTS.retries],
    ['startPeriod', h.start_period === undefined ? HEALTH_DEFAULTS.startPeriod : (duration(h.start_period) ?? HEALTH_DEFAULTS.startPeriod)],
  ]);
}

/** compose's restart policy as podmesh's (compose's default is `no`, podmesh's `unless-stopped`). */
function restartOf(s: ComposeService, say: (m: string) => void): string {
  const r = s.restart ?? 'no';
  if (r === 'no' || r === 'always' || r === 'unless-stopped' || r === 'on-failure') return r;
  const m = /^on-failure:(\d+)$/.exec(r);
  if (m) {
    say(`restart ${r}: a retry limit is not expressible in podmesh: on-failure without a limit`);
    return 'on-failure';
  }
  say(`restart ${show(r)} is not a restart policy podmesh knows: no instead`);
  return 'no';
}

/** The stack file. */
function emit(
  options: ImportOptions,
  project: string,
  body: { networks: readonly string[]; volumes: readonly string[]; services: readonly string[] },
  classes: ReadonlySet<string>,
  entrypointClasses: ReadonlySet<string>,
  notes: readonly ImportNote[],
  hints: readonly ImportNote[],
  anyVolume: boolean,
): string {
  const base = options.file.split(/[\\/]/).pop() ?? options.file;
  const header = [
    `// Imported from ${base} by \`podmesh import\` (through \`docker compose config\`). Review it, then run \`podmesh synth\`.`,
    '// podmesh adds by design: its secure defaults (read-only root, capabilities dropped, no-new-privileges, memory and',
    '// pids limits, userns auto), a <service>.<domain> alias, a static address, a hostname and a container name per service.',
  ];
  if (notes.length > 0) {
    header.push('//', '// Not imported or changed (podmesh cannot express them as they were):');
    for (const n of notes) header.push(`//   ${n.where}: ${n.message}`.replace(/[\r\n]/g, ' '));
  }
  if (hints.length > 0) {
    header.push('//', '// Hints:');
    for (const n of hints) header.push(`//   hint: ${n.where}: ${n.message}`.replace(/[\r\n]/g, ' '));
  }
  const names = new Set(['Host', 'Network', 'Stack', ...classes]);
  if (anyVolume) names.add('Volume');
  // The subclasses for entrypoints take their base's props type.
  const types = [...entrypointClasses].sort().map((k) => `type ${k}Props`);
  const imports = ['type App', ...[...names].sort(), ...types];
  const lines = [...header, '', `import { ${imports.join(', ')} } from 'podmesh';`, ''];
  if (entrypointClasses.has('InfraService')) lines.push(...entrypointClass('InfraWithEntrypoint', 'InfraService', 'InfraServiceProps'), '');
  if (entrypointClasses.has('Service')) lines.push(...entrypointClass('ServiceWithEntrypoint', 'Service', 'ServiceProps'), '');
  lines.push(
    'export default (app: App): void => {',
    `  const stack = new Stack(app, ${quote(options.stack)}, { project: ${quote(project)} });`,
    "  new Host(stack, 'local');",
    ...body.networks,
    ...body.volumes,
    ...body.services,
    '};',
    '',
  );
  return lines.join('\n');
}

/** A subclass that replaces the image's entrypoint (compose `entrypoint:`), as podmesh's presets do. */
function entrypointClass(name: string, base: string, props: string): string[] {
  return [
    `/** ${base === 'InfraService' ? 'An' : 'A'} ${base} that replaces its image's entrypoint (compose \`entrypoint:\`). */`,
    `class ${name} extends ${base} {`,
    '  private readonly entry: readonly string[];',
    '',
    `  constructor(scope: Stack, id: string, entry: readonly string[], props: ${props}) {`,
    '    super(scope, id, props);',
    '    this.entry = entry;',
    '  }',
    '',
    '  override entrypoint(): readonly string[] {',
    '    return this.entry;',
    '  }',
    '}',
  ];
}
