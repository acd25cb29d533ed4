// Issue 14's table of bad inputs, each through the real command line (runCli, in-process): the exit
// code, a message naming the construct path (or the file or flag) with a fix, no stack trace, no raw
// zod output, and not one byte, mode or mtime changed in out/ or the state folder.
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../src/cli/command.ts';
import { runCli } from '../src/cli/run.ts';
import { tempDir } from './helpers/stacks.ts';

const repo = join(import.meta.dirname, '..');

/** `relative path → kind sha256 mode mtime` for the folder itself and every file and folder below it. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return; // absent: the snapshot says so by having no entry
    }
    const mode = (st.mode & 0o7777).toString(8);
    const key = relative(dir, p) || '.';
    if (st.isDirectory()) {
      out[key] = `dir ${mode} ${st.mtimeMs}`;
      for (const name of readdirSync(p).sort()) visit(join(p, name));
    } else if (st.isSymbolicLink()) {
      out[key] = `link ${mode} ${st.mtimeMs}`;
    } else {
      out[key] = `file ${createHash('sha256').update(readFileSync(p)).digest('hex')} ${mode} ${st.mtimeMs}`;
    }
  };
  visit(dir);
  return out;
}

/** What differs between two snapshots, one line per entry made, removed or changed. */
function changes(label: string, before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.filter((k) => before[k] !== after[k]).map((k) => `${label}/${k}: ${before[k] ?? '(absent)'} → ${after[k] ?? '(absent)'}`);
}


/** What every stack file of the table starts with: the API, the Ashchan class and two small helpers. */
const PRELUDE = [
  `import { App, Host, InfraService, Minio, Network, Postgres, Redis, Service, Stack, Volume } from ${JSON.stringify(join(repo, 'src/index.ts'))};`,
  `import { Ashchan } from ${JSON.stringify(join(repo, 'stacks/lib/ashchan.ts'))};`,
  `import { createRequire } from 'node:module';`,
  `const { Construct } = createRequire(${JSON.stringify(join(repo, 'package.json'))})('constructs');`,
  `const mini = (app, id = 'bad') => {`,
  `  const stack = new Stack(app, id, { project: 'bad' });`,
  `  const host = new Host(stack, 'local');`,
  `  const network = new Network(stack, 'mesh', { subnet: '10.90.0.0/24', gateway: '10.90.0.1', domain: 'bad.local' });`,
  `  return { stack, host, network };`,
  `};`,
  'const svc = (stack, id, props = {}) => new Service(stack, id, { image: `localhost/test/${id}:1`, ...props });',
  `const two = (app, b = {}, a = {}) => {`,
  `  const stack = new Stack(app, 'bad', { project: 'bad' });`,
  `  const ha = new Host(stack, 'a', { endpoint: '192.0.2.1:51820', ...a });`,
  `  const hb = new Host(stack, 'b', { endpoint: '192.0.2.2:51820', ...b });`,
  `  const network = new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });`,
  `  return { stack, ha, hb, network };`,
  `};`,
].join('\n');

/** The valid stack every case's out/ and state folder were made from (one host, a database, an app). */
const VALID = `const { stack } = mini(app); const db = new Postgres(stack, 'db'); svc(stack, 'auth', { dependsOn: [db], ports: { http: 9000 } });`;

/** A valid stack spanning two hosts (WireGuard keys in the state folder). */
const VALID_TWO = `const { stack, ha, hb } = two(app); const db = new Postgres(stack, 'db', { host: hb }); svc(stack, 'auth', { host: ha, dependsOn: [db] });`;

/** Where a case runs. */
interface Where {
  readonly stacks: string;
  readonly out: string;
  readonly state: string;
  readonly root: string;
}

interface Case {
  readonly name: string;
  /** The body of the stack file's `(app) => { … }`. */
  readonly body?: string;
  /** The command line; default `synth --stacks S --out O --state T`. */
  readonly argv?: (w: Where) => string[];
  /** Damage to a private copy of the valid state (and out/), made before the snapshot. */
  readonly tamper?: (w: Where) => void | Promise<void>;
  /** The valid stack the private copy was synthesized from (tamper cases only). */
  readonly base?: string;
  readonly code: 1 | 2;
  /** Where the message points: `[bad/auth]`, a file, a flag. */
  readonly where: string | ((w: Where) => string);
  /** A fragment of the fix (or of the message, for command-line errors that have one sentence). */
  readonly fix: string;
  /** A known defect outside this table's scope: the case runs on a private copy and is expected to fail. */
  readonly defect?: string;
}

const cases: Case[] = [];
/** A bad stack: exit 1, `[path]` and a fragment of the fix. */
const bad = (name: string, body: string, path: string, fix: string) => cases.push({ name, body, code: 1, where: `[${path}]`, fix });
/** A bad prop of a service `auth` in the one-host stack. */
const auth = (name: string, props: string, fix: string, path = 'bad/auth') => bad(name, `const { stack } = mini(app); svc(stack, 'auth', ${props});`, path, fix);

// --- Stack ---
bad('Stack: misspelled prop', `svc(new Stack(app, 'bad', { projcet: 'x' }), 'x');`, 'bad', 'Did you mean project?');
bad('Stack: description with a newline', `svc(new Stack(app, 'bad', { description: 'ok\\n# injected' }), 'x');`, 'bad', 'must be one line');
bad('Stack: description with a tab', `svc(new Stack(app, 'bad', { description: 'a\\tb' }), 'x');`, 'bad', 'must be one line');
bad('Stack: description with a carriage return', `svc(new Stack(app, 'bad', { description: 'a\\rb' }), 'x');`, 'bad', 'must be one line');
bad('Stack: project that is a number', `svc(new Stack(app, 'bad', { project: 7 }), 'x');`, 'bad', 'project: must be a string, not number 7');
bad('Stack: project with a space', `svc(new Stack(app, 'bad', { project: 'my project' }), 'x');`, 'bad', 'e.g. "ashchan"');
bad('Stack: pki misspelled at depth', `svc(new Stack(app, 'bad', { pki: { rootCommmonName: 'x' } }), 'x');`, 'bad', 'Did you mean rootCommonName?');
bad('Stack: root CA lifetime under 30 days', `svc(new Stack(app, 'bad', { pki: { rootLifetimeDays: 5 } }), 'x');`, 'bad', 'at least 30 days');
bad('Stack: root CA lifetime not a whole number', `svc(new Stack(app, 'bad', { pki: { rootLifetimeDays: 100.5 } }), 'x');`, 'bad', 'pki.rootLifetimeDays: must be a whole number, not number 100.5');
bad('Stack: root CN over 64 characters', `svc(new Stack(app, 'bad', { pki: { rootCommonName: 'x'.repeat(65) } }), 'x');`, 'bad', 'at most 64 characters');
bad('Stack: client CA CN not a DNS name', `svc(new Stack(app, 'bad', { pki: { clientCaCommonName: 'Not A Name' } }), 'x');`, 'bad', 'must be a DNS name, e.g. "ashchan.local"');
bad('Stack: unknown key type', `svc(new Stack(app, 'bad', { pki: { keyType: 'dsa' } }), 'x');`, 'bad', 'pki.keyType: must be one of "ecdsa-p256", "rsa-2048", not the string "dsa"');
bad('Stack: empty organization', `svc(new Stack(app, 'bad', { pki: { organization: '' } }), 'x');`, 'bad', 'pki.organization: must not be empty');
bad('Stack: WireGuard interface name too long', `svc(new Stack(app, 'bad', { wireguard: { interfaceName: 'wireguard-mesh-0' } }), 'x');`, 'bad', 'at most 15 characters');
bad('Stack: WireGuard MTU under 1280', `svc(new Stack(app, 'bad', { wireguard: { mtu: 576 } }), 'x');`, 'bad', 'at least 1280');
bad('Stack: WireGuard keepalive negative', `svc(new Stack(app, 'bad', { wireguard: { persistentKeepalive: -1 } }), 'x');`, 'bad', 'wireguard.persistentKeepalive: must be at least 0');
bad('Stack: WireGuard misspelled at depth', `svc(new Stack(app, 'bad', { wireguard: { presharedKey: true } }), 'x');`, 'bad', 'Did you mean presharedKeys?');
bad('Stack: WireGuard subnet without a mask', `svc(new Stack(app, 'bad', { wireguard: { subnet: '10.99.0.1' } }), 'x');`, 'bad', 'Did you mean "10.99.0.1/24"?');
bad('Stack: no services', `const stack = new Stack(app, 'bad'); new Host(stack, 'local'); new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' });`, 'bad', 'Add a Service, Postgres, Redis, Minio or InfraService to it, or delete the stack.');
bad('Stack: two constructs with one name', `const { stack } = mini(app); svc(stack, 'auth'); svc(stack, 'auth');`, 'bad', 'two constructs are named "auth"');

