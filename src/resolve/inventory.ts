// Phase: what the stack holds (hosts, networks, volumes, workloads, in construct order), and
// whether it holds enough for resolution to start.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import type { Stack } from '../../constructs/core/stack.ts';
import { Host } from '../../constructs/model/host.ts';
import { Network } from '../../constructs/model/network.ts';
import { Volume } from '../../constructs/model/volume.ts';
import { MinioSetup } from '../../constructs/model/infra.ts';
import { Workload } from '../../constructs/model/workload.ts';

/** The constructs of one stack, by kind, in construct order (pre-order; workloads a preset adds last). */
export interface Inventory {
  readonly stack: Stack;
  readonly hosts: readonly Host[];
  readonly networks: readonly Network[];
  readonly volumes: readonly Volume[];
  readonly workloads: readonly Workload[];
  /** Workloads by name (the last of a name, when names clash: the naming phase reports that). */
  readonly byName: ReadonlyMap<string, Workload>;
}

/**
 * Takes stock of a stack. Returns undefined, with the problems, when it has no service, no host
 * or no network: every later phase places workloads on a host and a network.
 */
export function takeInventory(stack: Stack, issues: IssueCollector): Inventory | undefined {
  const all = stack.node.findAll();
  // Containers a preset adds (MinIO's setup) come after the declared ones: they are given the next
  // free addresses, so adding one moves no declared workload's allocated address.
  const declared = all.filter(Workload.isWorkload);
  const workloads = [...declared.filter((w) => !(w instanceof MinioSetup)), ...declared.filter((w) => w instanceof MinioSetup)];
  const inventory: Inventory = {
    stack,
    hosts: all.filter(Host.isHost),
    networks: all.filter(Network.isNetwork),
    volumes: all.filter(Volume.isVolume),
    workloads,
    byName: new Map(workloads.map((w) => [w.name, w])),
  };
  const path = stack.node.path;
  if (inventory.workloads.length === 0) {
    issues.add(path, 'the stack has no services. Add a Service, Postgres, Redis, Minio or InfraService to it, or delete the stack.');
  }
  if (inventory.hosts.length === 0) {
    issues.add(path, `the stack has no host. Add one, e.g. new Host(stack, 'local').`);
  }
  if (inventory.networks.length === 0) {
    issues.add(path, `the stack has no network. Add one, e.g. new Network(stack, 'mesh', { subnet: '10.90.0.0/24', domain: 'example.local' }).`);
  }
  const complete = inventory.workloads.length > 0 && inventory.hosts.length > 0 && inventory.networks.length > 0;
  return complete ? inventory : undefined;
}
