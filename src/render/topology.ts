// TOPOLOGY.md: the stack as a Mermaid diagram and identity tables, the first file a person reads.
import { POSTGRES_ROLES_FILE } from '../resolve/resolve.ts';
import { MINIO_USERS_FILE } from '../resolve/mounts.ts';
import { tunnelFlows } from './firewall.ts';
import type { ResolvedService, ResolvedStack } from '../resolve/model.ts';
import { formatPodmanVersion } from '../../constructs/core/podman-version.ts';
import { canNameBridge } from './quadlet/downgrade.ts';
import type { RenderedFile } from './file.ts';
import { generatedHeader } from './header.ts';
import { remoteDependencies } from './remote-wait.ts';
import { DATA_DIR, hostFolderPath } from '../layout.ts';

/** Name of the topology document inside `out/<stack>/`. */
export const TOPOLOGY_FILE = 'TOPOLOGY.md';

/** Renders `TOPOLOGY.md` for a stack (it stays in `out/`: no host installs it). */
export function renderTopology(stack: ResolvedStack): Map<string, RenderedFile> {
  return new Map([[TOPOLOGY_FILE, { content: topologyMarkdown(stack) }]]);
}

/** The text of `TOPOLOGY.md`. */
export function topologyMarkdown(stack: ResolvedStack): string {
  const lines: string[] = [];
  lines.push(`<!-- ${generatedHeader(stack.name).join(' ')} -->`, '', `# ${stack.name}`, '');
  if (stack.description) lines.push(stack.description, '');
  const apps = stack.services.filter((s) => s.kind === 'app');
  const infra = stack.services.filter((s) => s.kind === 'infra');
  lines.push(
    `Project \`${stack.project}\`: ${stack.hosts.length} ${plural(stack.hosts.length, 'host')}, ` +
      `${stack.services.length} services (${apps.length} behind mTLS, ${infra.length} infrastructure).`,
    '',
    '```mermaid',
    ...diagramLines(stack),
    '```',
    '',
  );
  if (apps.length > 0) {
    lines.push('## Service identity', '', '| Service | DNS Name | Certificate CN | Internal URL | IP | Host |', '|---|---|---|---|---|---|');
    for (const s of apps) {
      lines.push(`| ${s.serviceName} | \`${s.dnsName}\` | \`${s.dnsName}\` | \`${s.mtls!.url}\` | ${s.ip} | ${s.host} |`);
    }
    lines.push('');
  }
  if (apps.length > 0) {
    lines.push(
      '## Call policy',
      '',
      'Who may call whom over mTLS; every other caller is refused (`MTLS_ALLOWED_SPIFFE_IDS`, `MTLS_ALLOWED_CLIENTS`).',
      '',
      '| Service | May call | Accepts client certificates of |',
      '|---|---|---|',
    );
    const dns = new Map(stack.services.map((s) => [s.name, s.dnsName]));
    for (const s of apps) {
      const calls = s.calls.map((c) => `\`${dns.get(c)}\``).join(', ') || '-';
      const callers = s.callers.map((c) => `\`${dns.get(c)}\``).join(', ') || 'nobody';
      lines.push(`| ${s.name} | ${calls} | ${callers} |`);
    }
    lines.push('', ...unorderedCallLines(stack));
  }
  if (infra.length > 0) {
    lines.push('## Infrastructure services (no mTLS)', '', '| Service | DNS Name | Internal URL | IP | Host |', '|---|---|---|---|---|');
    for (const s of infra) {
      const first = s.ports[0];
      const url = first ? `${s.dnsName}:${first.port}` : s.dnsName;
      lines.push(`| ${s.serviceName} | \`${s.dnsName}\` | \`${url}\` | ${s.ip} | ${s.host} |`);
    }
    lines.push('');
  }
  lines.push('## Networks', '', '| Network | Domain | Subnet | Host | Slice | Gateway | Bridge |', '|---|---|---|---|---|---|---|');
  for (const n of stack.networks) {
    for (const seg of n.segments) {
      lines.push(`| ${n.name} | \`${n.domain}\` | ${n.subnet} | ${seg.host} | ${seg.subnet} | ${seg.gateway} | ${bridgeCell(stack, n.bridgeName, seg.host)} |`);
    }
  }
  lines.push(...crossHostLines(stack), ...firewallLines(stack), ...hostFolderLines(stack));
  lines.push('', '## Ports', '', '| Service | Port | Name | Published on host |', '|---|---|---|---|');
  for (const s of stack.services) {
    for (const p of s.ports) {
      const pub = p.publish ? `${p.publish.hostIp ?? '0.0.0.0'}:${p.publish.hostPort}` : '-';
      lines.push(`| ${s.name} | ${p.port}/${p.protocol} | ${p.name} | ${pub} |`);
    }
  }
  lines.push(...credentialLines(stack), ...securityLines(stack), '');
  return lines.join('\n');
}