// --- Host ---
bad('Host: misspelled prop', `const stack = new Stack(app, 'bad'); new Host(stack, 'local', { podmanVersoin: '5.4' }); svc(stack, 'x');`, 'bad/local', 'Did you mean podmanVersion?');
bad('Host: Podman version that is no version', `const stack = new Stack(app, 'bad'); new Host(stack, 'local', { podmanVersion: 'latest' }); svc(stack, 'x');`, 'bad/local', 'must look like "5.4" or "4.9.3"');
bad('Host: Podman before Quadlet', `const stack = new Stack(app, 'bad'); new Host(stack, 'local', { podmanVersion: '4.3' }); svc(stack, 'x');`, 'bad/local', 'Quadlet first shipped with Podman 4.4');
bad('Host: rootless that is a string', `const stack = new Stack(app, 'bad'); new Host(stack, 'local', { rootless: 'yes' }); svc(stack, 'x');`, 'bad/local', 'rootless: must be true or false, not the string "yes"');
bad('Host: name that is no DNS label', `const stack = new Stack(app, 'bad'); new Host(stack, 'Local_Box'); new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' }); svc(stack, 'x');`, 'bad/Local_Box', 'must be a lower-case DNS label');
bad('Host: endpoint port over 65535', `const { stack, ha, hb } = two(app, { endpoint: '192.0.2.2:99999' }); svc(stack, 'one', { host: ha }); svc(stack, 'two', { host: hb });`, 'bad/b', "WireGuard's default is 51820");
bad('Host: endpoint port 0', `const { stack, ha, hb } = two(app, { endpoint: '192.0.2.2:0' }); svc(stack, 'one', { host: ha }); svc(stack, 'two', { host: hb });`, 'bad/b', "WireGuard's default is 51820");
bad('Host: endpoint address 999.1.1.1', `const { stack, ha, hb } = two(app, { endpoint: '999.1.1.1:51820' }); svc(stack, 'one', { host: ha }); svc(stack, 'two', { host: hb });`, 'bad/b', 'four numbers 0-255, e.g. 198.51.100.10');
bad('Host: endpoint without a port', `const { stack, ha, hb } = two(app, { endpoint: '192.0.2.2' }); svc(stack, 'one', { host: ha }); svc(stack, 'two', { host: hb });`, 'bad/b', 'e.g. "198.51.100.10:51820"');
bad('Host: endpoint with a newline', `const { stack, ha, hb } = two(app, { endpoint: '192.0.2.2:51820\\nPostUp=sh' }); svc(stack, 'one', { host: ha }); svc(stack, 'two', { host: hb });`, 'bad/b', 'e.g. "198.51.100.10:51820"');
bad('Host: endpoint with a space', `const { stack, ha, hb } = two(app, { endpoint: 'vpn example.org:51820' }); svc(stack, 'one', { host: ha }); svc(stack, 'two', { host: hb });`, 'bad/b', 'e.g. "198.51.100.10:51820"');
bad('Host: tunnel address that is no address', `const { stack, ha, hb } = two(app, { tunnelAddress: '10.99.0.300' }); svc(stack, 'one', { host: ha }); svc(stack, 'two', { host: hb });`, 'bad/b', 'is not an IPv4 address');
bad('Host: rootless host in a two-host stack with wireguard mode host', `const { stack, ha, hb } = two(app, {}, { rootless: true, wireguard: { mode: 'host' } }); svc(stack, 'x', { host: ha }); svc(stack, 'y', { host: hb });`, 'bad/a', "is rootless with wireguard mode 'host', but the stack spans 2 hosts");
bad('Host: rootless host on Podman 4.5 in a two-host stack', `const { stack, ha, hb } = two(app, {}, { rootless: true, podmanVersion: '4.5' }); svc(stack, 'x', { host: ha }); svc(stack, 'y', { host: hb });`, 'bad/a', 'needs Podman 4.6 or later');
bad('Host: a second host without an endpoint', `const { stack, ha, hb } = two(app, { endpoint: undefined }, { endpoint: undefined }); svc(stack, 'x', { host: ha }); svc(stack, 'y', { host: hb });`, 'bad/a', 'Set endpoint: "<address or name>:<port>"');

