// Podman's units (durations, memory sizes, CPU counts) as Kubernetes writes them.

/** Whole seconds of a Go/Podman duration (`10s`, `1m30s`, `500ms`), rounded up, at least `min`. */
export function durationSeconds(d: string, min = 1): number {
  const re = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g;
  const factor: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  let total = 0;
  let consumed = 0;
  for (const m of d.matchAll(re)) {
    total += Number(m[1]) * factor[m[2]!]!;
    consumed += m[0].length;
  }
  if (consumed !== d.length || consumed === 0) throw new Error(`not a duration: "${d}"`);
  return Math.max(min, Math.ceil(total - 1e-9));
}

/** A Podman memory size (`512m`, `1g`, `1048576`, `64k`) as a Kubernetes quantity (`512Mi`, `1Gi`). */
export function memoryQuantity(size: string): string {
  const m = /^(\d+)([bkmg]?)$/i.exec(size);
  if (!m) throw new Error(`not a memory size: "${size}"`);
  const unit = m[2]!.toLowerCase();
  return `${m[1]}${{ '': '', b: '', k: 'Ki', m: 'Mi', g: 'Gi' }[unit]}`;
}

/** A CPU count (`0.5`, `2`) as a Kubernetes quantity in millicores (`500m`, `2`). */
export function cpuQuantity(cpus: number): string {
  const milli = Math.round(cpus * 1000);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}