/**
 * The stack as a Mermaid flowchart (hosts, networks, services, published ports, calls and
 * dependencies), one statement a line with a final newline: TOPOLOGY.md's diagram, and the
 * dashboard's.
 */
export function topologyDiagram(stack: ResolvedStack): string {
  return `${diagramLines(stack).join('\n')}\n`;
}

function diagramLines(stack: ResolvedStack): string[] {
  const out = ['flowchart TB'];
  const published = stack.services.filter((s) => s.ports.some((p) => p.publish));
  if (published.length > 0) out.push('  internet(("Internet"))');
  for (const h of stack.hosts) {
    const onHost = stack.services.filter((s) => s.host === h.name);
    if (onHost.length === 0) continue;
    out.push(`  subgraph ${id('host', h.name)}["host ${label(h.name)} · Podman ${formatPodmanVersion(h.podmanVersion)} · ${h.rootless ? 'rootless' : 'rootful'}"]`);
    for (const n of stack.networks) {
      const members = onHost.filter((s) => s.network === n.id);
      if (members.length === 0) continue;
      const seg = n.segments.find((g) => g.host === h.name)!;
      out.push(`    subgraph ${id('net', `${h.name}-${n.id}`)}["${label(n.name)} ${seg.subnet} · ${label(n.domain)}"]`);
      for (const s of members) out.push(`      ${id('svc', s.name)}${shape(s)}`);
      out.push('    end');
    }
    out.push('  end');
  }
  for (const s of published) {
    const ports = s.ports.filter((p) => p.publish).map((p) => p.publish!.hostPort).join(', ');
    out.push(`  internet -->|"${ports}"| ${id('svc', s.name)}`);
  }
  // Allowed mTLS calls as solid arrows; other dependencies (infrastructure) dotted.
  for (const s of stack.services) {
    for (const c of s.calls) out.push(`  ${id('svc', s.name)} ==>|"mTLS"| ${id('svc', c)}`);
    for (const d of s.dependsOn) {
      if (!s.calls.includes(d.service)) out.push(`  ${id('svc', s.name)} -.->|"depends on"| ${id('svc', d.service)}`);
    }
  }
  return out;
}

/** A `## heading` section of TOPOLOGY.md: a blank line, the heading, a paragraph, then a table. */
function tableSection(heading: string, text: string, columns: readonly string[], rows: readonly string[]): string[] {
  return ['', `## ${heading}`, '', text, '', `| ${columns.join(' | ')} |`, `|${columns.map(() => '---|').join('')}`, ...rows];
}

/** The stack's host folders: where each is on its host, and what `podmesh apply` does about it. */
function hostFolderLines(stack: ResolvedStack): string[] {
  const rows = stack.services.flatMap((s) => {
    const host = stack.hosts.find((h) => h.name === s.host)!;
    return s.mounts
      .filter((m) => m.type === 'folder')
      .map((m) => {
        const relative = !m.source.startsWith('/');
        const compose = relative ? `\`<state>/${stack.name}/${DATA_DIR}/${s.host}${m.source === '.' ? '' : `/${m.source}`}\`` : 'the same';
        const apply = relative ? 'creates it when missing' : 'refuses to install while it is missing';
        return `| ${s.name} | ${m.target}${m.readOnly ? ' (read-only)' : ''} | \`${hostFolderPath(host, m.source)}\` | ${compose} | ${apply} |`;
      });
  });
  if (rows.length === 0) return [];
  return tableSection(
    'Host folders',
    "Folders of the hosts mounted into containers. A relative `hostPath` resolves below the host root's `data/` folder; the compose files in out/ keep them in the state folder instead, so that no data lands in out/.",
    ['Service', 'Container path', 'On the host', 'Compose from out/', '`podmesh apply`'],
    rows,
  );
}