// --- Network ---
const net = (props: string, extra = '') => `const stack = new Stack(app, 'bad'); new Host(stack, 'local'); const network = new Network(stack, 'mesh', ${props}); svc(stack, 'auth'); ${extra}`;
bad('Network: misspelled prop', net(`{ subnet: '10.90.0.0/24', domian: 'bad.local' }`), 'bad/mesh', 'Did you mean domain?');
bad('Network: subnet without a mask', net(`{ subnet: '10.90.0.1', domain: 'bad.local' }`), 'bad/mesh', 'Did you mean "10.90.0.1/24"?');
bad('Network: subnet with host bits set', net(`{ subnet: '10.90.0.7/24', domain: 'bad.local' }`), 'bad/mesh', 'has host bits set. Did you mean "10.90.0.0/24"?');
bad('Network: subnet mask over 32', net(`{ subnet: '10.90.0.0/33', domain: 'bad.local' }`), 'bad/mesh', 'prefix length "/33" must be 0-32');
bad('Network: subnet that is a word', net(`{ subnet: 'mesh', domain: 'bad.local' }`), 'bad/mesh', 'subnet: "mesh" is not an IPv4 address');
bad('Network: no subnet', net(`{ domain: 'bad.local' }`), 'bad/mesh', 'subnet: is required: give a string');
bad('Network: gateway outside the subnet', net(`{ subnet: '10.90.0.0/24', gateway: '10.91.0.1', domain: 'bad.local' }`), 'bad/mesh', 'Pick one in 10.90.0.1-10.90.0.254 or leave gateway unset.');
bad('Network: gateway that is no address', net(`{ subnet: '10.90.0.0/24', gateway: 'router', domain: 'bad.local' }`), 'bad/mesh', 'is not an IPv4 address');
bad('Network: domain with capitals and "_"', net(`{ subnet: '10.90.0.0/24', domain: 'Ashchan_Local' }`), 'bad/mesh', 'e.g. "ashchan.local"');
bad('Network: domain with a newline', net(`{ subnet: '10.90.0.0/24', domain: 'bad.local\\nx' }`), 'bad/mesh', 'e.g. "ashchan.local"');
bad('Network: bridge name over 15 characters', net(`{ subnet: '10.90.0.0/24', domain: 'bad.local', bridgeName: 'podmesh-bridge-0' }`), 'bad/mesh', 'a Linux interface name');
bad('Network: bridge name with a space', net(`{ subnet: '10.90.0.0/24', domain: 'bad.local', bridgeName: 'br 0' }`), 'bad/mesh', 'a Linux interface name');
bad('Network: network name with a slash', net(`{ subnet: '10.90.0.0/24', domain: 'bad.local', name: 'a/b' }`), 'bad/mesh', 'hold only letters, digits, "_", "." and "-"');
bad('Network: internal that is a string', net(`{ subnet: '10.90.0.0/24', domain: 'bad.local', internal: 'no' }`), 'bad/mesh', 'internal: must be true or false, not the string "no"');
bad('Network: slice that is no CIDR', net(`{ subnet: '10.90.0.0/24', domain: 'bad.local', slices: { local: '10.90.0.0' } }`), 'bad/mesh', 'slices.local: CIDR mask is missing in "10.90.0.0". Did you mean "10.90.0.0/24"?');
bad('Network: id too long for a bridge', `const stack = new Stack(app, 'bad'); new Host(stack, 'local'); new Network(stack, 'ashchan-service-mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' }); svc(stack, 'auth');`, 'bad/ashchan-service-mesh', 'at most 15 characters');
bad('Network: overlapping networks', `const { stack, network } = mini(app); const other = new Network(stack, 'backend', { subnet: '10.90.0.128/25', domain: 'backend.local' }); svc(stack, 'auth', { network }); svc(stack, 'db', { network: other });`, 'bad/backend', 'Give each network its own range');
bad('Network: too small for its services', net(`{ subnet: '10.90.0.0/30', domain: 'bad.local' }`, `svc(stack, 'b'); svc(stack, 'c');`), 'bad/mesh', 'Use a larger subnet');
bad('Network: overlapping slices of two hosts', `const stack = new Stack(app, 'bad'); const a = new Host(stack, 'a', { endpoint: '192.0.2.1:51820' }); const b = new Host(stack, 'b', { endpoint: '192.0.2.2:51820' }); new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/25', b: '10.90.0.64/26' } }); svc(stack, 'x', { host: a }); svc(stack, 'y', { host: b });`, 'bad/mesh', 'Give each host its own block.');
bad('Network: slice outside the subnet', `const stack = new Stack(app, 'bad'); const a = new Host(stack, 'a', { endpoint: '192.0.2.1:51820' }); const b = new Host(stack, 'b', { endpoint: '192.0.2.2:51820' }); new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/25', b: '10.91.0.0/25' } }); svc(stack, 'x', { host: a }); svc(stack, 'y', { host: b });`, 'bad/mesh', 'Pick a block inside it.');
bad('Network: slice for an unknown host', `const stack = new Stack(app, 'bad'); const a = new Host(stack, 'a', { endpoint: '192.0.2.1:51820' }); const b = new Host(stack, 'b', { endpoint: '192.0.2.2:51820' }); new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/25', c: '10.90.0.128/25' } }); svc(stack, 'x', { host: a }); svc(stack, 'y', { host: b });`, 'bad/mesh', 'has a slice for unknown host "c". Known hosts: a, b.');

// --- Volume ---
bad('Volume: misspelled prop', `const { stack } = mini(app); const v = new Volume(stack, 'v', { nmae: 'x' }); svc(stack, 'auth', { mounts: [{ volume: v, target: '/data' }] });`, 'bad/v', 'Did you mean name?');
bad('Volume: name with a space', `const { stack } = mini(app); const v = new Volume(stack, 'v', { name: 'my data' }); svc(stack, 'auth', { mounts: [{ volume: v, target: '/data' }] });`, 'bad/v', 'hold only letters, digits, "_", "." and "-"');
bad('Volume: name with ":"', `const { stack } = mini(app); const v = new Volume(stack, 'v', { name: 'data:/etc' }); svc(stack, 'auth', { mounts: [{ volume: v, target: '/data' }] });`, 'bad/v', 'hold only letters, digits, "_", "." and "-"');
bad('Volume: mounted on two hosts', `const { stack, ha, hb } = two(app); const v = new Volume(stack, 'shared'); svc(stack, 'x', { host: ha, mounts: [{ volume: v, target: '/data' }] }); svc(stack, 'y', { host: hb, mounts: [{ volume: v, target: '/data' }] });`, 'bad/y', 'mounts volume bad/shared on host b');

