// Phase: each volume lives on the host of the workloads that mount it, one host per volume, and
// its name is unique on that host.
import type { IssueCollector } from '../../constructs/core/errors.ts';
import type { Volume } from '../../constructs/model/volume.ts';
import type { Workload } from '../../constructs/model/workload.ts';
import type { Inventory } from './inventory.ts';
import type { Names } from './naming.ts';
import type { Placement } from './placement.ts';

/** Host id of each mounted volume (an unmounted volume has none and is reported). */
export function placeVolumes(inv: Inventory, placement: Placement, names: Names, issues: IssueCollector): Map<Volume, string> {
  const owner = new Map<Volume, { host: string; by: Workload }>();
  for (const w of inv.workloads) {
    for (const m of w.mounts) {
      if (!m.volume) continue;
      if (!inv.volumes.includes(m.volume)) {
        issues.add(w.node.path, `mounts volume ${m.volume.node.path}, which belongs to another stack.`);
        continue;
      }
      const h = placement.hostOf.get(w)?.node.id;
      if (!h) continue;
      const prev = owner.get(m.volume);
      if (prev && prev.host !== h) {
        issues.add(w.node.path, `mounts volume ${m.volume.node.path} on host ${h}, but ${prev.by.node.path} mounts it on host ${prev.host}. A volume lives on one host: give each host its own volume.`);
      } else if (!prev) owner.set(m.volume, { host: h, by: w });
    }
  }
  const hostOf = new Map<Volume, string>();
  const taken = new Map<string, Volume>();
  for (const v of inv.volumes) {
    const o = owner.get(v);
    if (!o) {
      issues.add(v.node.path, 'is not mounted by any service. Mount it (mounts: [{ volume, target }]) or remove it.');
      continue;
    }
    hostOf.set(v, o.host);
    const name = names.volumeNameOf.get(v)!;
    const other = taken.get(`${o.host}/${name}`);
    if (other) issues.add(v.node.path, `volume name "${name}" is already used by ${other.node.path} on host ${o.host}. Give one of them another name (name: '…') or id.`);
    else taken.set(`${o.host}/${name}`, v);
  }
  return hostOf;
}
