// Hyperf configuration per application service, from the handlebars templates in
// `templates/hyperf/`: `hosts/<host>/config/<service>/autoload/{server,mtls_client,mtls_policy}.php`,
// mounted read-only into the container's `config/autoload/`.
import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { PodmeshError } from '../core/errors.ts';
import { MTLS_DIR } from '../resolve/environment.ts';
import type { ResolvedService, ResolvedStack } from '../resolve/model.ts';
import { HYPERF_FILES } from '../resolve/resolve.ts';
import { generatedHeader } from './header.ts';

/** The seed's TLS 1.3 cipher suites, in OpenSSL's names. */
export const MTLS_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/**
 * A PHP single-quoted string literal: inside one only `\\` and `\'` are escapes, so `$`, `"`
 * and newlines stay literal and nothing can end the string early.
 */
export function phpString(value: unknown): string {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new Error(`the php helper takes a string or number, got ${value === undefined ? 'undefined' : typeof value}`);
  }
  return `'${String(value).replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

const hb = Handlebars.create();
hb.registerHelper('php', (value: unknown) => new hb.SafeString(phpString(value)));

type Template = (context: object) => string;

const templates = new Map<string, Template>();

/** A template of `templates/hyperf/`, compiled once; strict: a missing value is an error, not ''. */
function template(file: string): Template {
  let t = templates.get(file);
  if (!t) {
    const source = readFileSync(new URL(`../../templates/hyperf/${file}.hbs`, import.meta.url), 'utf8');
    t = hb.compile(source, { noEscape: true, strict: true });
    templates.set(file, t);
  }
  return t;
}

/** What the templates see for one service. */
function context(stack: ResolvedStack, byName: ReadonlyMap<string, ResolvedService>, s: ResolvedService) {
  const dns = (name: string) => byName.get(name)!;
  const http = s.ports.find((p) => p.name === 'http');
  return {
    header: generatedHeader(stack.name).join(' '),
    service: s.serviceName,
    dnsName: s.dnsName,
    mtls: {
      port: s.mtls!.port,
      certFile: `${MTLS_DIR}/server.crt`,
      keyFile: `${MTLS_DIR}/server.key`,
      caFile: `${MTLS_DIR}/ca.crt`,
      ciphers: MTLS_CIPHERS,
    },
    http: http ? { port: http.port } : false,
    client: { caFile: `${MTLS_DIR}/ca.crt`, certFile: `${MTLS_DIR}/client.crt`, keyFile: `${MTLS_DIR}/client.key` },
    calls: s.calls.map((c) => ({ name: c, url: dns(c).mtls!.url })),
    allowedClients: s.callers.map((c) => dns(c).dnsName).sort(),
    crlFile: `${MTLS_DIR}/crl.pem`,
  };
}

/** Renders the Hyperf config files of every Hyperf service, under its host's folder. */
export function renderHyperf(stack: ResolvedStack): Map<string, string> {
  const files = new Map<string, string>();
  // The first service of a name, as a search of the list would find it.
  const byName = new Map<string, ResolvedService>();
  for (const s of stack.services) if (!byName.has(s.name)) byName.set(s.name, s);
  for (const s of stack.services) {
    if (!s.hyperf || !s.mtls) continue;
    const ctx = context(stack, byName, s);
    for (const file of HYPERF_FILES) {
      try {
        files.set(`hosts/${s.host}/config/${s.name}/autoload/${file}`, template(file)(ctx));
      } catch (e) {
        throw PodmeshError.at(s.path, `templates/hyperf/${file}.hbs failed: ${(e as Error).message}`);
      }
    }
  }
  return files;
}