// --- Service: image, names, environment ---
auth('Service: misspelled prop', `{ imagee: 'x' }`, 'Did you mean image?');
bad('Service: no image', `const { stack } = mini(app); new Service(stack, 'auth', {});`, 'bad/auth', 'image: is required: give a string');
auth('Service: image with a space', `{ image: 'ghcr.io/ashchan/auth accounts:1.0' }`, 'did you mean "ghcr.io/ashchan/authaccounts:1.0"?');
auth('Service: image with a newline', `{ image: 'localhost/a:1\\nExec=x' }`, 'image: "localhost/a:1\\nExec=x" contains whitespace. Image references have none');
auth('Service: empty image', `{ image: '' }`, 'is not an image reference like "docker.io/library/redis:7-alpine"');
auth('Service: image that is a number', `{ image: 5 }`, 'image: must be a string, not number 5');
bad('Service: name that is no DNS label', `const { stack } = mini(app); svc(stack, 'Auth_Service');`, 'bad/Auth_Service', 'e.g. "auth-service"');
bad('Service: name used twice in two scopes', `const { stack } = mini(app); svc(stack, 'auth'); svc(new Construct(stack, 'team-b'), 'auth');`, 'bad/team-b/auth', 'service name "auth" is already used by bad/auth');
auth('Service: serviceName with a newline', `{ serviceName: 'Auth\\nExecStart=/bin/sh' }`, 'must be one line without control characters');
auth('Service: empty serviceName', `{ serviceName: '' }`, 'serviceName: must not be empty');
auth('Service: containerName with a space', `{ containerName: 'auth 1' }`, 'hold only letters, digits, "_", "." and "-"');
auth('Service: containerName starting with "-"', `{ containerName: '-auth' }`, 'must start with a letter or digit');
bad('Service: one containerName for two services', `const { stack } = mini(app); svc(stack, 'auth', { containerName: 'same' }); svc(stack, 'boards', { containerName: 'same' });`, 'bad/boards', 'container name "same" is already used by bad/auth. Set another containerName.');
auth('Service: alias that is no DNS name', `{ aliases: ['Bad Alias'] }`, 'is not a DNS name');
auth('Service: user with a space', `{ user: 'root 0' }`, 'must be "uid[:gid]" or a user name');
auth('Service: restart policy misspelled', `{ restart: 'alway' }`, 'restart: must be one of "no", "always", "on-failure", "unless-stopped", not the string "alway". Did you mean "always"?');
auth('Service: command that is a string', `{ command: 'serve --port 80' }`, 'command: must be a list ([…]), not the string "serve --port 80"');
auth('Service: environment name with "-"', `{ environment: { 'LOG-LEVEL': 'debug' } }`, 'e.g. "LOG_LEVEL"');
auth('Service: environment name starting with a digit', `{ environment: { '1X': 'a' } }`, 'not starting with a digit');
auth('Service: environment name with "="', `{ environment: { 'A=B': 'c' } }`, 'use letters, digits and "_"');
auth('Service: environment value that is a number', `{ environment: { PORT: 80 } }`, 'quote numbers and booleans');
auth('Service: environment value with a newline', `{ environment: { MOTD: 'line one\\nline two' } }`, 'must go into a file');
auth('Service: environment name podmesh generates', `{ environment: { SERVICE_NAME: 'x' } }`, 'generated by podmesh');
auth('Service: readOnlyRootFilesystem that is a string', `{ readOnlyRootFilesystem: 'true' }`, 'readOnlyRootFilesystem: must be true or false, not the string "true"');
auth('Service: envFiles with an empty name', `{ envFiles: [''] }`, 'envFiles[0]: must not be empty');
auth('Service: envFile that does not exist', `{ envFiles: ['missing.env'] }`, 'cannot be read (ENOENT). A relative path is relative to the folder of the stack file.');
auth('Service: host that is a string', `{ host: 'local' }`, 'must be a Host construct');
auth('Service: network that is a string', `{ network: 'mesh' }`, 'must be a Network construct');

// --- Service: addresses ---
auth('Service: ip outside the subnet', `{ ip: '10.90.1.5' }`, 'or leave ip unset');
auth('Service: ip equal to the network address', `{ ip: '10.90.0.0' }`, 'is the network address of network mesh');
auth('Service: ip equal to the gateway', `{ ip: '10.90.0.1' }`, 'is the gateway address of network mesh');
auth('Service: ip equal to the broadcast address', `{ ip: '10.90.0.255' }`, 'is the broadcast address');
auth('Service: ip that is no address', `{ ip: '10.90.0.300' }`, 'is not an IPv4 address');
auth('Service: ip with a mask', `{ ip: '10.90.0.5/24' }`, 'is not an IPv4 address');
bad('Service: one ip for two services', `const { stack } = mini(app); svc(stack, 'auth', { ip: '10.90.0.21' }); svc(stack, 'boards', { ip: '10.90.0.21' });`, 'bad/boards', 'is already given to bad/auth');
bad('Service: ip outside its host\'s slice', `const stack = new Stack(app, 'bad'); const a = new Host(stack, 'a', { endpoint: '192.0.2.1:51820' }); const b = new Host(stack, 'b', { endpoint: '192.0.2.2:51820' }); new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local', slices: { a: '10.90.0.0/25', b: '10.90.0.128/25' } }); svc(stack, 'x', { host: a, ip: '10.90.0.200' }); svc(stack, 'y', { host: b });`, 'bad/x', 'Pick an address in 10.90.0.2-10.90.0.126, place the service on the host that owns it, or leave ip unset.');

// --- Service: ports ---
auth('Service: port 0', `{ ports: { http: 0 } }`, 'ports are 1-65535');
auth('Service: port 70000', `{ ports: { http: 70000 } }`, 'ports are 1-65535');
auth('Service: port that is a string', `{ ports: { http: '80' } }`, 'must be a port number (1-65535) or { port, protocol, publish, hostIp }');
auth('Service: port not a whole number', `{ ports: { http: 80.5 } }`, 'ports.http: must be a port number (1-65535)');
auth('Service: port name with capitals', `{ ports: { HTTP: 80 } }`, 'port names are lower-case words like "http"');
auth('Service: port misspelled at depth', `{ ports: { http: { port: 80, pubish: true } } }`, 'Did you mean publish?');
auth('Service: published host port 70000', `{ ports: { http: { port: 80, publish: 70000 } } }`, 'ports are 1-65535');
auth('Service: protocol sctp', `{ ports: { http: { port: 80, protocol: 'sctp' } } }`, 'protocol: must be "tcp" or "udp"');
auth('Service: hostIp that is no address', `{ ports: { http: { port: 80, publish: true, hostIp: 'localhost' } } }`, 'must be an IPv4 address');
auth('Service: two ports with one number', `{ ports: { http: 9000, admin: 9000 } }`, 'port 9000/tcp is declared twice (http and admin). Give each listener its own port.');
auth('Service: a port on the mTLS port', `{ ports: { http: 8443 } }`, 'port 8443/tcp is declared twice (http and mtls). Give each listener its own port.');
bad('Service: one host port published twice', `const { stack } = mini(app); svc(stack, 'web', { ports: { public: { port: 8080, publish: true } } }); svc(stack, 'admin', { ports: { ui: { port: 3000, publish: 8080 } } });`, 'bad/admin', 'Publish another host port, e.g. publish: 8081.');
cases.push({
  name: 'Service: host port on 127.0.0.1 and on all addresses',
  body: `const { stack } = mini(app); svc(stack, 'web', { ports: { public: { port: 8080, publish: true, hostIp: '127.0.0.1' } } }); svc(stack, 'admin', { ports: { ui: { port: 3000, publish: 8080 } } });`,
  code: 1,
  where: '[bad/admin]',
  fix: 'Publish another host port',
});

// --- Service: mounts ---
auth('Service: mount target with ":"', `{ mounts: [{ hostPath: '/srv/v', target: '/vdata:ro' }] }`, 'must not contain ":", ","');
auth('Service: mount target with ","', `{ mounts: [{ hostPath: '/srv/v', target: '/a,b' }] }`, 'must not contain ":", ","');
auth('Service: host path with ":"', `{ mounts: [{ hostPath: '/srv/data:/etc', target: '/data' }] }`, 'must not contain ":", ","');
auth('Service: host path with ","', `{ mounts: [{ hostPath: '/srv/a,b', target: '/data' }] }`, 'must not contain ":", ","');
auth('Service: mount target with a newline', `{ mounts: [{ hostPath: '/srv/a', target: '/data\\nExec=x' }] }`, 'control characters');
auth('Service: host path with a NUL', `{ mounts: [{ hostPath: '/srv/a\\u0000b', target: '/data' }] }`, 'control characters');
auth('Service: host path climbing out with ".."', `{ mounts: [{ hostPath: '../../../../etc', target: '/data' }] }`, 'must not climb out of the data folder with ".."');
auth('Service: host path climbing out in the middle', `{ mounts: [{ hostPath: 'data/../../x', target: '/data' }] }`, 'must not climb out of the data folder');
auth('Service: relative mount target', `{ mounts: [{ hostPath: '/srv/a', target: 'data' }] }`, 'must be an absolute path inside the container');
auth('Service: mount with neither volume nor host path', `{ mounts: [{ target: '/data' }] }`, 'mounts[0]: give exactly one of volume or hostPath');
auth('Service: mount with a misspelled prop', `{ mounts: [{ hostPath: '/srv/a', target: '/data', readonly: true }] }`, 'Did you mean readOnly?');
auth('Service: mount volume that is a string', `{ mounts: [{ volume: 'data', target: '/data' }] }`, 'must be a Volume construct');

