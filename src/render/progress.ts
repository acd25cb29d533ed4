// A tick renderers give between the items of their long loops (a service, a unit, a manifest
// entry), for whoever takes the files as they are rendered: the staged writer (src/io/staged.ts)
// moves the files it had to queue into its ring then, so its worker thread keeps writing while a
// renderer that sends nothing for a quarter of a second (systemd, compose) runs. Rendering stays
// pure: without a listener a tick does nothing.

let listener: (() => void) | undefined;

/** Tells the listener, if any, that rendering moved on. Cheap: renderers call it per item. */
export function progress(): void {
  listener?.();
}

/** Runs `render` with `onProgress` told each {@link progress} tick (renderers are synchronous: the previous listener is back after). */
export function withProgress<T>(onProgress: (() => void) | undefined, render: () => T): T {
  const before = listener;
  listener = onProgress;
  try {
    return render();
  } finally {
    listener = before;
  }
}