/** How the clients of each PostgreSQL, Redis and MinIO service authenticate; a shared superuser is a relaxation with its reason. */
function credentialLines(stack: ResolvedStack): string[] {
  const rows = stack.services.flatMap((s) => {
    const c = s.credentials;
    if (!c || c.clients.length === 0) return [];
    const how = c.shared
      ? `shared: every client ${c.kind === 'postgres' ? 'connects' : 'authenticates'} as \`${c.shared.user}\` (${c.shared.reason.replaceAll('|', '\\|')})`
      : c.kind === 'postgres'
        ? `a role each, named after the client, owning only its schema of the same name in \`${c.database}\` (\`config/${s.name}/${POSTGRES_ROLES_FILE}\`)`
        : c.kind === 'minio'
          ? `a user each, named after the client (\`<project>-<client>\` for a name under 3 characters), with the policy \`podmesh-<user>\`: objects and listing of bucket \`${c.minio!.bucket}\` only; created by ${s.name} (\`config/${c.minio!.name}/${MINIO_USERS_FILE}\`)`
          : 'an ACL user each, named after the client, limited to keys and channels `<client>:*`, no @admin or @dangerous command';
    // MinIO's row is its setup's: the setup creates the users, the row names the MinIO.
    const server = c.kind === 'minio' ? c.minio!.name : s.name;
    return [`| ${server} | ${c.clients.map((x) => (x.user && x.user !== x.name ? `${x.name} (user \`${x.user}\`)` : x.name)).join(', ')} | ${how} |`];
  });
  if (rows.length === 0) return [];
  return tableSection(
    'Database credentials',
    'How the clients of PostgreSQL, Redis and MinIO authenticate: each with its own generated password, as a role, ACL user or MinIO user of its own unless the server shares its superuser (`sharedCredentials`, with the reason).',
    ['Service', 'Clients', 'Credentials'],
    rows,
  );
}

/** How each container is confined, and every relaxed control with its reason (`podmesh audit` judges them). */
function securityLines(stack: ResolvedStack): string[] {
  const userns = { rootless: 'rootless', auto: 'auto', host: 'host\'s' } as const;
  const rows = stack.services.map((s) => {
    const sec = s.security;
    const caps = sec.capAdd.length > 0 ? sec.capAdd.join(', ') : 'none';
    const root = sec.readOnlyRootFilesystem ? `read-only; tmpfs ${sec.tmpfs.map((t) => `\`${t.path}\``).join(', ') || 'none'}` : 'writable';
    const limits = [sec.memory ? `memory ${sec.memory}` : 'memory unlimited', ...(sec.cpus !== undefined ? [`${sec.cpus} CPUs`] : []), sec.pids !== undefined ? `pids ${sec.pids}` : 'pids unlimited'].join(', ');
    const runAs = sec.runAs === 'user' ? `\`${s.user}\`` : sec.runAs === 'image' ? 'root, then the image\'s user' : 'root';
    return `| ${s.name} | ${sec.noNewPrivileges ? 'yes' : 'no'} | ALL dropped; added: ${caps} | ${root} | ${limits} | ${userns[sec.userNamespace]} | ${runAs} |`;
  });
  const relaxed = stack.services.flatMap((s) =>
    Object.entries(s.security.waivers).map(([control, w]) => `| ${s.name} | ${control} | ${w!.by === 'preset' ? 'preset (its image)' : 'stack'} | ${w!.reason.replaceAll('|', '\\|')} |`),
  );
  return [
    ...tableSection(
      'Container security',
      'Every container: no-new-privileges, all capabilities dropped, a read-only root, memory and pids limits, and a user namespace; `podmesh audit` judges each against the Pod Security Standard "restricted" and the CIS Docker Benchmark.',
      ['Service', 'No new privileges', 'Capabilities', 'Root filesystem', 'Limits', 'User namespace', 'Runs as'],
      rows,
    ),
    '',
    '### Relaxations',
    '',
    ...(relaxed.length > 0 ? ['| Service | Control | By | Reason |', '|---|---|---|---|', ...relaxed] : ['None.']),
  ];
}

/** Dependencies across hosts: what each unit waits for through the tunnel before it starts. */
function crossHostLines(stack: ResolvedStack): string[] {
  const rows = stack.services.flatMap((s) =>
    remoteDependencies(s.dependsOn).map((d) => `| ${s.name} (${s.host}) | ${d.service} (${d.remote.host}) | ${d.remote.ip}:${d.remote.port} | ${d.remote.timeoutSeconds} s |`),
  );
  if (rows.length === 0) return [];
  return tableSection(
    'Start order across hosts',
    "systemd orders the units of one host only. Before a service starts, its unit waits until each dependency on another host accepts TCP connections through the tunnel (at most the time given, then the unit fails and says which). Compose files start each host's services without these waits.",
    ['Service', 'Waits for', 'Address', 'At most'],
    rows,
  );
}

/**
 * The connections the generated firewalls allow between containers: each declared flow, with the
 * host or hosts it runs on and what enforces it there, then the units' waits across hosts.
 */