// --- Service: health checks, certificates, TLS, Hyperf ---
auth('Service: health check with an empty command', `{ healthcheck: { command: [] } }`, 'healthcheck.command: must not be empty: give at least one');
auth('Service: health check interval without a unit', `{ healthcheck: { command: ['true'], interval: '10' } }`, 'must be a duration like "10s"');
auth('Service: health check retries 0', `{ healthcheck: { command: ['true'], retries: 0 } }`, 'healthcheck.retries: must be at least 1');
auth('Service: health check misspelled at depth', `{ healthcheck: { comand: ['true'] } }`, 'Did you mean command?');
auth('Service: certificate lifetime over 825 days', `{ certificate: { lifetimeDays: 900 } }`, 'CA/Browser Forum limit');
auth('Service: certificate key type dsa', `{ certificate: { keyType: 'dsa' } }`, 'certificate.keyType: must be one of "ecdsa-p256", "rsa-2048", not the string "dsa"');
auth('Service: mTLS port 0', `{ mtls: { port: 0 } }`, 'mtls.port: must be at least 1');
auth('Service: publicTls without host names', `{ ports: { https: 443 }, publicTls: { hostnames: [], port: 'https' } }`, 'give at least one host name');
auth('Service: publicTls host name with a space', `{ ports: { https: 443 }, publicTls: { hostnames: ['shop example'], port: 'https' } }`, 'is not a host name');
auth('Service: publicTls address that is no address', `{ ports: { https: 443 }, publicTls: { hostnames: ['shop.example'], ipAddresses: ['1.2.3'], port: 'https' } }`, 'is not an IPv4 address');
bad('Service: publicTls on an undeclared port', `const { stack } = mini(app); svc(stack, 'web', { ports: { https: { port: 443, publish: 8443 } }, publicTls: { hostnames: ['shop.example'] } });`, 'bad/web', 'Declare it in ports, or set publicTls.port to one of: https.');
bad('Service: publicTls on the mTLS port', `const { stack } = mini(app); svc(stack, 'web', { publicTls: { hostnames: ['shop.example'], port: 'mtls' } });`, 'bad/web', 'publicTls cannot be served on the mTLS port');
auth('Service: Hyperf server name with a space', `{ hyperf: { serverName: 'm tls' } }`, 'a letter, then letters, digits, "_" or "-"');
auth('Service: Hyperf appRoot relative', `{ hyperf: { appRoot: 'srv' } }`, 'must be an absolute path without spaces');
auth('Service: publicTls misspelled at depth', `{ ports: { https: 443 }, publicTls: { hostname: ['shop.example'], port: 'https' } }`, 'Did you mean hostnames?');
auth('Service: certificate misspelled at depth', `{ certificate: { lifetimeDay: 30 } }`, 'Did you mean lifetimeDays?');
auth('Service: mtls misspelled at depth', `{ mtls: { prot: 9443 } }`, 'Did you mean port?');
bad('Service: dependsOn entry misspelled at depth', `const { stack } = mini(app); const db = new Postgres(stack, 'db'); svc(stack, 'auth', { dependsOn: [{ service: db, conditon: 'started' }] });`, 'bad/auth', 'Did you mean condition?');
auth('Service: Hyperf misspelled at depth', `{ hyperf: { appRot: '/srv' } }`, 'Did you mean appRoot?');

// --- Graph ---
bad('Graph: unknown dependency, with a suggestion', `const { stack } = mini(app); new Redis(stack, 'redis'); svc(stack, 'auth', { dependsOn: ['redsi'] });`, 'bad/auth', 'Did you mean "redis"?');
bad('Graph: dependency cycle', `const { stack } = mini(app); svc(stack, 'a', { dependsOn: ['c'] }); svc(stack, 'b', { dependsOn: ['a'] }); svc(stack, 'c', { dependsOn: ['b'] });`, 'bad/a', 'dependency cycle: a → c → b → a');
bad('Graph: depends on itself', `const { stack } = mini(app); svc(stack, 'a', { dependsOn: ['a'] });`, 'bad/a', 'depends on itself. Remove it from dependsOn.');
bad('Graph: dependsOn cycle through a preset', `const { stack } = mini(app); const db = new Postgres(stack, 'db', { dependsOn: ['auth'] }); svc(stack, 'auth', { dependsOn: [db] });`, 'bad/db', 'remove one of these dependsOn entries');
bad('Graph: dependsOn an mTLS service it may not call', `const { stack } = mini(app); svc(stack, 'worker'); svc(stack, 'auth', { dependsOn: ['worker'] });`, 'bad/auth', 'but its call policy does not allow calling it. Add it to calls (calls: [worker, …]) or remove the dependency.');
bad('Graph: unknown call', `const { stack } = mini(app); svc(stack, 'auth'); svc(stack, 'web', { calls: ['atuh'] });`, 'bad/web', 'Did you mean "auth"?');
bad('Graph: call to a number', `const { stack } = mini(app); svc(stack, 'web', { calls: [5] });`, 'bad/web', 'must be a Service or a service name');
bad('Graph: a call to a database (not a Service)', `const { stack } = mini(app); const db = new Postgres(stack, 'db'); svc(stack, 'web', { calls: [db] });`, 'bad/web', 'Remove it from calls and list it in dependsOn');
bad('Graph: dependency condition misspelled', `const { stack } = mini(app); svc(stack, 'worker'); svc(stack, 'auth', { dependsOn: [{ service: 'worker', condition: 'ready' }] });`, 'bad/auth', 'dependsOn[0]: condition: must be one of "healthy", "started", not the string "ready"');
bad('Graph: cross-host wait of 0 s', `const { stack, ha, hb } = two(app); const db = new Postgres(stack, 'db', { host: hb }); svc(stack, 'auth', { host: ha, dependsOn: [{ service: db, crossHostWait: '0s' }] });`, 'bad/auth', 'dependsOn[0].crossHostWait: must be a duration between "1s" and "1h"');
bad('Graph: cross-host wait over an hour', `const { stack, ha, hb } = two(app); const db = new Postgres(stack, 'db', { host: hb }); svc(stack, 'auth', { host: ha, dependsOn: [{ service: db, crossHostWait: '2h' }] });`, 'bad/auth', 'dependsOn[0].crossHostWait: must be a duration between "1s" and "1h"');
bad('Graph: stack dependency wait that is no duration', `const stack = new Stack(app, 'bad', { wireguard: { dependencyWait: 'soon' } }); svc(stack, 'x');`, 'bad', 'wireguard.dependencyWait: must be a duration between "1s" and "1h"');
bad('Graph: dependency on another host without a TCP port', `const { stack, ha, hb } = two(app); const worker = new InfraService(stack, 'worker', { image: 'localhost/test/worker:1', host: hb }); svc(stack, 'auth', { host: ha, dependsOn: [worker] });`, 'bad/auth', 'which listens on no TCP port: from host a podmesh can only wait for a port to accept connections through the tunnel. Give worker a TCP port');
auth('Service: hyperf that is a string', `{ hyperf: 'on' }`, 'hyperf: must be false (no Hyperf configuration) or { appRoot, serverName }');
auth('Service: ports that is a list', `{ ports: [8080] }`, 'ports: must be an object ({ … }), not a list');
bad('Graph: waiting for health of a service without a check', `const { stack } = mini(app); svc(stack, 'worker', { healthcheck: false }); svc(stack, 'auth', { dependsOn: [{ service: 'worker', condition: 'healthy' }] });`, 'bad/auth', 'waits for worker to be healthy, but worker has no health check');
bad('Graph: dependency on a service of another stack', `const a = mini(app); const b = mini(app, 'other'); const db = new Postgres(b.stack, 'db'); svc(a.stack, 'auth', { dependsOn: [db] });`, 'bad/auth', 'depends on unknown service "other/db" (it belongs to another stack). Known services: auth.');
bad('Graph: call to a service of another stack', `const a = mini(app); const b = mini(app, 'other'); const api = svc(b.stack, 'api'); svc(a.stack, 'auth', { calls: [api] });`, 'bad/auth', 'calls unknown service "other/api" (it belongs to another stack)');
bad('Graph: a host of another stack', `const a = mini(app); const b = mini(app, 'other'); svc(b.stack, 'x'); svc(a.stack, 'auth', { host: b.host });`, 'bad/auth', 'Place the service on a host of bad.');
bad('Graph: a network of another stack', `const a = mini(app); const b = mini(app, 'other'); svc(b.stack, 'x'); svc(a.stack, 'auth', { network: b.network });`, 'bad/auth', 'Use a network of bad.');
bad('Graph: healthy-wait on Podman 4.5', `const stack = new Stack(app, 'bad'); new Host(stack, 'old', { podmanVersion: '4.5' }); new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'bad.local' }); const db = new Postgres(stack, 'db'); svc(stack, 'auth', { dependsOn: [db] });`, 'bad/auth', 'cannot tell systemd');

