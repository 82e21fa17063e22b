// Teardown that must run even when the bench is interrupted (Ctrl-C, a CI
// timeout's SIGTERM): every started server registers its stop function here.
const pending = new Set();

export function onCleanup(fn) {
  pending.add(fn);
  return () => pending.delete(fn);
}

export async function cleanupAll() {
  const fns = [...pending].reverse();
  pending.clear();
  for (const fn of fns) {
    try { await fn(); } catch { /* best effort while exiting */ }
  }
}
