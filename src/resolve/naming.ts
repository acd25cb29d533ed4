// Phase: the names a stack gives out (DNS names and aliases, container names, volume names), each
// unique. Names come from the ids of podmesh constructs only: a construct that just groups others
// (a plain Construct such as the Ashchan class) adds nothing to them, as in cdk8s and the CDK.
import type { Construct } from 'constructs';
import type { IssueCollector } from '../../constructs/core/errors.ts';
import { Volume } from '../../constructs/model/volume.ts';
import { Workload } from '../../constructs/model/workload.ts';
import type { Inventory } from './inventory.ts';
import type { Placement } from './placement.ts';

/** The names of a stack's workloads and volumes. */
export interface Names {
  /** `<name>.<domain>` of each placed workload. */
  readonly dnsOf: ReadonlyMap<Workload, string>;
  readonly containerNameOf: ReadonlyMap<Workload, string>;
  readonly volumeNameOf: ReadonlyMap<Volume, string>;
  /**
   * Whether every workload has a name of its own. Later phases and the model key services by
   * name (dependencies, calls, the lock's addresses), so a clash leaves no model to render.
   */
  readonly unique: boolean;
}

/** Names every workload and volume and reports each clash. */
export function nameStack(inv: Inventory, placement: Placement, issues: IssueCollector): Names {
  const dnsOf = dnsNames(inv, placement, issues);
  const names = inv.workloads.map((w) => w.name);
  return {
    dnsOf,
    containerNameOf: containerNames(inv, placement, issues),
    volumeNameOf: volumeNames(inv),
    unique: new Set(names).size === names.length,
  };
}

/** DNS names and aliases, unique in the stack. */
function dnsNames(inv: Inventory, placement: Placement, issues: IssueCollector): Map<Workload, string> {
  const dnsOf = new Map<Workload, string>();
  const owners = new Map<string, Workload>();
  for (const w of inv.workloads) {
    const n = placement.networkOf.get(w);
    if (!n) continue;
    const dns = `${w.name}.${n.domain}`;
    dnsOf.set(w, dns);
    for (const name of [dns, ...(w.props.aliases ?? [])]) {
      const other = owners.get(name);
      if (other && other !== w) {
        issues.add(w.node.path, other.name === w.name
          ? `service name "${w.name}" is already used by ${other.node.path}. Service names are DNS labels and must be unique in a stack: rename one of them.`
          : `DNS name ${name} is already used by ${other.node.path}. Remove the alias or rename a service.`);
      } else owners.set(name, w);
    }
  }
  return dnsOf;
}

/** Container names (`<project>-<name>-1` unless given), unique per host. */
function containerNames(inv: Inventory, placement: Placement, issues: IssueCollector): Map<Workload, string> {
  const nameOf = new Map<Workload, string>();
  const taken = new Map<string, Workload>();
  for (const w of inv.workloads) {
    const cn = w.props.containerName ?? `${inv.stack.project}-${w.name}-1`;
    nameOf.set(w, cn);
    const key = `${placement.hostOf.get(w)?.node.id}/${cn}`;
    const other = taken.get(key);
    if (other) issues.add(w.node.path, `container name "${cn}" is already used by ${other.node.path}. Set another containerName.`);
    else taken.set(key, w);
  }
  return nameOf;
}

/**
 * Volume names: the given name, else the project and the ids of the workloads and volume it sits
 * in, e.g. `ashchan-postgres-data`. Unique per host: checked where volumes get their host.
 */
function volumeNames(inv: Inventory): Map<Volume, string> {
  return new Map(inv.volumes.map((v) => [v, v.explicitName ?? [inv.stack.project, ...namingIds(inv.stack, v)].join('-')]));
}

/** Ids of the podmesh constructs from below the stack down to `c`; constructs that only group are skipped. */
export function namingIds(stack: Construct, c: Construct): string[] {
  const scopes = c.node.scopes;
  return scopes
    .slice(scopes.indexOf(stack) + 1)
    .filter((s) => s instanceof Workload || s instanceof Volume)
    .map((s) => s.node.id);
}