// --- Presets: Postgres, Redis, Minio, InfraService ---
bad('Postgres: misspelled prop', `const { stack } = mini(app); new Postgres(stack, 'db', { databse: 'x' });`, 'bad/db', 'Did you mean database?');
bad('Postgres: port 70000', `const { stack } = mini(app); new Postgres(stack, 'db', { ports: { postgres: 70000 } });`, 'bad/db', 'ports are 1-65535');
bad('Postgres: database with a newline', `const { stack } = mini(app); new Postgres(stack, 'db', { database: 'x\\nPOSTGRES_PASSWORD=y' });`, 'bad/db', 'is not a PostgreSQL name');
bad('Postgres: database with a space', `const { stack } = mini(app); new Postgres(stack, 'db', { database: 'my db' });`, 'bad/db', 'is not a PostgreSQL name');
bad('Postgres: role with a newline', `const { stack } = mini(app); new Postgres(stack, 'db', { user: 'x\\ny' });`, 'bad/db', 'user: "x\\ny" is not a PostgreSQL name');
bad('Postgres: image with a space', `const { stack } = mini(app); new Postgres(stack, 'db', { image: 'postgres 16' });`, 'bad/db', 'Image references have none');
bad('Redis: misspelled at depth', `const { stack } = mini(app); new Redis(stack, 'cache', { healthcheck: { comand: ['true'] } });`, 'bad/cache', 'Did you mean command?');
bad('Redis: health check that is true', `const { stack } = mini(app); new Redis(stack, 'cache', { healthcheck: true });`, 'bad/cache', 'healthcheck: must be false or { command, interval, timeout, retries, startPeriod }');
bad('Redis: misspelled prop', `const { stack } = mini(app); new Redis(stack, 'cache', { imgae: 'redis:7' });`, 'bad/cache', 'Did you mean image?');
bad('Redis: ip equal to the gateway', `const { stack } = mini(app); new Redis(stack, 'cache', { ip: '10.90.0.1' });`, 'bad/cache', 'is the gateway address');
bad('Minio: misspelled prop', `const { stack } = mini(app); new Minio(stack, 'store', { bukcet: 'x' });`, 'bad/store', 'Did you mean bucket?');
bad('Minio: bucket with a newline', `const { stack } = mini(app); new Minio(stack, 'store', { bucket: 'a\\nb' });`, 'bad/store', 'is not an S3 bucket name');
bad('Minio: bucket with capitals and "_"', `const { stack } = mini(app); new Minio(stack, 'store', { bucket: 'My_Bucket' });`, 'bad/store', 'is not an S3 bucket name');
bad('Minio: rootUser with a newline', `const { stack } = mini(app); new Minio(stack, 'store', { rootUser: 'a\\nb' });`, 'bad/store', 'rootUser: must be 3-128 characters without spaces');
bad('InfraService: misspelled prop', `const { stack } = mini(app); new InfraService(stack, 'mail', { image: 'x', comand: ['true'] });`, 'bad/mail', 'Did you mean command?');
bad('InfraService: no image', `const { stack } = mini(app); new InfraService(stack, 'mail', {});`, 'bad/mail', 'image: is required: give a string');
bad('InfraService: mount target with ":"', `const { stack } = mini(app); new InfraService(stack, 'mail', { image: 'localhost/mail:1', mounts: [{ hostPath: '/srv/m', target: '/m:ro' }] });`, 'bad/mail', 'must not contain ":", ","');

// --- Ashchan ---
const ash = (props: string) => `const { stack, host } = mini(app); new Ashchan(stack, 'ashchan', ${props});`;
bad('Ashchan: misspelled prop', ash(`{ publicHostnames: ['localhost'], plainHtp: true }`), 'bad/ashchan', 'Did you mean plainHttp?');
bad('Ashchan: misspelled host role', ash(`{ publicHostnames: ['localhost'], hosts: { gatway: host } }`), 'bad/ashchan', 'Did you mean gateway?');
bad('Ashchan: no public host names', ash(`{ publicHostnames: [] }`), 'bad/ashchan', 'give at least one host name');
bad('Ashchan: version with a space', ash(`{ publicHostnames: ['localhost'], version: '1.0 beta' }`), 'bad/ashchan', 'must be an image tag, e.g. "1.0.0"');
bad('Ashchan: host that is a string', ash(`{ publicHostnames: ['localhost'], hosts: { gateway: 'local' } }`), 'bad/ashchan', 'must be a Host construct');
bad('Ashchan: public host name with a space', ash(`{ publicHostnames: ['shop example'] }`), 'bad/ashchan', 'publicHostnames[0]: "shop example" is not a host name, e.g. "ashchan.example.org"');

