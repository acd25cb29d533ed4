// From constructs to the resolved model: a short orchestrator over the phase modules beside it,
// each `(facts so far, issues) → new facts`. Every phase runs and reports; the model is built
// whenever it is complete enough to render, so render-time problems show in the same run.
import { ocspHostProblem } from './pki.ts';
import { IssueCollector, PodmeshError, type Issue } from '../../constructs/core/errors.ts';
import type { Stack } from '../../constructs/core/stack.ts';
import { postureProblems } from '../posture/check.ts';
import { allocateStackAddresses } from './addresses.ts';
import { assembleStack, type StackFacts } from './assemble.ts';
import { placeStack } from '../layout.ts';
import { resolveGraph } from './dependencies.ts';
import { takeInventory } from './inventory.ts';
import type { AllocationLock, ResolvedStack } from './model.ts';
import { nameStack } from './naming.ts';
import { planNetworks } from './networks.ts';
import { placeWorkloads } from './placement.ts';
import { resolvePorts } from './ports.ts';
import { resolveServices } from './services.ts';
import { planTunnel, tunnelComplete } from './tunnel.ts';
import { placeVolumes } from './volumes.ts';

export { HYPERF_FILES, hyperfFiles, OPENSSL_CONF_FILE, POSTGRES_ROLES_FILE, POSTGRES_ROLES_PATH, type HyperfFile } from './mounts.ts';
export { hasRolesScript } from './services.ts';

/** What resolution reads besides the constructs. */
export interface ResolveInputs {
  /** The stack's previous allocation lock, if any. */
  readonly lock?: AllocationLock;
}

/** What resolving one stack found: the model when rendering it means something, and every problem. */
export interface ResolveOutcome {
  /** Present when the model is complete enough to render (even with problems, so render-time ones show too). */
  readonly resolved?: ResolvedStack;
  readonly issues: readonly Issue[];
}

/**
 * Resolves one stack without throwing for the stack's own problems: every phase runs and adds
 * what it finds. The model is left out only when a workload has no host, network, unique name
 * or address, a network no subnet or segments, or a tunnel host no endpoint or address: the
 * renderers write every service onto a host, a bridge and an address, so they cannot run.
 * Graph problems (a dependency cycle, a call a service does not accept) keep the model: where a
 * cycle leaves the start order undefined, construct order stands in. Problems recorded on the
 * constructs themselves (bad props, `node.addValidation`) are not repeated here: the caller
 * reports them (`validateConstructs`).
 */
export function tryResolveStack(stack: Stack, inputs: ResolveInputs = {}): ResolveOutcome {
  const issues = new IssueCollector();
  const inv = takeInventory(stack, issues);
  // Without a service, a host or a network there is nothing to place: no later phase can run.
  if (!inv) return { issues: issues.issues };
  const lock = inputs.lock;
  const placement = placeWorkloads(inv, issues);
  const nets = planNetworks(inv, placement, lock, issues);
  const tunnel = planTunnel(inv, placement, nets, lock, issues);
  const names = nameStack(inv, placement, issues);
  const gatewayHosts = placement.activeHosts.filter((h) => tunnel?.modes.get(h.node.id) === 'container');
  const addresses = allocateStackAddresses(inv, placement, nets, lock, issues, gatewayHosts);
  const portsOf = resolvePorts(inv, placement, issues);
  const graph = resolveGraph(inv, names, issues);
  const volumeHostOf = placeVolumes(inv, placement, names, issues);
  const services = resolveServices({ inv, placement, names, ipOf: addresses.ipOf, portsOf, graph }, issues);
  const facts: StackFacts = { inv, placement, nets, tunnel, names, addresses, graph, volumeHostOf, services, previousLock: lock };
  if (!complete(facts)) {
    // A subnet or address that cannot even be parsed is a prop problem, recorded on its construct.
    if (issues.empty) issues.add(stack.node.path, 'cannot be resolved while props of its constructs are invalid. Fix the problems reported for them.');
    return { issues: issues.issues };
  }
  // The layout records install roots and unit names on the model: nothing else spells them.
  const resolved = placeStack(assembleStack(facts));
  const ocspHost = ocspHostProblem(stack, resolved.hosts.map((h) => h.name));
  if (ocspHost) issues.add(stack.node.path, ocspHost);
  // The posture check judges what will run: every container against the restricted profile and CIS.
  issues.addAll(postureProblems(resolved));
  return { resolved, issues: issues.issues };
}

/**
 * Resolves one stack. Throws a PodmeshError carrying every problem found; returns a model in
 * which every reference is valid.
 */
export function resolveStack(stack: Stack, inputs: ResolveInputs = {}): ResolvedStack {
  const { resolved, issues } = tryResolveStack(stack, inputs);
  if (issues.length > 0 || !resolved) throw new PodmeshError(issues);
  return resolved;
}

/** Whether the facts make a model every renderer can write: see tryResolveStack. */
function complete(f: StackFacts): boolean {
  return (
    f.names.unique &&
    f.inv.workloads.every((w) => f.services.has(w)) &&
    f.inv.networks.every((n) => f.nets.cidrOf.has(n) && f.nets.segmentsOf.has(n)) &&
    tunnelComplete(f.placement, f.tunnel) &&
    f.placement.activeHosts.every((h) => f.tunnel?.modes.get(h.node.id) !== 'container' || f.addresses.gatewayOf.has(h.node.id))
  );
}