function firewallLines(stack: ResolvedStack): string[] {
  const hostOf = new Map(stack.hosts.map((h) => [h.name, h]));
  const enforcedOnHost = (name: string) => (hostOf.get(name)!.rootless ? 'not filtered (rootless host: README, "Least connectivity")' : 'bridge table');
  // A host in wireguard mode 'container' filters in its gateway container's namespace, with nftables.
  const modeOf = new Map((stack.wireguard?.peers ?? []).map((p) => [p.host, p.mode]));
  const filter = (name: string) => (modeOf.get(name) === 'container' ? 'gateway nftables' : hostOf.get(name)!.firewall);
  const gateways = [...modeOf].filter(([, m]) => m === 'container').map(([h]) => h);
  const rows = stack.flows.map((f) => {
    const where = f.fromHost === f.toHost ? f.fromHost : `${f.fromHost} → ${f.toHost}`;
    const by = f.fromHost === f.toHost ? enforcedOnHost(f.fromHost) : `tunnel (${filter(f.fromHost)} → ${filter(f.toHost)})`;
    return `| ${f.from} (${f.source}) | ${f.to} (${f.destination}) | ${f.port}/${f.protocol} | ${where} | ${f.via} | ${by} |`;
  });
  const waits = tunnelFlows(stack)
    .filter((f) => f.via === 'wait')
    .map((f) => `| ${f.from} (${f.source}) | ${f.to} (${f.destination}) | ${f.port}/${f.protocol} | ${f.fromHost} → ${f.toHost} | wait | tunnel (${filter(f.toHost)}) |`);
  if (rows.length + waits.length === 0) return [];
  const rootless = stack.hosts.filter((h) => h.rootless && stack.services.some((s) => s.host === h.name)).map((h) => h.name);
  return tableSection(
    'Firewall',
    'Connections between containers that the generated firewalls allow, with their replies; every other connection from one container of the stack to another is dropped (on rootful hosts by the nftables bridge table `firewall/bridge.nft`, across hosts by the WireGuard hooks). Published ports and the hosts\' own traffic are not filtered by podmesh.' +
      (gateways.length > 0 ? ` On ${gateways.join(', ')} the WireGuard gateway container filters the tunnel's flows in its own namespace (README, "WireGuard in a gateway container").` : '') +
      (rootless.length > 0 ? ` On rootless hosts (${rootless.join(', ')}) podmesh filters nothing between containers: their bridge lives in the user's rootless network namespace (README, "Least connectivity").` : ''),
    ['From', 'To', 'Port', 'Host(s)', 'Declared by', 'Enforced by'],
    [...rows, ...waits],
  );
}

/** A call makes the caller start after its callee; these calls close a loop, so they give no order. */
function unorderedCallLines(stack: ResolvedStack): string[] {
  const calls = stack.unorderedCalls;
  if (calls.length === 0) return [];
  const mutual = (a: string, b: string) => calls.some(([c, d]) => c === b && d === a);
  const lines = calls
    .filter(([a, b]) => !mutual(a, b) || calls.findIndex(([c, d]) => c === a && d === b) < calls.findIndex(([c, d]) => c === b && d === a))
    .map(([a, b]) => (mutual(a, b) ? `- ${a} and ${b} call each other: no start order between them.` : `- ${a} calls ${b}, and ${b} reaches ${a} through other calls and dependencies (a loop): this call gives no start order.`));
  return ['A service starts after the services it calls, except:', '', ...lines, ''];
}

function shape(s: ResolvedService): string {
  // With a sidecar, the sidecar's proxy holds the mTLS port in the service's namespace.
  const ports = s.ports.map((p) => `${p.port}${p.name === 'mtls' ? (s.sidecar ? ` mTLS (${s.sidecar.proxy} sidecar)` : ' mTLS') : ` ${p.name}`}`).join(', ');
  const text = `${label(s.name)}<br/>${label(s.dnsName)}<br/>${s.ip}${ports ? `<br/>${label(ports)}` : ''}`;
  return s.kind === 'infra' ? `[("${text}")]` : `["${text}"]`;
}

function id(prefix: string, name: string): string {
  return `${prefix}_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** Mermaid labels are quoted; quotes and angle brackets become entities. */
function label(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

function plural(n: number, word: string): string {
  return n === 1 ? word : `${word}s`;
}

/**
 * The bridge of a network on one host. Compose names it; Quadlet on a Podman that cannot (before
 * 4.6) leaves the name to Podman. Synth accepts that only where the name is podmesh's default and
 * nothing matches on it (systemd.ts, bridgeNameProblems): the table says so instead of promising it.
 */
function bridgeCell(stack: ResolvedStack, bridge: string, hostName: string): string {
  const host = stack.hosts.find((h) => h.name === hostName);
  if (!host || canNameBridge(host.podmanVersion)) return `\`${bridge}\``;
  return `\`${bridge}\` (compose); podmanN, named by Podman ${formatPodmanVersion(host.podmanVersion)} (Quadlet)`;
}