// --- Stack files ---
cases.push({ name: 'Stack file: no default export', body: undefined, argv: (w) => { writeFileSync(join(w.stacks, 'bad.ts'), 'export const x = 1;\n'); return synthArgv(w); }, code: 1, where: (w) => join(w.stacks, 'bad.ts'), fix: 'A stack file default-exports a function (app: App) => void' });
cases.push({ name: 'Stack file: throws', body: `throw new Error('the inventory service is down');`, code: 1, where: (w) => join(w.stacks, 'bad.ts'), fix: 'threw the inventory service is down. Fix the stack file' });
cases.push({ name: 'Stack file: async function that throws', body: undefined, argv: (w) => { writeFileSync(join(w.stacks, 'bad.ts'), "export default async (): Promise<void> => { await Promise.resolve(); throw new Error('down'); };\n"); return synthArgv(w); }, code: 1, where: (w) => join(w.stacks, 'bad.ts'), fix: 'threw down. Fix the stack file' });
cases.push({ name: 'Stack file: a syntax error', body: undefined, argv: (w) => { writeFileSync(join(w.stacks, 'bad.ts'), 'export default (app => {\n'); return synthArgv(w); }, code: 1, where: (w) => `[${join(w.stacks, 'bad.ts')}:1:`, fix: 'does not compile: Expected `}` but found `EOF`. Fix the stack file and run again.' });
cases.push({ name: 'Stack file: imports a package that is not installed', body: undefined, argv: (w) => { writeFileSync(join(w.stacks, 'bad.ts'), "import { thing } from 'not-installed-anywhere';\nexport default (): void => { thing(); };\n"); return synthArgv(w); }, code: 1, where: (w) => `[${join(w.stacks, 'bad.ts')}]`, fix: 'imports not-installed-anywhere, which cannot be found. Install it (npm install) or fix the import path.' });
cases.push({ name: 'Stack file: creates no stack', body: undefined, argv: (w) => { writeFileSync(join(w.stacks, 'bad.ts'), 'export default (): void => {};\n'); return synthArgv(w); }, code: 1, where: (w) => `[${join(w.stacks, 'bad.ts')}]`, fix: "created no stack. Its default export should create one, e.g. new Stack(app, 'dev')" });

// --- Command line ---
const cli = (name: string, args: (w: Where) => string[], code: 1 | 2, where: string, fix: string) => cases.push({ name, body: VALID, argv: args, code, where, fix });
cli('CLI: unknown command', () => ['synt'], 2, 'unknown command "synt"', 'See podmesh --help.');
cli('CLI: unknown certs command', () => ['certs', 'renew'], 2, 'unknown certs command "renew"', 'Use status, issue, rotate, revoke, csr, import or bundle.');
cli('CLI: unknown option', (w) => [...synthArgv(w), '--bogus'], 2, "'--bogus'", 'See podmesh --help.');
cli('CLI: unknown --stack', (w) => [...synthArgv(w), '--stack', 'bda'], 1, 'unknown stack "bda"', 'Known stacks: bad.');
cli('CLI: --now 2027-02-30', (w) => [...synthArgv(w), '--now', '2027-02-30'], 2, '--now "2027-02-30"', 'has day 30, but 2027-02 has 28 days');
cli('CLI: --now yesterday', (w) => [...synthArgv(w), '--now', 'yesterday'], 2, '--now "yesterday"', 'e.g. 2027-01-31 or 2027-01-31T12:00:00Z');
cli('CLI: --now without a zone', (w) => [...synthArgv(w), '--now', '2027-01-31T12:00:00'], 2, '--now', 'e.g. 2027-01-31 or 2027-01-31T12:00:00Z');
cli('CLI: --state inside --out', (w) => ['synth', '--stacks', w.stacks, '--out', w.out, '--state', join(w.out, 'keys')], 1, '[--state]', 'is inside the output folder');
cli('CLI: --state equal to --out', (w) => ['synth', '--stacks', w.stacks, '--out', w.out, '--state', w.out], 1, '[--state]', 'is the output folder. Keep the state folder (private keys, passwords) apart from out/');
cli('CLI: --state around --out', (w) => ['synth', '--stacks', w.stacks, '--out', join(w.state, 'out'), '--state', w.state], 1, '[--state]', 'contains the output folder');
cases.push({ name: 'CLI: empty --out', body: VALID, argv: (w) => ['synth', '--stacks', w.stacks, '--out', '', '--state', w.state], code: 1, where: '[--out]', fix: 'Give a folder, e.g. --out out.'});
cases.push({ name: 'CLI: empty --state', body: VALID, argv: (w) => ['synth', '--stacks', w.stacks, '--out', w.out, '--state', ''], code: 1, where: '[--state]', fix: 'Give a folder, e.g. --state .podmesh'});
cli('CLI: --lock-timeout abc', (w) => [...synthArgv(w), '--lock-timeout', 'abc'], 2, '--lock-timeout "abc"', 'e.g. --lock-timeout 120.');
cli('CLI: --lock-timeout=-5', (w) => [...synthArgv(w), '--lock-timeout=-5'], 2, '--lock-timeout "-5"', 'e.g. --lock-timeout 120.');
cli('CLI: --lock-timeout with a missing value', (w) => [...synthArgv(w), '--lock-timeout', '-5'], 2, "'--lock-timeout'", "use '--lock-timeout=-XYZ'");
cli('CLI: --stacks a missing folder', (w) => ['synth', '--stacks', join(w.root, 'no-such-stacks'), '--out', w.out, '--state', w.state], 1, 'no-such-stacks', 'pass --stacks DIR for another folder');
cli('CLI: --out naming a file', (w) => ['synth', '--stacks', w.stacks, '--out', join(w.stacks, 'bad.ts'), '--state', w.state], 1, 'bad.ts] is a file where a folder is needed', 'point --out/--state elsewhere');
cli('CLI: secrets rotate for an unknown service', (w) => ['secrets', 'rotate', '--service', 'nope', '--stacks', w.stacks, '--out', w.out, '--state', w.state], 2, 'secrets of nope', 'Services with secrets: db, auth.');

// --- State tampering (each on a private copy of a valid state) ---
const tampered = (name: string, tamper: (w: Where) => void, where: (w: Where) => string, fix: string, base = VALID, defect?: string) =>
  cases.push({ name, body: base, base, tamper, code: 1, where, fix, ...(defect ? { defect } : {}) });
