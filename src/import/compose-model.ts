// The parts of `docker compose config --format json` that `podmesh import` reads. Every other key
// is kept (loose objects) so that the import can list it as not expressible instead of losing it.
import * as z from 'zod';

const stringList = z.array(z.string());

/** One entry of a service's `ports` (long syntax: compose config expands the short one). */
export const composePort = z.looseObject({
  target: z.number().int(),
  published: z.string().optional(),
  protocol: z.string().optional(),
  host_ip: z.string().optional(),
  name: z.string().optional(),
  mode: z.string().optional(),
});
export type ComposePort = z.infer<typeof composePort>;

/** One entry of a service's `volumes` (long syntax). */
export const composeMount = z.looseObject({
  type: z.string(),
  source: z.string().optional(),
  target: z.string(),
  read_only: z.boolean().optional(),
  bind: z.looseObject({ create_host_path: z.boolean().optional() }).optional(),
  volume: z.looseObject({}).optional(),
  tmpfs: z.looseObject({ size: z.union([z.string(), z.number()]).optional(), mode: z.number().optional() }).optional(),
});
export type ComposeMount = z.infer<typeof composeMount>;

/** A service's `healthcheck`. */
export const composeHealthcheck = z.looseObject({
  test: stringList.optional(),
  interval: z.string().optional(),
  timeout: z.string().optional(),
  retries: z.number().optional(),
  start_period: z.string().optional(),
  disable: z.boolean().optional(),
});
export type ComposeHealthcheck = z.infer<typeof composeHealthcheck>;

/** A service's attachment to one network (`null` when it gives neither address nor aliases). */
export const composeAttachment = z.looseObject({
  aliases: stringList.optional(),
  ipv4_address: z.string().optional(),
}).nullable();

/** One service. */
export const composeService = z.looseObject({
  image: z.string().optional(),
  command: stringList.nullable().optional(),
  entrypoint: stringList.nullable().optional(),
  environment: z.record(z.string(), z.string().nullable()).optional(),
  ports: z.array(composePort).optional(),
  expose: z.array(z.union([z.string(), z.number()])).optional(),
  volumes: z.array(composeMount).optional(),
  tmpfs: z.union([z.string(), stringList]).optional(),
  networks: z.record(z.string(), composeAttachment).optional(),
  depends_on: z.record(z.string(), z.looseObject({ condition: z.string(), required: z.boolean().optional(), restart: z.boolean().optional() })).optional(),
  healthcheck: composeHealthcheck.optional(),
  restart: z.string().optional(),
  container_name: z.string().optional(),
  user: z.string().optional(),
  profiles: stringList.optional(),
  mem_limit: z.union([z.string(), z.number()]).optional(),
  pids_limit: z.number().optional(),
  cpus: z.union([z.string(), z.number()]).optional(),
});
export type ComposeService = z.infer<typeof composeService>;

/** One top-level network. */
export const composeNetwork = z.looseObject({
  name: z.string().optional(),
  driver: z.string().optional(),
  driver_opts: z.record(z.string(), z.string()).optional(),
  internal: z.boolean().optional(),
  ipam: z.looseObject({ config: z.array(z.looseObject({ subnet: z.string().optional(), gateway: z.string().optional() })).optional() }).optional(),
});
export type ComposeNetwork = z.infer<typeof composeNetwork>;

/** One top-level volume. */
export const composeVolume = z.looseObject({ name: z.string().optional() });
export type ComposeVolume = z.infer<typeof composeVolume>;

/** The whole normalised project. */
export const composeProject = z.looseObject({
  name: z.string(),
  services: z.record(z.string(), composeService).optional(),
  networks: z.record(z.string(), composeNetwork).optional(),
  volumes: z.record(z.string(), composeVolume).optional(),
});
export type ComposeProject = z.infer<typeof composeProject>;