const at = (w: Where, p: string) => join(w.state, 'bad', p);
tampered('State: damaged inventory.json', (w) => writeFileSync(at(w, 'pki/inventory.json'), '{ "certificates": [ '), (w) => at(w, 'pki/inventory.json'), 'Restore it from backup; deleting it rebuilds it');
tampered('State: inventory.json of the wrong shape', (w) => writeFileSync(at(w, 'pki/inventory.json'), '{"certificates": 5}'), (w) => at(w, 'pki/inventory.json'), 'Restore it from backup; deleting it rebuilds it');
tampered('State: inventory.json emptied', (w) => writeFileSync(at(w, 'pki/inventory.json'), ''), (w) => at(w, 'pki/inventory.json'), 'Restore it from backup; deleting it rebuilds it');
tampered('State: a CA key that does not match its certificate', (w) => writeFileSync(at(w, 'pki/ca.key'), readFileSync(at(w, 'pki/client-ca.key'))), (w) => at(w, 'pki/ca.key'), 'Restore both files from the same backup');
tampered('State: a CA key that is no key', (w) => writeFileSync(at(w, 'pki/ca.key'), 'not a key\n'), (w) => at(w, 'pki/ca.key'), 'move pki/ away to create a new CA');
tampered('State: a CA certificate gone', (w) => unlinkSync(at(w, 'pki/ca.crt')), (w) => at(w, 'pki/ca.crt'), 'Restore ca.crt from backup');
tampered('State: damaged values.json', (w) => writeFileSync(at(w, 'secrets/values.json'), '{ "db/password": '), (w) => at(w, 'secrets/values.json'), 'podmesh secrets rotate --stack bad --service auth --service db');
tampered('State: values.json gone', (w) => unlinkSync(at(w, 'secrets/values.json')), (w) => at(w, 'secrets/values.json'), 'Restore secrets/values.json from a backup');
tampered('State: values.json without the values', (w) => writeFileSync(at(w, 'secrets/values.json'), '{"other/password": "x"}'), (w) => at(w, 'secrets/values.json'), 'podmesh secrets rotate');
tampered('State: a missing WireGuard private key whose public key is locked', (w) => unlinkSync(at(w, 'wireguard/a.key')), (w) => at(w, 'wireguard/a.key'), 'Restore the key file from your backup, or run `podmesh wireguard rotate --host a --stack bad`', VALID_TWO);
tampered('State: a WireGuard private key that is no key', (w) => writeFileSync(at(w, 'wireguard/a.key'), 'nonsense\n'), (w) => at(w, 'wireguard/a.key'), 'run `podmesh wireguard rotate --host a --stack bad` to replace it', VALID_TWO);
tampered(
  "State: an explicit ip equal to another service's locked address",
  (w) => {
    // auth's address as the earlier synth locked it, now asked for by a new service
    const compose = readFileSync(join(w.out, 'bad/hosts/local/compose.yaml'), 'utf8');
    const ip = /\n  auth:\n[\s\S]*?ipv4_address: "?([\d.]+)/.exec(compose)?.[1];
    expect(ip).toMatch(/^10\.90\.0\.\d+$/);
    writeFileSync(join(w.stacks, 'bad.ts'), stackFile(`${VALID} svc(stack, 'boards', { ip: '${ip}' });`));
  },
  () => '[bad/boards]',
  'To move it deliberately, first give auth an explicit other ip',
  VALID,
);

/** A stack file whose default export runs `body`. */
function stackFile(body: string): string {
  return `${PRELUDE}\nexport default (app: App): void => {\n${body}\n};\n`;
}

/** `synth` over the case's folders. */
function synthArgv(w: Where): string[] {
  return ['synth', '--stacks', w.stacks, '--out', w.out, '--state', w.state];
}

function recorder(cwd: string) {
  const printed = { out: '', err: '' };
  const io: Io = { out: (t) => void (printed.out += t), err: (t) => void (printed.err += t), env: {}, cwd, tty: false };
  return { io, printed };
}

/** Writes a stack file that runs `body`; a new folder each time, so no import is served from cache. */
let serial = 0;
function stackFolder(root: string, body: string | undefined): string {
  const dir = join(root, 'stacks', String(serial++));
  mkdirSync(dir, { recursive: true });
  if (body !== undefined) writeFileSync(join(dir, 'bad.ts'), stackFile(body));
  return dir;
}

describe('issue 14: every bad input is refused through the command line, and nothing is written', () => {
  const tmp = tempDir('podmesh-hostile-');
  const root = tmp.path;
  const shared = { out: join(root, 'out'), state: join(root, 'state') };
  /** Valid out/ and state folders to copy for tampering, by base stack. */
  const pristine = new Map<string, { out: string; state: string }>();

  async function synthValid(body: string, out: string, state: string): Promise<void> {
    const { io, printed } = recorder(root);
    const code = await runCli(['synth', '--stacks', stackFolder(root, body), '--out', out, '--state', state], io);
    expect(code, printed.err).toBe(0);
  }

  beforeAll(async () => {
    // GIVEN a valid earlier synth of the same stack names: out/ and the state folder both exist
    await synthValid(VALID, shared.out, shared.state);
    for (const [key, body] of [['one', VALID], ['two', VALID_TWO]] as const) {
      const w = { out: join(root, `pristine-${key}`, 'out'), state: join(root, `pristine-${key}`, 'state') };
      await synthValid(body, w.out, w.state);
      pristine.set(body, w);
    }
    expect(Object.keys(snapshot(join(shared.state, 'bad'))).length).toBeGreaterThan(5);
  }, 60_000);
  afterAll(() => tmp.cleanup());

  it('holds at least 120 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(120);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  /**
   * Runs one case; every file and folder counts, the two top folders' mtimes included. Cases that damage the
   * state or are known defects work on a private copy (with their own working directory), so
   * neither can change what the next case starts from.
   */
  async function runCase(c: Case): Promise<void> {
    // GIVEN the folders of a valid earlier synth
    let w: Where = { stacks: stackFolder(root, c.body), root, ...shared };
    if (c.tamper || c.defect) {
      const from = pristine.get(c.base ?? VALID)!;
      const own = join(root, 'private', String(serial++));
      cpSync(from.out, join(own, 'out'), { recursive: true, preserveTimestamps: true });
      cpSync(from.state, join(own, 'state'), { recursive: true, preserveTimestamps: true });
      w = { ...w, root: own, out: join(own, 'out'), state: join(own, 'state') };
      await c.tamper?.(w);
    }
    const argv = c.argv ? c.argv(w) : synthArgv(w);
    const before = { out: snapshot(w.out), state: snapshot(w.state) };
    // WHEN the command runs
    const { io, printed } = recorder(w.root);
    const code = await runCli(argv, io);
    // THEN the exit code, where, a fix, no trace, no zod, and nothing changed
    const err = printed.err;
    expect(code, `exit code:\n${err}`).toBe(c.code);
    const where = typeof c.where === 'function' ? c.where(w) : c.where;
    expect(err, `names the construct, file or flag:\n${err}`).toContain(where);
    expect(err, `says how to fix it:\n${err}`).toContain(c.fix);
    expect(err).not.toMatch(/    at /);
    expect(err).not.toMatch(/ZodError|invalid_type|"code":/);
    const changed = [...changes('out', before.out, snapshot(w.out)), ...changes('state', before.state, snapshot(w.state))];
    expect(changed.join('\n')).toBe('');
  }

  const numbered = cases.map((c, i) => [`${String(i + 1).padStart(3, '0')} ${c.name}`, c] as const);
  it.each(numbered.filter(([, c]) => !c.defect))('%s', (_name, c) => runCase(c));

  // Known defects outside this table's scope: they fail today; when one is fixed, its it.fails fails
  // and the case moves into the table above.
  for (const [name, c] of numbered.filter(([, c]) => c.defect)) {
    it.fails(`${name} (known defect: ${c.defect})`, () => runCase(c));
  }
  it('a refused run leaves the mtimes of out/ and the state folder as they were (the locks sit beside them)', () =>
    runCase(cases.find((c) => c.name === 'Stack: misspelled prop')!),
  );
});
